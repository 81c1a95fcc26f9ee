"""Tiny exported IdleViT ONNX files shared by the engine and calibration tests."""
import json

import numpy as np
import pytest
import torch

from tests.conftest import tiny_vit

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def export_tiny_onnx(path, keep_ratio=0.5, seed=0):
    """A 4-block 32 px IdleViT as fp32 ONNX (dynamo export, batch dynamic) with our metadata."""
    import onnx
    model = tiny_vit(keep_ratio=keep_ratio, seed=seed)
    x = torch.randn(2, 3, 32, 32)
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, input_names=["input"],
                      output_names=["logits"], dynamic_shapes={"x": {0: batch}}, verbose=False)
    proto = onnx.load(str(path))
    meta = {"model": "tiny_vit", "keep_ratios": json.dumps(model.keep_ratios), "img_size": "32",
            "mean": json.dumps(MEAN), "std": json.dumps(STD), "seed": str(seed)}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return model


# other test folders re-import these fixtures; the cache keeps it to one export per process
_ONCE = {}


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """(path, torch model) of the tiny fp32 ONNX, exported once per session."""
    if "onnx" not in _ONCE:
        path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
        _ONCE["onnx"] = (str(path), export_tiny_onnx(path))
    return _ONCE["onnx"]


@pytest.fixture(scope="session")
def tiny_calib(tmp_path_factory):
    from idlevit.calibration.dataset import write_calib_npz
    if "calib" not in _ONCE:
        path = tmp_path_factory.mktemp("calib") / "calib.npz"
        write_calib_npz(str(path), "input", np.random.RandomState(0).randn(32, 3, 32, 32).astype(np.float32))
        _ONCE["calib"] = str(path)
    return _ONCE["calib"]
