"""Images in, tensors out: the model's eval transform, local files and bundled photographs."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import torch

from ..errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# photographs that ship inside scikit-image (no download): real test and demo inputs
BUNDLED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def eval_transform(model=None, img_size: Optional[int] = None, mean=None, std=None):
    """timm's eval transform for `model` (resize, center crop, normalise), or from explicit values."""
    from timm.data import create_transform, resolve_data_config
    if model is not None:
        cfg = resolve_data_config({}, model=model)
    else:
        cfg = {"input_size": (3, img_size, img_size), "interpolation": "bicubic", "crop_pct": 0.875,
               "crop_mode": "center", "mean": tuple(mean), "std": tuple(std)}
    if img_size is not None:
        cfg["input_size"] = (3, img_size, img_size)
    return create_transform(**cfg), cfg


def load_image(path: str):
    """PIL RGB image, with a one-line error for a missing or unreadable file."""
    from PIL import Image, UnidentifiedImageError
    if not os.path.isfile(path):
        raise UserError(f"image {path} not found: pass an existing image file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"image {path} cannot be read ({e}): pass a JPEG or PNG file") from None


def bundled_photo(name: str = "chelsea"):
    """A real photograph bundled with scikit-image, as a PIL image."""
    import skimage.data
    from PIL import Image
    if name not in BUNDLED_PHOTOS:
        raise UserError(f"unknown bundled photo {name!r}: use one of {', '.join(BUNDLED_PHOTOS)}")
    array = getattr(skimage.data, name)()
    img = Image.fromarray(array)
    return img.convert("RGB")


def list_images(folder: str) -> List[str]:
    """Sorted image files under `folder` (recursive); one-line error when there are none."""
    if not os.path.isdir(folder):
        raise UserError(f"image folder {folder} not found: pass an existing folder")
    found = sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise UserError(f"image folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}): "
                        "point it at a folder of photographs")
    return found


def to_display(tensor: torch.Tensor, mean, std) -> "numpy.ndarray":  # noqa: F821
    """Normalised (3, H, W) tensor back to an (H, W, 3) float image in [0, 1]."""
    mean_t = torch.tensor(mean).view(3, 1, 1)
    std_t = torch.tensor(std).view(3, 1, 1)
    return (tensor * std_t + mean_t).clamp(0, 1).permute(1, 2, 0).numpy()


def patch_grid(img_size: int, patch_size: int) -> Tuple[int, int]:
    side = img_size // patch_size
    return side, side
