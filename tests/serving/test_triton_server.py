"""A real tritonserver (nvidia-pytriton's) on 127.0.0.1 serves the python-backend model; outputs match local ORT.

Needs the venv that `.ci/triton-venv.sh` builds ($IDLEVIT_TRITON_PYTHON); skipped, with the reason, only
when there is none. One server start, a fixed handful of requests, each with a timeout; the server is
stopped on every path.
"""
import concurrent.futures

import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.serving.repository import DeployOptions, write_repository
from idlevit.serving.server import TritonInstall, TritonServer

pytestmark = pytest.mark.triton
httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'idlevit[serve]'")
grpcclient = pytest.importorskip("tritonclient.grpc", reason="pip install 'idlevit[serve]'")
from tritonclient.utils import InferenceServerException  # noqa: E402

TIMEOUT_S = 60.0
ATOL = 1e-5


@pytest.fixture(scope="module")
def install():
    try:
        return TritonInstall.find()
    except UserError as e:
        pytest.skip(f"tritonserver cannot start here: {e}")


@pytest.fixture(scope="module")
def server(install, tiny_ladder, tmp_path_factory):
    repo = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(list(tiny_ladder), str(repo), options=DeployOptions(max_batch=4, threads=1))
    with TritonServer(str(repo), models=["idlevit"], install=install) as s:  # stops on every exit path
        yield s


@pytest.fixture(scope="module")
def reference(tiny_ladder):
    """Local ONNX Runtime outputs of both files on the same inputs."""
    x = np.random.default_rng(0).standard_normal((6, 3, 64, 64), dtype=np.float32)
    outs = {}
    for ratio, path in zip((1.0, 0.5), tiny_ladder):
        with OrtRunner(path, threads=1) as r:
            outs[ratio] = r.infer(x)["logits"]
    return x, outs


def _http_infer(client, x, **kw):
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer("idlevit", [inp], timeout=int(TIMEOUT_S * 1e6), **kw)
    return res.as_numpy("logits"), res.as_numpy("keep_ratio")


def _grpc_infer(client, x, **kw):
    inp = grpcclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer("idlevit", [inp], client_timeout=TIMEOUT_S, **kw)
    return res.as_numpy("logits"), res.as_numpy("keep_ratio")


def test_http_matches_local_ort_at_each_requested_ratio(server, reference):
    x, ref = reference
    client = httpclient.InferenceServerClient(server.http_url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
    try:
        assert client.is_model_ready("idlevit")
        for ratio, rows in ((0.5, slice(0, 2)), (1.0, slice(2, 5))):
            logits, used = _http_infer(client, x[rows], parameters={"keep_ratio": ratio})
            assert np.abs(logits - ref[ratio][rows]).max() <= ATOL
            assert used.ravel().tolist() == [ratio] * len(logits)
        logits, used = _http_infer(client, x[:1])   # no parameter: the highest ratio served
        assert np.abs(logits - ref[1.0][:1]).max() <= ATOL and used.ravel().tolist() == [1.0]
        with pytest.raises(InferenceServerException, match="keep ratio 0.3 is not served"):
            _http_infer(client, x[:1], parameters={"keep_ratio": 0.3})
    finally:
        client.close()


def test_grpc_concurrent_requests_are_batched_and_match(server, reference):
    x, ref = reference
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        ratios = [0.5, 1.0, 0.5, 1.0, 0.5, 1.0]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(_grpc_infer, client, x[n:n + 1], parameters={"keep_ratio": r})
                       for n, r in enumerate(ratios)]
            results = [f.result(timeout=TIMEOUT_S) for f in futures]
        for n, (ratio, (logits, used)) in enumerate(zip(ratios, results)):
            assert np.abs(logits - ref[ratio][n:n + 1]).max() <= ATOL
            assert used.ravel().tolist() == [ratio]
        stats = client.get_inference_statistics("idlevit", as_json=True)["model_stats"][0]
        assert int(stats["inference_count"]) >= len(ratios)
    finally:
        client.close()


def test_loadtest_drives_the_server_within_its_budget(server):
    from idlevit.serving.loadtest import LoadPlan, drive
    plan = LoadPlan(phases=(1, 2), phase_seconds=3.0, max_requests=5)
    result = drive(server.grpc_url, "idlevit", (3, 64, 64), "0.5", plan)
    assert result.errors == 0 and 2 <= len(result.samples) <= 10          # budget: 5 requests per phase
    assert {s.keep_ratio for s in result.samples} == {0.5}
    assert {s.phase for s in result.samples} == {0, 1}
    assert len(result.phase_bounds) == 3 and all(s.latency_ms > 0 for s in result.samples)
