"""The runner protocol: factory, registration, context manager (the backends have test_<backend>_runner.py)."""
import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.runtime import runner as runner_mod
from idlevit.runtime.runner import Runner, TensorInfo, make_runner, register_runner


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
