"""Seeded in-memory image task where the class lives in a few tokens: one small coloured shape among
grey clutter, so which tokens a ViT keeps matters."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

# class colours (saturated) and clutter colours (greys): colour alone locates the object, but the
# class is colour x shape, and clutter uses the same shapes, so global shape statistics do not help
CLASS_COLOURS = np.array([[220, 30, 30], [30, 190, 30], [40, 70, 230], [225, 205, 20], [200, 40, 200],
                          [30, 200, 200]], np.float32)
CLUTTER_COLOURS = np.array([[250, 250, 250], [170, 170, 170], [90, 90, 90], [20, 20, 20]], np.float32)
SHAPE_NAMES = ("ring", "plus", "cross", "disc")
MAX_CLASSES = len(CLASS_COLOURS) * len(SHAPE_NAMES)


def shape_masks(size: int) -> np.ndarray:
    """Boolean masks (4, size, size): ring, plus, diagonal cross, disc."""
    yy, xx = np.mgrid[:size, :size]
    c, w = (size - 1) / 2, max(1, size // 4)
    ring = np.zeros((size, size), bool)
    ring[:w], ring[-w:], ring[:, :w], ring[:, -w:] = True, True, True, True
    plus = (abs(yy - c) < w / 2 + 0.01) | (abs(xx - c) < w / 2 + 0.01)
    cross = (abs(yy - xx) < w * 0.75) | (abs(yy + xx - (size - 1)) < w * 0.75)
    disc = (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2) ** 2
    return np.stack([ring, plus, cross, disc])


def class_parts(num_classes: int) -> Tuple[int, int]:
    """Shapes used by the classes (2 up to 12 classes, else 4); class y = colour y // n * n + shape y % n."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"the synthetic task has 2 to {MAX_CLASSES} classes, not {num_classes}: "
                         "pass --num-classes in that range")
    return (2 if num_classes <= 12 else 4), len(CLASS_COLOURS)


def render_images(num_images: int, num_classes: int = 10, img_size: int = 32, seed: int = 0,
                  clutter: int = 4, object_size: Optional[int] = None, decoys: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Images (n, H, W, 3) uint8 and labels (n,) int64, fully determined by the arguments.

    Each image: a blotchy grey-green background with pixel noise, `clutter` grey shapes at random
    places, and one class object (a class-coloured shape, drawn last so it is never hidden).
    `decoys` adds class-coloured shapes of a kind no class uses (up to 12 classes), a harder task in
    which colour alone no longer finds the object (a tiny ViT reaches about 74 % in 12 epochs at 48 px).
    """
    n_shapes, _ = class_parts(num_classes)
    size = object_size or max(3, img_size // 4)
    if not 1 <= size <= img_size:
        raise ValueError(f"object size {size} does not fit a {img_size}px image")
    masks = shape_masks(size)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_images)
    low = rng.random((num_images, 4, 4, 3), dtype=np.float32)        # 4x4 background blotches
    reps = -(-img_size // 4)
    images = np.repeat(np.repeat(low, reps, 1), reps, 2)[:, :img_size, :img_size] * 60 + 90
    images += rng.normal(0, 10, images.shape).astype(np.float32)
    pos = rng.integers(0, img_size - size + 1, (num_images, clutter + 1, 2))
    clutter_shape = rng.integers(0, len(masks), (num_images, clutter))
    clutter_colour = rng.integers(0, len(CLUTTER_COLOURS), (num_images, clutter))
    for j in range(clutter):
        _paint(images, pos[:, j], masks[clutter_shape[:, j]], CLUTTER_COLOURS[clutter_colour[:, j]])
    if decoys and n_shapes < len(masks):
        # class-coloured shapes that no class uses: colour alone no longer locates the object
        dpos = rng.integers(0, img_size - size + 1, (num_images, decoys, 2))
        dshape = rng.integers(n_shapes, len(masks), (num_images, decoys))
        dcolour = rng.integers(0, len(CLASS_COLOURS), (num_images, decoys))
        for j in range(decoys):
            _paint(images, dpos[:, j], masks[dshape[:, j]], CLASS_COLOURS[dcolour[:, j]])
    _paint(images, pos[:, clutter], masks[labels % n_shapes], CLASS_COLOURS[labels // n_shapes])
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def _paint(images: np.ndarray, pos: np.ndarray, masks: np.ndarray, colours: np.ndarray) -> None:
    """Paint one shape per image in place: masks (n, s, s) at top-left corners pos (n, 2)."""
    size = masks.shape[-1]
    rows = np.arange(len(images))[:, None, None]
    ys = pos[:, 0, None, None] + np.arange(size)[None, :, None]
    xs = pos[:, 1, None, None] + np.arange(size)[None, None, :]
    region = images[rows, ys, xs]
    images[rows, ys, xs] = np.where(masks[..., None], colours[:, None, None, :], region)


class SyntheticObjects(Dataset):
    """`render_images` as a map-style dataset of (PIL image -> transform, label).

    Train and validation sets share the class definitions and differ only in `seed`. With
    `precompute=True` (a deterministic transform, such as eval or --no-aug) every image is
    transformed once up front, which takes the PIL round trip out of each epoch.
    """

    def __init__(self, num_images: int, num_classes: int = 10, img_size: int = 32, seed: int = 0,
                 transform: Optional[Callable] = None, clutter: int = 4, object_size: Optional[int] = None,
                 precompute: bool = False, decoys: int = 0):
        self.images, self.labels = render_images(num_images, num_classes, img_size, seed, clutter, object_size,
                                                 decoys)
        self.num_classes = num_classes
        self.transform = transform
        self.tensors = None
        if precompute:
            self.tensors = torch.stack([self._load(i) for i in range(len(self.labels))])

    def __len__(self) -> int:
        return len(self.labels)

    def _load(self, index: int) -> torch.Tensor:
        if self.transform is None:
            return torch.from_numpy(self.images[index]).permute(2, 0, 1).float().div_(255)
        from PIL import Image
        return self.transform(Image.fromarray(self.images[index]))

    def __getitem__(self, index: int):
        image = self.tensors[index] if self.tensors is not None else self._load(index)
        return image, int(self.labels[index])
