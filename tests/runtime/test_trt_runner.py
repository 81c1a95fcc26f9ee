"""TrtRunner errors that need neither TensorRT nor a GPU (the GPU tests are in tests/engines/test_trt_gpu.py)."""
import sys

import pytest

from idlevit.errors import UserError
from idlevit.runtime.trt_runner import TrtRunner


def test_missing_engine(tmp_path):
    with pytest.raises(UserError, match="not found: pass the engine file idle-trt-build wrote"):
        TrtRunner(str(tmp_path / "none.engine")).load()


def test_no_tensorrt_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(UserError, match=r"^TensorRT is not installed: pip install 'idlevit\[trt\]'$"):
        with TrtRunner(str(engine)):
            pass
