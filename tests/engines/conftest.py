"""Exported IdleViT ONNX files shared by the engine, calibration and CLI tests (built once per session)."""
import numpy as np
import pytest

from tests.onnx_cache import DEIT_S_07, TEST_VIT_05, cached, export_config, photos_dir


def _reference(config):
    from idlevit.factory import create_idlevit
    model_name, keep_ratio, img_size, _ = config
    return create_idlevit(model_name, keep_ratio, img_size=img_size, seed=0, warn_random=False)[0]


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """(path, torch model): timm's 6-block test ViT at 64 px, r = 0.5 (4 idle blocks), from idle-export."""
    return export_config(tmp_path_factory, TEST_VIT_05), _reference(TEST_VIT_05)


@pytest.fixture(scope="session")
def deit_s_onnx(tmp_path_factory):
    """(path, torch model): IdleViT-DeiT-S r = 0.7, seed 0 (the CI parity export, shared with tests/export)."""
    return export_config(tmp_path_factory, DEIT_S_07), _reference(DEIT_S_07)


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """scikit-image's bundled photographs as PNG files."""
    return photos_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_calib(tmp_path_factory):
    from idlevit.calibration.dataset import write_calib_npz

    def build(path):
        write_calib_npz(path, "input", np.random.RandomState(0).randn(32, 3, 64, 64).astype(np.float32))
    return cached(tmp_path_factory, "trt_tiny_calib.npz", build)
