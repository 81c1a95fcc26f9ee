"""Parity and benchmark inputs: real photographs through the model's eval transform, plus seeded random tensors."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..images import IMAGE_EXTENSIONS, list_images, load_images

# natural photographs that ship inside scikit-image (no download); "camera" is greyscale
BUNDLED_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera")


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
    """The image files directly in `folder` (the --images flag), sorted."""
    files = list_images(folder)
    if files is None:
        state = "is a file, not a folder" if os.path.isfile(folder) else "not found"
        raise UserError(f"image folder {folder} {state}: pass --images with a folder of .png/.jpg files")
    if not files:
        raise UserError(f"image folder {folder} has no {'/'.join(IMAGE_EXTENSIONS)} files: pass another --images")
    return files


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
