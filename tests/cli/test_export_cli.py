"""idle-export: a checkpoint export end to end, and bad inputs -> one line, exit 2, nothing written."""
import json
import os

import pytest
import torch

from idlevit.fileio import file_sha256
from idlevit.cli.export import main
from tests.cli import exit_status
from idlevit.onnx_file.metadata import read_metadata
from idlevit.factory import create_idlevit


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A test_vit state dict at 64 px (16 image tokens)."""
    model, _ = create_idlevit("test_vit", 1.0, img_size=64, seed=5, warn_random=False)
    path = tmp_path_factory.mktemp("ckpt") / "test_vit_64.pth"
    torch.save({"model": model.state_dict()}, path)
    return str(path)


def run(argv):
    return exit_status(main, argv)


def _one_line_error(capsys, rc):
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert rc == 2
    assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], err
    return err[0]


def test_export_from_checkpoint(tmp_path, ckpt, capsys):
    out = tmp_path / "m.onnx"
    rc = main(["--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5", "--ckpt", ckpt, "-o", str(out),
               "--exporter", "torchscript", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["graph_check"]["ok"] and report["graph_check"]["topk"] == [8, 4, 2, 2]
    assert [c["batch"] for c in report["forward_checks"]] == [1, 2, 3]
    assert all(c["max_abs_diff"] <= 1e-4 for c in report["forward_checks"])
    meta = read_metadata(str(out))
    assert meta.ckpt_sha256 == file_sha256(ckpt) and meta.seed is None and meta.exporter == "torchscript"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]      # no temp file left over


@pytest.mark.parametrize("case", ["missing_ckpt", "img_size_vs_ckpt", "keep_ratio_0", "keep_ratio_1.5",
                                  "no_such_folder", "parent_is_a_file", "batch_1", "opset_13", "img_size_17",
                                  "img_size_0", "img_size_100000", "ckpt_is_a_folder"])
def test_bad_inputs_exit_2_and_leave_nothing(tmp_path, ckpt, capsys, case):
    out = tmp_path / "out"
    out.mkdir()
    target = str(out / "m.onnx")
    base = ["--model", "test_vit", "--img-size", "64", "-o", target]
    argv, needle = {
        "missing_ckpt": (base + ["--ckpt", str(tmp_path / "nope.pth")], "not found"),
        "img_size_vs_ckpt": (["--model", "test_vit", "--img-size", "32", "--ckpt", ckpt, "-o", target],
                             "pass the --img-size the checkpoint was trained at"),
        "keep_ratio_0": (base + ["--keep-ratio", "0"], "outside (0, 1]"),
        "keep_ratio_1.5": (base + ["--keep-ratio", "1.5"], "outside (0, 1]"),
        "no_such_folder": (base[:-1] + [str(tmp_path / "missing" / "m.onnx")], "does not exist"),
        "parent_is_a_file": (base[:-1] + [str(tmp_path / "afile" / "m.onnx")], "does not exist"),
        "batch_1": (base + ["-b", "1"], "torch.export specialises size-1 dims"),
        "opset_13": (base + ["--opset", "13"], "opset 13 is outside 17-20"),
        "img_size_17": (base + ["--img-size", "17"], "--img-size 17 is not a multiple of the patch size 16"),
        "img_size_0": (base + ["--img-size", "0"], "--img-size 0 is not a positive image size: pass a multiple"),
        "img_size_100000": (base + ["--img-size", "100000"], "memory, more than the"),
        "ckpt_is_a_folder": (base + ["--ckpt", str(tmp_path)], "is a folder, not a file"),
    }[case]
    (tmp_path / "afile").write_text("x")
    line = _one_line_error(capsys, run(argv))
    assert needle in line
    assert os.listdir(out) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = _one_line_error(capsys, run(["--model", "test_vit", "-o", str(ro / "m.onnx")]))
        assert "not writable" in line and os.listdir(ro) == []
    finally:
        ro.chmod(0o700)


def test_help_names_every_default(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--opset", "--exporter", "--simplify", "--check-forward", "--selection-outputs", "-o OUTPUT"):
        assert flag in text
    assert text.count("(default:") >= 12


def test_sigkilled_export_leaves_a_temp_file_that_the_next_run_removes(tmp_path, capsys):
    """SIGKILL runs no cleanup: the temp .onnx stays until the next idle-export to the same -o (bounded wait)."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "m.onnx"
    proc = subprocess.Popen([sys.executable, "-c", "import sys, idlevit_launch; sys.exit(idlevit_launch.export("
                             f"['--model', 'test_vit', '--img-size', '64', '--exporter', 'torchscript', "
                             f"'--no-check-forward', '-o', {str(out)!r}]))"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not [f for f in os.listdir(tmp_path) if f.startswith(".m.onnx.tmp-")]:
            assert proc.poll() is None and time.monotonic() < deadline, "export never opened its temp file"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert len(os.listdir(tmp_path)) == 1 and not out.exists()
    line = _one_line_error(capsys, run(["--model", "test_vit", "--img-size", "65", "-o", str(out)]))
    assert "patch size" in line and os.listdir(tmp_path) == []
