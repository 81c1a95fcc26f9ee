import csv
import json
import os

import pytest
from PIL import Image

from idlevit.cli.runtime import main


def test_sweep_writes_json_csv_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", "test_vit", "--img-size", "64", "--ratios", "0.5", "--backends", "torch", "ort",
                 "-b", "2", "--warmup", "0", "--iters", "2", "--rounds", "1", "--threads", "1",
                 "--parity-samples", "3", "-o", str(out)]) == 0
    data = json.loads((out / "sweep.json").read_text())
    recs = data["records"]
    assert [(r["backend"], r["keep_ratio"]) for r in recs] == [("torch", 1.0), ("torch", 0.5), ("ort", 1.0),
                                                              ("ort", 0.5)]
    half = next(r for r in recs if r["backend"] == "ort" and r["keep_ratio"] == 0.5)
    assert half["gmacs_executed"] < recs[0]["gmacs_executed"]
    assert half["mac_ratio"] == pytest.approx(recs[0]["gmacs_executed"] / half["gmacs_executed"])
    assert half["efficiency"] == pytest.approx(half["speedup"] / half["mac_ratio"])
    assert half["top1_agreement"] == 1.0 and half["max_abs_diff"] < 1e-4
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 4 and float(rows[1]["keep_ratio"]) == 0.5
    assert Image.open(out / "sweep.png").format == "PNG"
    assert sorted(p.name for p in (out / "onnx").iterdir()) == ["test_vit_baseline_torchscript.onnx",
                                                                "test_vit_r0.5.onnx", "test_vit_r1.onnx"]
    assert data["baseline_file"]["exporter"] == "torchscript"
    assert "ort speed-ups are against the baseline" in capsys.readouterr().out
    # --json: sweep.json's content on stdout instead of the table (the exports above are reused)
    again = tmp_path / "again"
    assert main(["sweep", "--model", "test_vit", "--img-size", "64", "--ratios", "0.5", "--backends", "ort",
                 "-b", "2", "--warmup", "0", "--iters", "1", "--rounds", "1", "--threads", "1",
                 "--parity-samples", "0", "-o", str(again), "--onnx-dir", str(out / "onnx"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((again / "sweep.json").read_text())
    assert [(r["backend"], r["keep_ratio"]) for r in printed["records"]] == [("ort", 1.0), ("ort", 0.5)]


def test_sweep_bad_ratio(tmp_path, capsys):
    assert main(["sweep", "--ratios", "0", "-o", str(tmp_path / "s")]) == 2
    assert "outside (0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-o", "--onnx-dir"])
def test_sweep_unwritable_folders_are_one_line_and_create_nothing(tmp_path, capsys, flag):
    (tmp_path / "afile").write_text("x")
    folders = {"-o": str(tmp_path / "s"), "--onnx-dir": str(tmp_path / "o")}
    folders[flag] = str(tmp_path / "afile" / "sub")
    argv = ["sweep", "--model", "test_vit", "--img-size", "64", "-o", folders["-o"], "--onnx-dir", folders["--onnx-dir"]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot create {flag} {folders[flag]} ({tmp_path / 'afile'} is a file): pass a folder you "
                   "can write to"], err
    assert sorted(os.listdir(tmp_path)) == ["afile"]


@pytest.mark.parametrize("flag", ["--keep-ratio", "--keep-ratios"])
def test_sweep_takes_its_ratios_from_ratios_only(tmp_path, capsys, flag):
    """The model's own schedule is replaced per ratio, so sweep has no keep-ratio flag to ignore."""
    with pytest.raises(SystemExit) as e:
        main(["sweep", flag, "0.5", "-o", str(tmp_path / "s")])
    assert e.value.code == 2
    assert f"unrecognized arguments: {flag} 0.5" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
