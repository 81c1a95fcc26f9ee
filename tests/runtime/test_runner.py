"""The runner protocol: factory, context manager, torch and ONNX Runtime runners, one-line errors."""
import numpy as np
import pytest
import torch

from idlevit.errors import UserError
from idlevit.runtime import runner as runner_mod
from idlevit.runtime.runner import Runner, TensorInfo, make_runner, register_runner
from tests.conftest import tiny_vit
from tests.onnx_cache import TEST_VIT_05, export_config


class EchoRunner(Runner):
    """A runner that doubles its input: checks the protocol without any backend."""
    name = "echo"

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor, self.events = factor, []

    def _load(self):
        self.events.append("load")

    def _close(self):
        self.events.append("close")

    def _infer(self, feed):
        return {"out": feed["x"] * self.factor}

    @property
    def input_info(self):
        return {"x": TensorInfo("float32", ("batch", 2))}

    @property
    def output_names(self):
        return ("out",)


def test_protocol_load_infer_close(monkeypatch):
    monkeypatch.setitem(runner_mod.RUNNERS, "echo", f"{__name__}:EchoRunner")
    r = make_runner("echo", factor=3.0)
    with pytest.raises(RuntimeError, match="not loaded"):
        r.infer(np.ones((1, 2)))
    with r:
        assert r.is_loaded
        assert r.infer(np.ones((1, 2)))["out"].tolist() == [[3.0, 3.0]]
        assert r.infer({"x": np.ones((1, 2))})["out"].sum() == 6.0
    assert r.events == ["load", "close"] and not r.is_loaded


def test_register_and_unknown_backend(monkeypatch):
    monkeypatch.setattr(runner_mod, "RUNNERS", dict(runner_mod.RUNNERS))
    register_runner("echo2", f"{__name__}:EchoRunner")
    assert isinstance(make_runner("echo2"), EchoRunner)
    with pytest.raises(UserError, match="unknown backend 'nope'"):
        make_runner("nope")


def test_torch_runner_with_selection_and_threads():
    model = tiny_vit(0.5)
    x = torch.randn(3, 3, 32, 32)
    before = torch.get_num_threads()
    with make_runner("torch", model=model, selection=True, threads=1) as r:
        assert torch.get_num_threads() == 1
        out = r.infer(x.numpy())
        assert r.output_names == ("logits", "topk_indices.0", "topk_indices.1", "topk_indices.2")
        assert r.describe()["threads"] == 1
    assert torch.get_num_threads() == before              # restored on close
    with torch.no_grad():
        assert np.allclose(out["logits"], model(x).numpy(), atol=1e-6)
    assert out["topk_indices.0"].shape == (3, 8)          # 16 tokens, r = 0.5


@pytest.mark.parametrize("kwargs,match", [({"fp16": True}, "fp16 autocast runs on CUDA only"),
                                          ({"device": "tpu"}, "unknown device")])
def test_torch_runner_refusals(kwargs, match):
    with pytest.raises(UserError, match=match):
        make_runner("torch", model=tiny_vit(), **kwargs).load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_torch_runner_without_cuda():
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        make_runner("torch", model=tiny_vit(), device="cuda").load()


def test_ort_runner_runs_and_casts(tmp_path_factory):
    path = export_config(tmp_path_factory, TEST_VIT_05)
    with make_runner("ort", onnx=path, threads=1) as r:
        assert r.input_info == {"input": TensorInfo("float32", ("batch", 3, 64, 64))}
        assert r.output_names == ("logits",)
        out = r.infer(np.zeros((2, 3, 64, 64), np.float64))["logits"]     # float64 in, cast once
        assert out.shape == (2, 1000) and out.dtype == np.float32
        info = r.describe()
        assert info["threads"] == 1 and info["providers"] == ["CPUExecutionProvider"]


def test_ort_runner_errors(tmp_path, tmp_path_factory):
    with pytest.raises(UserError, match="not found"):
        make_runner("ort", onnx=str(tmp_path / "missing.onnx")).load()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"garbage" * 100)
    with pytest.raises(UserError, match="ONNX Runtime cannot load"):
        make_runner("ort", onnx=str(junk)).load()
    with pytest.raises(UserError, match="unknown provider"):
        make_runner("ort", onnx=str(junk), provider="npu")
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        path = export_config(tmp_path_factory, TEST_VIT_05)
        with pytest.raises(UserError, match="has no CUDAExecutionProvider.*idlevit\\[gpu\\]"):
            make_runner("ort", onnx=path, provider="cuda").load()
    with pytest.raises(UserError, match="--threads 0"):
        make_runner("ort", onnx=str(junk), threads=0)
