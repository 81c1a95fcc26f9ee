"""idle-runtime parity: pass (exit 0), a real parity failure (exit 1), flags that contradict the file (exit 2)."""
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from idlevit.cli.runtime import main
from tests.cli import exit_status
from tests.onnx_cache import TEST_VIT_05, cached, export_config, photos_dir


def run(argv):
    return exit_status(main, argv)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_05)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return photos_dir(tmp_path_factory)


def test_parity_passes_on_photos_and_random_inputs(exported, photos, capsys):
    rc = run(["parity", "--onnx", exported, "--images", photos, "-n", "3", "-b", "4", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "8 images + 3 random inputs in batches of 4" in out and "parity PASSED on 11 samples" in out
    assert "selection agreement (worst block)" in out


def test_parity_json(exported, capsys):
    rc = run(["parity", "--onnx", exported, "-n", "5", "-b", "2", "--threads", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["passed"] and report["samples"] == 5
    assert report["max_abs_diff"] <= 1e-4 and report["top1_agreement"] == 1.0
    assert report["selection_per_block"] == [1.0, 1.0, 1.0, 1.0] and report["model"] == "test_vit"
    assert report["thresholds"]["atol"] == 1e-4 and report["precision"] == "fp32"


def test_parity_failure_exits_1(exported, tmp_path_factory, capsys):
    def tamper(path):
        model = onnx.load(exported)
        gemm = [n for n in model.graph.node if n.op_type == "Gemm"][-1]       # the classifier head
        bias = np.zeros(1000, np.float32)
        bias[7] = 10.0                                                       # every image now says class 7
        model.graph.initializer.append(numpy_helper.from_array(bias, "tampered_bias"))
        del gemm.input[2:]
        gemm.input.append("tampered_bias")
        onnx.save(model, path)
    tampered = cached(tmp_path_factory, "tampered.onnx", tamper)
    rc = run(["parity", "--onnx", tampered, "-n", "4", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "parity FAILED" in captured.out
    assert captured.err.strip().splitlines()[-1] == "error: parity failed: max abs diff, top-1 agreement"


@pytest.mark.parametrize("flags,needle", [
    (["--model", "idlevit_deit_tiny_patch16_224"], "does not match"),
    (["--keep-ratio", "0.7"], "--keep-ratio 0.7 (K per block -,-,11,7,5,5) does not match"),
    (["--img-size", "32"], "--img-size 32 does not match"),
    (["--seed", "1"], "--seed 1 does not match"),
    (["--keep-ratio", "0"], "outside (0, 1]"),
    (["--images", "/nonexistent/photos"], "image folder /nonexistent/photos not found"),
    (["-b", "0"], "-b 0 must be at least 1"),
    (["--precision", "int8"], "--precision int8 contradicts"),
    (["-n", "-1"], "-n -1 must be >= 0"),
    (["-n", "100000000000"], "memory, more than the"),
])
def test_contradicting_or_bad_flags_exit_2(exported, capsys, flags, needle):
    rc = run(["parity", "--onnx", exported, "-n", "2", "--threads", "1"] + flags)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_files_that_are_not_idlevit_exports_exit_2(exported, tmp_path, capsys):
    bare = onnx.load(exported)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    for path, needle in ((tmp_path / "bare.onnx", "has no idlevit metadata"), (tmp_path / "none.onnx", "not found")):
        rc = run(["parity", "--onnx", str(path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_parity_runs_an_elastic_file_at_the_keep_ratio_asked(tmp_path_factory, capsys):
    from tests.onnx_cache import TEST_VIT_ELASTIC
    elastic = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    rc = run(["parity", "--onnx", elastic, "--keep-ratio", "0.37", "-n", "4", "--min-selection", "1",
              "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "K per block -,-,5,2,1,1" in out and "elastic at keep ratio 0.37" in out
    assert run(["parity", "--onnx", elastic, "--keep-ratios", "1", "1", "0.5", "0.5", "0.5", "0.5"]) == 2
    assert "takes one --keep-ratio per run" in capsys.readouterr().err


def test_parity_backend_auto_measures_once_then_reads_the_cache(exported, capsys, monkeypatch, tmp_path):
    """--backend auto: every candidate checked against ONNX Runtime and timed, the pick said on stderr with its
    reason, the measurement cached for this CPU, file and thread count, and parity then run on the pick."""
    pytest.importorskip("openvino")
    monkeypatch.setenv("IDLEVIT_CACHE_DIR", str(tmp_path))
    argv = ["parity", "--onnx", exported, "-n", "3", "-b", "2", "--threads", "1", "--backend", "auto", "--json"]
    assert run(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    auto = report["backend_auto"]
    assert "--backend auto picked" in captured.err and "(measured now)" in captured.err
    assert {m["backend"] for m in auto["measured"]} >= {"ort", "openvino"}
    assert report["runner"]["backend"] == auto["picked"]["backend"] and report["passed"]
    timed = [m for m in auto["measured"] if m["parity_passed"]]
    assert all(m["median_ms"] > 0 for m in timed)
    assert len(list((tmp_path / "backend-auto").iterdir())) == 1
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert "cached measurement" in captured.err
    assert json.loads(captured.out)["backend_auto"]["picked"] == auto["picked"]


def test_backend_auto_refuses_a_precision(exported, capsys):
    assert run(["parity", "--onnx", exported, "--backend", "auto", "--precision", "bf16"]) == 2
    assert "--backend auto chooses the precision too" in capsys.readouterr().err
    assert run(["bench", "--onnx", exported, "--backend", "auto", "--precision", "bf16"]) == 2
    assert "--backend auto chooses the precision too" in capsys.readouterr().err
