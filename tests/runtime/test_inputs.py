"""Parity inputs: bundled photographs through the eval transform, image folders, seeded random tensors."""
import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.images import eval_transform, load_images
from idlevit.runtime.inputs import (BUNDLED_PHOTOS, batched, image_files, parity_inputs, random_inputs,
                                    write_bundled_photos)

CFG = {"input_size": [3, 64, 64], "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406],
       "std": [0.229, 0.224, 0.225], "crop_pct": 0.9, "crop_mode": "center"}


def test_photos_from_a_folder(tmp_path):
    paths = write_bundled_photos(str(tmp_path), BUNDLED_PHOTOS[:3])
    assert image_files(str(tmp_path)) == sorted(paths)
    x = load_images(paths, eval_transform(CFG))
    assert x.shape == (3, 3, 64, 64) and x.dtype == np.float32
    assert 0.3 < x.std() < 3.0                  # normalised, not raw 0..255 pixels
    assert not np.allclose(x[0], x[1])


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        image_files(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="has no"):
        image_files(str(tmp_path))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot be read"):
        load_images([str(bad)], eval_transform(CFG))


def test_random_inputs_are_seeded_and_batches_cover_everything():
    a, b = random_inputs(5, 16, seed=1), random_inputs(5, 16, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, random_inputs(5, 16, seed=2))
    assert [len(x) for x in batched(a, 2)] == [2, 2, 1]
    with pytest.raises(UserError):
        batched(a, 0)
    with pytest.raises(UserError, match="no parity inputs"):
        parity_inputs(16)
