"""Tiny exports for the serving tests: timm's test ViT at 64 px, r = 0.5 and the r = 1.0 baseline."""
import pytest

from tests.onnx_cache import TEST_VIT_05, TEST_VIT_10, export_config


@pytest.fixture(scope="session")
def tiny_ladder(tmp_path_factory):
    """(r = 1.0 path, r = 0.5 path): one model at two keep ratios."""
    return export_config(tmp_path_factory, TEST_VIT_10), export_config(tmp_path_factory, TEST_VIT_05)
