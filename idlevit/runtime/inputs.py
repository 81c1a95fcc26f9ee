"""Parity and benchmark inputs: real photographs through the model's eval transform, plus seeded random tensors."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserError

# natural photographs that ship inside scikit-image (no download); "camera" is greyscale
BUNDLED_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def eval_transform(data_config: Dict):
    """timm's eval transform (resize, center crop, normalise) for a `resolve_data_config` dict."""
    from timm.data import create_transform
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data_config.items() if k in keys}
    return create_transform(**cfg, is_training=False)


def bundled_photos(names: Sequence[str] = BUNDLED_PHOTOS):
    """PIL RGB images of scikit-image's bundled photographs."""
    import skimage.data
    from PIL import Image
    images = []
    for name in names:
        arr = getattr(skimage.data, name)()
        images.append(Image.fromarray(arr).convert("RGB"))
    return images


def write_bundled_photos(folder: str, names: Sequence[str] = BUNDLED_PHOTOS) -> List[str]:
    """Save the bundled photographs into `folder` as PNG files (for --images)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, image in zip(names, bundled_photos(names)):
        path = os.path.join(folder, f"{name}.png")
        image.save(path)
        paths.append(path)
    return paths


def image_files(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        raise UserError(f"image folder {folder} not found: pass --images with a folder of .png/.jpg files")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise UserError(f"image folder {folder} has no {'/'.join(IMAGE_EXTENSIONS)} files: pass another --images")
    return files


FOLDER_FIX = "remove it from the --images folder"


def read_rgb(path: str, fix: str = FOLDER_FIX):
    """One image file as an 8-bit PIL RGB image, whatever its mode; a one-line UserError ending in `fix` if not."""
    from PIL import Image, UnidentifiedImageError
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


def load_images(paths: Sequence[str], transform, fix: str = FOLDER_FIX) -> np.ndarray:
    """(N, 3, H, W) float32 from image files through `transform`."""
    return np.stack([transform(read_rgb(path, fix)).numpy() for path in paths]).astype(np.float32)


def photos_array(transform, names: Sequence[str] = BUNDLED_PHOTOS) -> np.ndarray:
    """The bundled photographs through `transform`, (N, 3, H, W) float32."""
    return np.stack([transform(im).numpy() for im in bundled_photos(names)]).astype(np.float32)


def random_inputs(n: int, img_size: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal inputs (the scale of normalised images), (n, 3, S, S) float32."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, img_size, img_size), dtype=np.float32)


def batched(x: np.ndarray, batch_size: int) -> List[np.ndarray]:
    """Consecutive batches of `batch_size` (the last one may be smaller)."""
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1")
    return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]


def parity_inputs(img_size: int, transform=None, image_paths: Optional[Sequence[str]] = None,
                  num_random: int = 0, seed: int = 0) -> np.ndarray:
    """Images (transformed) followed by `num_random` seeded random inputs."""
    parts = []
    if image_paths:
        parts.append(load_images(image_paths, transform))
    if num_random:
        parts.append(random_inputs(num_random, img_size, seed))
    if not parts:
        raise UserError("no parity inputs: pass --images DIR and/or -n with at least 1 random input")
    return np.concatenate(parts)
