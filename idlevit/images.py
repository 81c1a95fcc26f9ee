"""Image files in, model inputs out: listing a folder, reading any PIL mode as 8-bit RGB, the eval transform.

Parity, benchmarks and INT8 calibration all read photographs the same way, so this sits below them.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
FOLDER_FIX = "remove it from the --images folder"


def eval_transform(data_config: Dict):
    """timm's eval transform (resize, center crop, normalise) for a `resolve_data_config` dict."""
    from timm.data import create_transform
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data_config.items() if k in keys}
    return create_transform(**cfg, is_training=False)


def list_images(folder: str, recursive: bool = False) -> Optional[List[str]]:
    """Sorted image files in `folder` (and its sub-folders when `recursive`); None when it is not a folder.

    Callers word the error for a missing or empty folder after their own flag.
    """
    if not os.path.isdir(folder):
        return None
    if recursive:
        found = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]
    else:
        found = [os.path.join(folder, name) for name in os.listdir(folder)]
    return sorted(path for path in found if path.lower().endswith(IMAGE_EXTENSIONS))


def read_rgb(path: str, fix: str = FOLDER_FIX):
    """One image file as an 8-bit PIL RGB image, whatever its mode; a one-line UserError ending in `fix` if not."""
    from PIL import Image, UnidentifiedImageError
    if os.path.isdir(path):
        raise UserError(f"image {path} is a folder, not an image file: {fix}")
    if not os.path.isfile(path):
        raise UserError(f"image {path} not found: {fix}")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(im, path, fix)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"image {path} cannot be read ({type(e).__name__}: {str(e)[:100]}): {fix}") from None


def to_rgb8(im, path: str = "image", fix: str = FOLDER_FIX):
    """8-bit RGB from any PIL mode.

    `convert("RGB")` alone clips 16-bit greyscale to white, so 16-bit (and 32-bit integer)
    pixels are scaled to 8 bits first; palette transparency goes through RGBA; LA, CMYK,
    YCbCr and the rest convert as PIL defines. Float pixels have no agreed range: refused.
    """
    from PIL import Image
    if im.mode.startswith("I"):
        arr = np.asarray(im, dtype=np.float64)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise UserError(f"image {path} has 32-bit pixels outside 0-65535: save it as 8- or 16-bit, or {fix}")
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.round(arr * (255.0 / top)).astype(np.uint8), "L")
    elif im.mode == "F":
        raise UserError(f"image {path} has floating-point pixels, which have no fixed range: save it as 8- or "
                        f"16-bit, or {fix}")
    if (im.mode == "P" and "transparency" in im.info) or im.mode == "PA":
        im = im.convert("RGBA")
    return im.convert("RGB")


def load_images(paths: Sequence[str], transform, fix: str = FOLDER_FIX, progress: bool = False,
                desc: str = "images") -> np.ndarray:
    """(N, 3, H, W) float32 from image files through `transform`, filled in place (no second copy of N images)."""
    from tqdm import tqdm
    if not paths:
        raise ValueError("no image paths to load")
    batch = None
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress)):
        x = transform(read_rgb(path, fix)).numpy()
        if batch is None:
            batch = np.empty((len(paths),) + x.shape, np.float32)
        batch[i] = x
    return batch
