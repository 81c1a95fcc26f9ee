"""OrtRunner on real exported files: load, infer and casts, an elastic file's keep ratio per call, errors, close."""
import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.runtime.runner import TensorInfo, make_runner
from tests.onnx_cache import TEST_VIT_05, TEST_VIT_ELASTIC, export_config


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


def test_ort_runner_elastic_file_runs_each_ratio_like_the_fixed_file(tmp_path_factory):
    fixed, elastic = (export_config(tmp_path_factory, c) for c in (TEST_VIT_05, TEST_VIT_ELASTIC))
    x = np.random.RandomState(0).randn(2, 3, 64, 64).astype(np.float32)
    with make_runner("ort", onnx=fixed, threads=1) as f, make_runner("ort", onnx=elastic, threads=1) as e:
        assert e.elastic is not None and f.elastic is None
        want = f.infer(x)["logits"]
        assert np.allclose(e.infer(x, keep_ratio=0.5)["logits"], want, atol=1e-5)
        assert np.allclose(e.infer(x)["logits"], want, atol=1e-5)          # 0.5 is the file's default
        assert not np.allclose(e.infer(x, keep_ratio=0.3)["logits"], want, atol=1e-5)


def test_ort_runner_keep_ratio_errors(tmp_path_factory):
    fixed, elastic = (export_config(tmp_path_factory, c) for c in (TEST_VIT_05, TEST_VIT_ELASTIC))
    x = np.zeros((1, 3, 64, 64), np.float32)
    with make_runner("ort", onnx=fixed, threads=1) as r, pytest.raises(UserError, match="fixed keep ratio"):
        r.infer(x, keep_ratio=0.5)
    with make_runner("ort", onnx=elastic, threads=1) as r:
        with pytest.raises(UserError, match="keep ratio"):
            r.infer(x, keep_ratio=1.5)
    runner = make_runner("ort", onnx=elastic, threads=1).set_keep_ratio(0.0)    # checked when the model loads
    with pytest.raises(UserError, match="keep ratio"):
        runner.load()
    assert not runner.is_loaded


def test_ort_runner_after_close_is_not_loaded(tmp_path_factory):
    r = make_runner("ort", onnx=export_config(tmp_path_factory, TEST_VIT_05), threads=1).load()
    r.close()
    with pytest.raises(RuntimeError, match="not loaded"):
        r.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_ort_runner_session_config_changes_settings_not_results(tmp_path_factory):
    """With more than one thread the workers spin only while Run is in flight; the caller's session config entries
    (cpu_lineup.py compares them) override that and are reported; scheduling settings leave the outputs
    bit-identical."""
    path = export_config(tmp_path_factory, TEST_VIT_05)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64), dtype=np.float32)
    cfg = {"session.intra_op.allow_spinning": "0", "session.dynamic_block_base": "4"}
    spin, stop = "session.intra_op.allow_spinning", "session.force_spinning_stop"
    with make_runner("ort", onnx=path, threads=2) as plain, \
            make_runner("ort", onnx=path, threads=2, session_config=cfg) as tuned, \
            make_runner("ort", onnx=path, threads=1) as single:
        plain_options = plain.session.get_session_options()
        assert plain_options.get_session_config_entry(spin) == "1"                          # the runner's own
        assert plain_options.get_session_config_entry(stop) == "1"
        assert tuned.session.get_session_options().get_session_config_entry(spin) == "0"   # the caller's wins
        assert plain.describe()["session_config"] == {spin: "1", stop: "1"}
        assert tuned.describe()["session_config"] == {stop: "1", **cfg}
        assert "session_config" not in single.describe()                                    # no workers to spin
        np.testing.assert_array_equal(tuned.infer(x)["logits"], plain.infer(x)["logits"])


def test_older_onnxruntime_says_once_that_its_int8_kernels_are_not_exact(capsys, monkeypatch):
    from idlevit.runtime import ort_runner
    monkeypatch.setattr(ort_runner, "_WARNED", [])
    ort_runner.warn_inexact_int8_kernels("1.32.0")
    assert capsys.readouterr().err == ""
    ort_runner.warn_inexact_int8_kernels("1.23.2")
    ort_runner.warn_inexact_int8_kernels("1.23.2")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ONNX Runtime 1.23.2") and "onnxruntime >= 1.32" in err[0]
