"""`idle-runtime sweep` over GTP-ViT's P: executed GMACs fall with P, parity against PyTorch passes, the files
are written, and the flags that do not fit a GTP-ViT (or an IdleViT) sweep are refused in one line."""
import csv
import json

import pytest
from PIL import Image

from idlevit.cli.runtime import main

TINY = ["--model", "gtp_deit_tiny_patch16_224", "--img-size", "32", "--num-classes", "10",
        "--model-kwargs", "depth=4", "embed_dim=32", "num_heads=2", "patch_size=8", "num_neighbours=3"]
FAST = ["-b", "2", "--warmup", "0", "--iters", "2", "--rounds", "1", "--threads", "1"]


def test_sweep_over_p_writes_gmacs_speed_and_parity(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep"] + TINY + ["--num-props", "3", "1", "--backends", "torch", "ort", "--parity-samples", "4",
                                    "-o", str(out)] + FAST) == 0
    data = json.loads((out / "sweep.json").read_text())
    assert data["axis"] == "num_prop"
    recs = data["records"]
    assert [(r["backend"], r["num_prop"]) for r in recs] == [(b, p) for b in ("torch", "ort") for p in (0, 1, 3)]
    gmacs = [r["gmacs_executed"] for r in recs[:3]]
    assert gmacs[0] > gmacs[1] > gmacs[2] > 0                      # P = 0 is the plain backbone
    assert [r["gmacs_executed"] for r in recs[3:]] == gmacs        # the same count on every backend
    for r in recs:
        assert r["mac_ratio"] == pytest.approx(gmacs[0] / r["gmacs_executed"])
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["mac_ratio"])
        assert r["speedup"] > 0 and r["throughput"] > 0
    for r in recs[3:]:
        assert r["parity_passed"] and r["top1_agreement"] == 1.0 and r["max_abs_diff"] < 1e-4
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["num_prop"]) for r in rows] == [0, 1, 3, 0, 1, 3] and "keep_ratio" not in rows[0]
    assert Image.open(out / "sweep.png").format == "PNG"
    name = "gtp_deit_tiny_patch16_224"
    assert sorted(p.name for p in (out / "onnx").iterdir()) == [f"{name}_baseline_torchscript.onnx", f"{name}_p0.onnx",
                                                                f"{name}_p1.onnx", f"{name}_p3.onnx"]
    printed = capsys.readouterr().out
    assert "against the plain backbone (P = 0)" in printed and "wrote" in printed
    # a second sweep reuses the exports whose metadata shows the same weights and P (plain backbone included)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "onnx").iterdir()}
    assert main(["sweep"] + TINY + ["--num-props", "1", "--backends", "ort", "--parity-samples", "0", "-o",
                                    str(tmp_path / "again"), "--onnx-dir", str(out / "onnx"), "--json"] + FAST) == 0
    assert [r["num_prop"] for r in json.loads(capsys.readouterr().out)["records"]] == [0, 1]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "onnx").iterdir()} == stamps


@pytest.mark.parametrize("argv, message", [
    (TINY + ["--ratios", "0.5"], "error: --ratios sets IdleViT keep ratios and gtp_deit_tiny_patch16_224 is GTP-ViT"),
    (TINY + ["--num-props", "4"], "error: --num-props 4 is outside 0..3: 4 blocks propagating P tokens each"),
    (TINY + ["num_prop=2"], "error: --model-kwargs num_prop=... is what the sweep varies"),
    (["--model", "test_vit", "--img-size", "64", "--num-props", "2"], "error: --num-props sweeps GTP-ViT's P and "
                                                                       "test_vit is not GTP-ViT"),
])
def test_flags_that_do_not_fit_are_refused_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "s"
    assert main(["sweep"] + argv + ["-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message), err
    assert "Traceback" not in "\n".join(err) and not out.exists()
