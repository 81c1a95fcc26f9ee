"""OpenVINO runner: fp32 parity with selection, dynamic batch, threads, bf16 opt-in, registration, missing package."""
import sys

import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.runtime.parity import compare_runners, thresholds_for
from idlevit.runtime.runner import make_runner
from idlevit.runtime.torch_runner import TorchRunner
from tests.engines.conftest import _reference
from tests.onnx_cache import TEST_VIT_05, TEST_VIT_10, export_config

try:
    import openvino  # noqa: F401
    HAVE_OPENVINO = True
except ImportError:
    HAVE_OPENVINO = False
needs_openvino = pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed (pip install 'idlevit[openvino]')")


@pytest.fixture(scope="module")
def idle_onnx(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_05)


def _inputs(n=6, seed=0):
    return np.random.RandomState(seed).randn(n, 3, 64, 64).astype(np.float32)


@needs_openvino
def test_f32_matches_pytorch_with_the_same_selection_at_any_batch(idle_onnx):
    with make_runner("openvino", onnx=idle_onnx, threads=1, selection=True) as ov, \
            TorchRunner(_reference(TEST_VIT_05), threads=1, selection=True) as ref:
        assert ov.input_info["input"].shape == ("batch", 3, 64, 64)
        assert ov.output_names[0] == "logits" and len(ov.output_names) == 5   # logits + 4 idle blocks
        x = _inputs(6)
        report = compare_runners(ov, ref, [x[:1], x[1:3], x[3:]], thresholds_for("fp32"))
        info = ov.describe()
    assert report.passed and report.max_abs_diff <= 1e-4 and report.top1_agreement == 1.0
    assert report.selection_per_block == [1.0] * 4
    assert (info["backend"], info["precision"], info["threads"]) == ("openvino", "f32", 1)


@needs_openvino
def test_threads_and_baseline_without_selection(tmp_path_factory):
    base = export_config(tmp_path_factory, TEST_VIT_10)
    with make_runner("openvino", onnx=base, threads=2) as ov:
        assert ov.describe()["threads"] == 2
        assert ov.infer(_inputs(2))["logits"].shape == (2, 1000)
    with pytest.raises(UserError, match="no TopK node"):
        make_runner("openvino", onnx=base, selection=True).load()


@needs_openvino
def test_bf16_is_opt_in_and_reports_what_ran(idle_onnx):
    x = _inputs(4)
    with make_runner("openvino", onnx=idle_onnx, threads=1) as f32, \
            make_runner("openvino", onnx=idle_onnx, threads=1, precision="bf16") as bf16:
        a, b = f32.infer(x)["logits"], bf16.infer(x)["logits"]
        ran = bf16.executed_precision
        described = bf16.describe()["precision"]
    assert described.startswith(ran)
    if ran == "bf16":   # emulated or native: the result is rounded, but close
        assert 0 < np.abs(a - b).max() < 0.1 * np.abs(a).max()
    else:               # a plugin that falls back to f32 must say it was asked for bf16
        assert "asked bf16" in described and np.abs(a - b).max() < 1e-4


@needs_openvino
def test_bad_file_and_precision_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(UserError, match="OpenVINO cannot read"):
        make_runner("openvino", onnx=str(bad)).load()
    with pytest.raises(UserError, match="not found"):
        make_runner("openvino", onnx=str(tmp_path / "missing.onnx")).load()
    with pytest.raises(UserError, match="unknown OpenVINO precision 'fp8'"):
        make_runner("openvino", onnx=str(bad), precision="fp8")


def test_missing_openvino_gives_the_install_hint(idle_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)   # import openvino -> ImportError
    with pytest.raises(UserError, match=r"pip install 'idlevit\[openvino\]'"):
        make_runner("openvino", onnx=idle_onnx).load()
