"""Real TensorRT on a GPU: tiny IdleViT FP16 engine, parity against PyTorch, sidecar checks.

Skipped (with the reason) where TensorRT or a CUDA GPU is missing, as on CI.
"""
import importlib.util
import json

import numpy as np
import pytest
import torch

from idlevit.engines.batch_profile import BatchProfile
from idlevit.engines.build import BuildRequest, build_engine
from idlevit.errors import UserError

pytestmark = [
    pytest.mark.trt, pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                       reason="TensorRT is not installed (pip install 'idlevit[trt]'); CI has no TensorRT"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (TensorRT engines need one)"),
]


@pytest.fixture(scope="module")
def fp16_engine(tiny_onnx, tmp_path_factory):
    engine = str(tmp_path_factory.mktemp("engine") / "tiny.engine")
    build_engine(BuildRequest(tiny_onnx[0], engine, fp16=True, profile=BatchProfile(1, 8, 16), workspace=1 << 30))
    return engine


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_fp16_engine_matches_pytorch(fp16_engine, tiny_onnx, cuda_graph):
    from idlevit.runtime.trt_runner import TrtRunner
    model = tiny_onnx[1]
    x = torch.randn(16, 3, 64, 64)
    with torch.no_grad():
        ref = model(x).numpy()
    with TrtRunner(fp16_engine, cuda_graph=cuda_graph) as runner:
        for batch in (16, 3, 16):  # new shapes, then a cached (or captured) one again
            out = runner.infer(x[:batch].numpy())["logits"]
            cos = (out * ref[:batch]).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref[:batch], axis=1)
            assert cos.min() >= 0.999 and np.mean(out.argmax(1) == ref[:batch].argmax(1)) >= 0.9
        assert runner.batch_range() == (1, 16)


def test_sidecar_describes_the_engine(fp16_engine):
    import tensorrt as trt
    side = json.load(open(fp16_engine + ".json"))
    assert side["tensorrt_version"] == trt.__version__ and side["precision"] == "fp16"
    assert side["gpu_name"] == torch.cuda.get_device_name(0) and side["keep_ratios"] == [1.0, 1.0, 0.5, 0.25, 0.125, 0.125]


def test_version_mismatch_is_refused(fp16_engine, tmp_path):
    from idlevit.runtime.trt_runner import TrtRunner
    engine = tmp_path / "old.engine"
    engine.write_bytes(open(fp16_engine, "rb").read())
    side = json.load(open(fp16_engine + ".json"))
    side["tensorrt_version"] = "9.3.0.1"
    (tmp_path / "old.engine.json").write_text(json.dumps(side))
    with pytest.raises(UserError, match="built with TensorRT 9.3.0.1 but TensorRT"):
        TrtRunner(str(engine)).load()
    side["gpu_name"], side["tensorrt_version"] = "Some Other GPU", json.load(open(fp16_engine + ".json"))["tensorrt_version"]
    (tmp_path / "old.engine.json").write_text(json.dumps(side))
    with pytest.raises(UserError, match="built for Some Other GPU"):
        TrtRunner(str(engine)).load()
