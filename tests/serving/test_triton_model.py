"""The python-backend model in-process, with a stand-in for the stub's triton_python_backend_utils:
ratio per request, grouping within a batch, elastic files, errors per request, the load-following mode."""
import json
import sys
import types

import numpy as np
import pytest

from idlevit.runtime.ort_runner import OrtRunner
from idlevit.serving.loadtest import python_model_parameters
from idlevit.serving.repository import DeployOptions, write_repository
from idlevit.serving.triton_model import TritonPythonModel, requested_ratio
from tests.onnx_cache import TEST_VIT_ELASTIC, export_config


class _Tensor:
    def __init__(self, name, array):
        self._name, self._array = name, array

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


class _Response:
    def __init__(self, output_tensors=(), error=None):
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors}
        self.error = error


class _Request:
    def __init__(self, x, **params):
        self.x, self.params = x, params

    def parameters(self):
        return json.dumps(self.params)


@pytest.fixture
def pb_utils(monkeypatch):
    """The few names of the stub's module that the model uses (the real one exists only inside Triton)."""
    mod = types.ModuleType("triton_python_backend_utils")
    mod.Tensor, mod.InferenceResponse, mod.TritonError = _Tensor, _Response, lambda msg: msg
    mod.get_input_tensor_by_name = lambda request, name: _Tensor(name, request.x)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", mod)
    return mod


def load_model(files, tmp_path, **options):
    repo = tmp_path / "repo"
    write_repository(files, str(repo), options=DeployOptions(threads=1, max_batch=4, **options))
    model = TritonPythonModel()
    params = python_model_parameters(str(repo), "idlevit")
    config = {"max_batch_size": 4, "input": [{"name": "input"}], "output": [{"name": "logits"}, {"name": "keep_ratio"}],
              "parameters": {k: {"string_value": v} for k, v in params.items()}}   # as Triton hands them over
    model.initialize({"model_config": json.dumps(config), "model_repository": str(repo / "idlevit"),
                      "model_version": "1"})
    return model


@pytest.fixture(scope="module")
def elastic_onnx(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_ELASTIC)


def test_elastic_file_runs_each_request_at_its_ratio(pb_utils, elastic_onnx, tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 3, 64, 64), dtype=np.float32)
    model = load_model([elastic_onnx], tmp_path)
    assert model.model.elastic and model.default_ratio == 0.5      # the file's own default
    asks = [0.9, None, 0.9, 0.63]
    requests = [_Request(x[n:n + 1], **({} if r is None else {"keep_ratio": r})) for n, r in enumerate(asks)]
    responses = model.execute(requests + [_Request(x[:1], keep_ratio=1.5), _Request(x[:1], keep_ratio="x")])
    with OrtRunner(elastic_onnx, threads=1) as ref:
        for n, (r, resp) in enumerate(zip(asks, responses)):
            want = ref.infer(x[n:n + 1], keep_ratio=r or 0.5)["logits"]
            assert resp.error is None and np.abs(resp.outputs["logits"] - want).max() <= 1e-5
            assert resp.outputs["keep_ratio"].ravel().tolist() == [pytest.approx(r or 0.5)]
    assert "outside (0, 1]" in responses[4].error and "not a number" in responses[5].error
    model.finalize()


def test_load_following_mode_lowers_the_ratio_when_over_target(pb_utils, elastic_onnx, tmp_path):
    model = load_model([elastic_onnx], tmp_path, p99_target_ms=1e-3, min_keep_ratio=0.7)
    assert model.controller.ratios == [1.0, 0.9, 0.8, 0.7] and model.current_ratio() == 1.0
    x = np.zeros((1, 3, 64, 64), np.float32)
    used = []
    for _ in range(3 * model.controller.window + 8):   # every latency is over a 1 us target
        used.append(model.execute([_Request(x)])[0].outputs["keep_ratio"].item())
    assert used[0] == 1.0 and used[-1] == pytest.approx(0.7)
    assert used == sorted(used, reverse=True)


def test_fixed_files_serve_their_own_ratios(pb_utils, tiny_ladder, tmp_path):
    model = load_model(list(tiny_ladder), tmp_path, keep_ratio=0.7)
    assert not model.model.elastic and model.model.ratios == [1.0, 0.5]
    assert model.default_ratio == 0.5      # the highest served ratio not above 0.7
    x = np.ones((2, 3, 64, 64), np.float32)
    ok, bad = model.execute([_Request(x, keep_ratio=1.0), _Request(x[:1], keep_ratio=0.7)])
    assert ok.outputs["logits"].shape == (2, 1000) and "0.7 is not served" in bad.error


def test_runner_auto_picks_a_cpu_backend_when_the_model_loads(pb_utils, elastic_onnx, tmp_path, monkeypatch, capfd):
    """idle-deploy --runner auto: the python model measures (or reads the cache) when Triton loads it, logs what it
    picked and why, and serves with that backend."""
    monkeypatch.setenv("IDLEVIT_CACHE_DIR", str(tmp_path / "cache"))
    model = load_model([elastic_onnx], tmp_path, runner="auto")
    picked = next(iter(model.model.runners.values()))
    assert "--backend auto picked" in capfd.readouterr().err and picked.name in ("ort", "openvino")
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64), dtype=np.float32)
    with OrtRunner(elastic_onnx, threads=1) as ref:
        want = ref.infer(x, keep_ratio=0.5)["logits"]
    (resp,) = model.execute([_Request(x)])
    bf16 = picked.describe().get("precision") == "bf16"      # picked only where it passed the fp16 limits
    assert resp.error is None
    assert np.abs(resp.outputs["logits"] - want).max() <= (0.05 if bf16 else 1e-4) * np.abs(want).max()
    model.finalize()


@pytest.mark.parametrize("params,want", [("{}", None), ('{"keep_ratio": 0.7}', 0.7), ('{"keep_ratio": "0.5"}', 0.5)])
def test_requested_ratio(params, want):
    assert requested_ratio(params) == want
