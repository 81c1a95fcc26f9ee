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


def test_agreement_counts_overlap():
    ref = SelectionRow("ref", [3, 4], [np.array([0, 1, 2, 3]), np.array([5, 6])])
    other = SelectionRow("o", [3, 4], [np.array([0, 1, 7, 8]), np.array([6, 5])])
    assert agreement(other, ref) == pytest.approx([0.5, 1.0])
