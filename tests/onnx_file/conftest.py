"""Exported ONNX fixtures shared with the engine tests."""
from tests.engines.conftest import tiny_onnx  # noqa: F401  (shared fixture)
