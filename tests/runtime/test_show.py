import json
import os

import numpy as np
import pytest
from PIL import Image

from idlevit.cli.runtime import main
from idlevit.runtime.visualize import SelectionRow, agreement


def test_show_writes_png_for_a_real_photo(tmp_path, capsys):
    import skimage.data
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    out = tmp_path / "sel.png"
    assert main(["show", "--model", "idlevit_deit_tiny_patch16_224", "--keep-ratio", "0.5",
                 "--image", str(photo), "-o", str(out)]) == 0
    img = Image.open(out)
    assert img.format == "PNG" and img.size[0] > img.size[1] > 100
    assert not list(tmp_path.glob(".sel.png*"))  # no temporary left behind


def test_show_bad_image_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["show", "--image", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: image") and "cannot be read" in err[-1]
    assert main(["show", "--image", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: image {tmp_path / 'missing.jpg'} not found: pass an image file with --image"], err


def test_show_on_an_onnx_without_topk_names_a_fix_show_has(tmp_path, tmp_path_factory, capsys):
    """Also: the old --onnx name of --onnx-files still works (with a warning line)."""
    from tests.onnx_cache import TEST_VIT_10, export_config
    plain = export_config(tmp_path_factory, TEST_VIT_10)
    assert main(["show", "--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5", "--onnx", plain,
                 "-o", str(tmp_path / "x.png")]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert len(err) == 1 and "has no TopK node" in err[0] and "idle-export with a keep ratio below 1.0" in err[0]
    assert "without selection" not in err[0] and not (tmp_path / "x.png").exists()


def test_agreement_counts_overlap():
    ref = SelectionRow("ref", [3, 4], [np.array([0, 1, 2, 3]), np.array([5, 6])])
    other = SelectionRow("o", [3, 4], [np.array([0, 1, 7, 8]), np.array([6, 5])])
    assert agreement(other, ref) == pytest.approx([0.5, 1.0])


def test_show_compares_an_onnx_file(tmp_path, tmp_path_factory, capsys):
    """The exported file's TopK outputs reproduce PyTorch's selection on a real photo."""
    from tests.onnx_cache import DEIT_T_05, export_config
    onnx_path = export_config(tmp_path_factory, DEIT_T_05)
    out = tmp_path / "cmp.png"
    argv = ["show", "--model", "idlevit_deit_tiny_patch16_224", "--keep-ratio", "0.5", "--onnx-files", onnx_path,
            "-o", str(out)]
    assert main(argv) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "selection agreement" in ln][0]
    agree = [float(v) for v in line.split("block")[-1].split()]
    assert len(agree) == 9 and min(agree) >= 0.98
    assert Image.open(out).size[1] > 300  # two rows: PyTorch and the ONNX file
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(out) and len(report["idle_blocks"]) == 9
    assert report["selection_agreement"][os.path.basename(onnx_path)] == pytest.approx(agree, abs=5e-4)


def test_show_rejects_onnx_of_another_schedule(tmp_path, tmp_path_factory):
    from tests.onnx_cache import TEST_VIT_10, export_config
    onnx_path = export_config(tmp_path_factory, TEST_VIT_10)
    assert main(["show", "--model", "idlevit_deit_tiny_patch16_224", "--onnx-files", onnx_path,
                 "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
