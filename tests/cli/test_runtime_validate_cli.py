"""idle-runtime validate: the whole main job on a small model, and bad input."""
import pytest

from idlevit.cli.runtime import main
from tests.cli import exit_status
from idlevit.onnx_file.metadata import read_metadata


def run(argv):
    return exit_status(main, argv)


def test_validate_small_model(tmp_path, capsys):
    out = tmp_path / "v.onnx"
    rc = run(["validate", "--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5", "-o", str(out),
              "--exporter", "torchscript", "-n", "2", "--parity-batch", "4", "--bench-batch", "2", "--iters", "1",
              "--warmup", "0", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for needle in ("export", "TensorRT op check", "4 TopK (K 8,4,2,2)", "parity (ORT CPU, fp32)",
                   "8 scikit-image photographs + 2 random inputs", "selection 1.000", "efficiency",
                   "validate PASSED"):
        assert needle in captured.out, needle
    assert "[4/4] bench" in captured.err
    assert read_metadata(str(out)).keep_tokens == [None, None, 8, 4, 2, 2]


def test_validate_backend_auto_runs_parity_and_bench_on_the_pick(tmp_path, capsys, monkeypatch):
    import json
    monkeypatch.setenv("IDLEVIT_CACHE_DIR", str(tmp_path / "cache"))
    rc = run(["validate", "--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5", "--exporter",
              "torchscript", "-n", "2", "--parity-batch", "4", "--bench-batch", "2", "--iters", "1", "--warmup", "0",
              "--threads", "1", "--backend", "auto", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["passed"]
    picked = report["backend_auto"]["picked"]
    assert report["backend"] == picked["backend"] and report["precision"] == picked["precision"]
    assert report["bench"]["setup"]["backend"] == picked["backend"]


@pytest.mark.parametrize("flags,needle", [(["--keep-ratio", "1.5"], "outside (0, 1]"),
                                          (["--images", "/nonexistent"], "not found"),
                                          (["-o", "/nonexistent/dir/v.onnx"], "does not exist")])
def test_validate_bad_input(capsys, flags, needle):
    rc = run(["validate", "--model", "test_vit"] + flags)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert rc == 2 and len(err) == 1 and needle in err[0], err
