"""Calibration set from an image folder: the model's eval transform, seeded shuffle, saved as calib.npz."""
from __future__ import annotations

import os
import random
import warnings
import zipfile
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..fileio import atomic_output, check_input_file
from ..images import IMAGE_EXTENSIONS, eval_transform, list_images, load_images
from ..onnx_file.info import OnnxInfo


def eval_transform_of(onnx_path: str):
    """(transform, image size): the eval transform recorded by idle-export in the ONNX metadata."""
    from ..onnx_file.metadata import read_metadata
    meta = read_metadata(onnx_path)
    return eval_transform(meta.data_config), meta.img_size


def find_images(folder: str) -> List[str]:
    """Image files under `folder` (recursive), sorted so a seed always picks the same ones."""
    found = list_images(folder, recursive=True)
    if found is None:
        state = "is a file, not a folder" if os.path.isfile(folder) else "does not exist"
        raise UserError(f"image folder {folder} {state}: pass a folder of calibration images")
    if not found:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}: pass a folder with images")
    return found


def pick_images(paths: Sequence[str], num: int, seed: int) -> List[str]:
    if num < 1:
        raise UserError(f"-n {num}: pass at least one calibration image")
    chosen = list(paths)
    random.Random(seed).shuffle(chosen)
    if len(chosen) < num:
        warnings.warn(f"asked for {num} calibration images but only {len(chosen)} exist: using all", stacklevel=2)
    return chosen[:num]


def write_calib_npz(path: str, input_name: str, images: np.ndarray) -> None:
    """calib.npz maps the ONNX input name to the image batch (the layout ModelOpt also reads)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{input_name: images})


def read_calib_npz(path: str, input_name: Optional[str] = None) -> np.ndarray:
    """The calibration batch for `input_name` (or the only array) from calib.npz."""
    check_input_file(path, "calibration file", "make one with idle-calibrate", "does not exist")
    try:
        with np.load(path) as data:   # allow_pickle stays False: a pickle in the file would run code
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError, TypeError):   # .npy: no `with`
        arrays = None
    if arrays is None:
        raise UserError(f"cannot read calibration file {path}: it is not a .npz of float32 images (files "
                        "holding Python objects are refused); make it again with idle-calibrate --images")
    if input_name in arrays:
        batch = arrays[input_name]
    elif len(arrays) == 1:
        batch = next(iter(arrays.values()))
    else:
        raise UserError(f"{path} has arrays {sorted(arrays)} and none is the ONNX input {input_name!r}: "
                        "make it with idle-calibrate --onnx for this model")
    if batch.ndim != 4 or batch.dtype != np.float32:
        raise UserError(f"{path}: expected float32 images (N, 3, H, W), got {batch.dtype} {list(batch.shape)}")
    return batch


def build_calibration_set(folder: str, info: OnnxInfo, out_path: str, num: int = 512, seed: int = 0,
                          progress: bool = True) -> np.ndarray:
    """Pick `num` images from `folder` (seeded), apply the ONNX's eval transform, write calib.npz."""
    transform, _ = eval_transform_of(info.path)
    paths = pick_images(find_images(folder), num, seed)
    images = load_images(paths, transform, progress=progress, desc="calibration images")
    write_calib_npz(out_path, info.input_name, images)
    return images
