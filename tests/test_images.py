"""Reading image files: every PIL mode becomes the 8-bit RGB it shows, and errors end in the caller's fix."""
import numpy as np
import pytest

from idlevit.errors import UserError


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from idlevit.images import read_rgb
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(read_rgb(str(path)))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    # plain convert("RGB") makes everything above 255 white; scaled, the ramp stays a ramp
    assert np.abs(rgb[..., 0].astype(int) - np.round(ramp / 257.0)).max() <= 1
    assert 100 < rgb.mean() < 155


@pytest.mark.parametrize("mode,color,expect", [
    ("LA", (100, 7), (100, 100, 100)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
    ("L", 42, (42, 42, 42)),
])
def test_other_modes_become_the_rgb_they_show(tmp_path, mode, color, expect):
    from PIL import Image

    from idlevit.images import read_rgb
    path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (16, 16), color).save(path, quality=100) if mode == "CMYK" else \
        Image.new(mode, (16, 16), color).save(path)
    rgb = np.asarray(read_rgb(str(path))).astype(int)
    assert rgb.shape == (16, 16, 3) and np.abs(rgb[8, 8] - expect).max() <= 3


def test_palette_image_with_transparency(tmp_path):
    from PIL import Image

    from idlevit.images import read_rgb
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    im.save(tmp_path / "p.png", transparency=0)
    assert tuple(np.asarray(read_rgb(str(tmp_path / "p.png")))[0, 0]) == (200, 100, 50)


def test_float_images_are_refused_and_messages_carry_the_callers_fix(tmp_path):
    from PIL import Image

    from idlevit.images import read_rgb
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(UserError, match="floating-point pixels.*save it as 8- or 16-bit, or pass another --image"):
        read_rgb(str(tmp_path / "f.tif"), "pass another --image")
    with pytest.raises(UserError, match=r"missing.png not found: pass another --image$") as e:
        read_rgb(str(tmp_path / "missing.png"), "pass another --image")
    assert "--images" not in str(e.value)
