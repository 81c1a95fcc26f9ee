"""Bad values caught while the flags are parsed (before any export), and the outputs a failed run leaves: none."""
import os

import pytest

from idlevit.cli.runtime import main
from tests.cli import exit_status


@pytest.mark.parametrize("verb", ["validate", "bench", "parity", "lineup", "sweep"])
@pytest.mark.parametrize("threads", ["0", "-3", "two"])
def test_threads_is_refused_while_parsing_in_every_tool(verb, threads, tmp_path, capsys, monkeypatch):
    import idlevit.factory
    monkeypatch.setattr(idlevit.factory, "create_idlevit", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.chdir(tmp_path)
    assert exit_status(main, [verb, "--threads", threads]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument --threads: {threads} is not a whole number from 1" in err[0]
    assert os.listdir(tmp_path) == []


def test_failed_sweep_leaves_no_empty_folders(tmp_path, capsys):
    out = tmp_path / "runs" / "sweep"
    argv = ["sweep", "--model", "test_vit", "--img-size", "64", "--ckpt", str(tmp_path / "missing.pth"), "-o", str(out)]
    assert exit_status(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.pth not found" in err[0]
    assert os.listdir(tmp_path) == []


def test_show_image_that_is_a_folder_says_so(tmp_path, capsys):
    assert exit_status(main, ["show", "--image", str(tmp_path), "-o", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: image {tmp_path} is a folder, not an image file: pass an image file with --image"]


def test_lineup_json_output_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import idlevit.cli.reference_args
    monkeypatch.setattr(idlevit.cli.reference_args, "reference_from_args", lambda *a, **k: pytest.fail("work started"))
    argv = ["lineup", "--onnx", "a.onnx", "--baseline-onnx", "b.onnx", "--json-output", str(tmp_path / "no" / "l.json")]
    assert exit_status(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("pass another --json-output")
