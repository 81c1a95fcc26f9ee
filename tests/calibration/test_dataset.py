import numpy as np
import pytest

from idlevit.calibration.dataset import (build_calibration_set, eval_transform_of, find_images, pick_images,
                                         read_calib_npz, write_calib_npz)
from idlevit.onnx_file.info import read_onnx_info
from idlevit.errors import UserError
import json


def test_find_and_pick_are_seeded(photo_folder):
    paths = find_images(photo_folder)
    assert len(paths) == 5 and not any(p.endswith(".txt") for p in paths)
    assert pick_images(paths, 3, seed=0) == pick_images(paths, 3, seed=0)
    assert pick_images(paths, 5, seed=0) != pick_images(paths, 5, seed=1)
    with pytest.warns(UserWarning, match="only 5 exist"):
        assert len(pick_images(paths, 9, seed=0)) == 5


def test_transform_comes_from_onnx_metadata(tiny_onnx, tmp_path):
    from PIL import Image
    from idlevit.images import eval_transform
    info = read_onnx_info(tiny_onnx[0])
    data = json.loads(info.metadata["data_config"])  # timm's eval config, recorded by idle-export
    transform, size = eval_transform_of(tiny_onnx[0])
    img = Image.new("RGB", (100, 80), (200, 30, 90))
    assert size == 64 and transform(img).shape == (3, 64, 64)
    np.testing.assert_array_equal(transform(img).numpy(), eval_transform(data)(img).numpy())
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(open(tiny_onnx[0], "rb").read())
    import onnx
    model = onnx.load(str(plain))
    del model.metadata_props[:]
    onnx.save(model, str(plain))
    with pytest.raises(UserError, match="idle-export"):
        eval_transform_of(str(plain))


def test_build_calibration_set(photo_folder, tiny_onnx, tmp_path):
    out = str(tmp_path / "calib.npz")
    images = build_calibration_set(photo_folder, read_onnx_info(tiny_onnx[0]), out, num=4, seed=0, progress=False)
    assert images.shape == (4, 3, 64, 64) and images.dtype == np.float32
    assert -3 < images.mean() < 3 and images.std() > 0.3  # normalised with mean/std, not raw 0..255
    np.testing.assert_array_equal(read_calib_npz(out, "input"), images)
    again = build_calibration_set(photo_folder, read_onnx_info(tiny_onnx[0]), str(tmp_path / "b.npz"), num=4,
                                  seed=0, progress=False)
    np.testing.assert_array_equal(again, images)


def test_errors_are_one_line(tmp_path, photo_folder):
    with pytest.raises(UserError, match="does not exist"):
        find_images(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="no images"):
        find_images(str(tmp_path))
    with pytest.raises(UserError, match="make one with idle-calibrate"):
        read_calib_npz(str(tmp_path / "missing.npz"))
    write_calib_npz(str(tmp_path / "two.npz"), "a", np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(UserError, match="expected float32 images"):
        np.savez(tmp_path / "bad.npz", input=np.zeros((2, 2)))
        read_calib_npz(str(tmp_path / "bad.npz"), "input")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read calibration file"):
        read_calib_npz(str(tmp_path / "broken.npz"))


def test_calib_file_holding_objects_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, input=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="cannot read calibration file .*Python objects are refused") as e:
        read_calib_npz(str(path), "input")
    assert "allow_pickle" not in str(e.value) and "\n" not in str(e.value)
