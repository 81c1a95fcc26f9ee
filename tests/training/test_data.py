"""Data: ImageFolder checks, timm transforms, the synthetic task."""
import numpy as np
import pytest
import torch
from PIL import Image

from idlevit.training.data import allow_zero_bit_posterize, build_transforms
from idlevit.training.student import build_student
from idlevit.training.synthetic import CLASS_COLOURS, SyntheticObjects, render_images, shape_masks
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


def test_synthetic_images_are_seeded_and_carry_their_class_object():
    a, ya = render_images(64, num_classes=10, img_size=32, seed=3)
    b, yb = render_images(64, num_classes=10, img_size=32, seed=3)
    c, _ = render_images(64, num_classes=10, img_size=32, seed=4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)
    assert a.shape == (64, 32, 32, 3) and a.dtype == np.uint8 and set(ya) <= set(range(10))
    masks = shape_masks(8)
    for img, y in zip(a[:16], ya[:16]):
        colour = CLASS_COLOURS[y // 2].astype(np.uint8)
        hits = np.all(img == colour, axis=-1)
        assert hits.sum() == masks[y % 2].sum()          # exactly one class object, never covered
        rows, cols = np.nonzero(hits)
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8   # small: one 8 px object


def test_synthetic_rejects_too_many_classes():
    with pytest.raises(ValueError, match="2 to 24 classes"):
        render_images(4, num_classes=30)


def test_precomputed_synthetic_set_equals_the_lazy_one(tmp_path):
    model, _ = build_student(tiny_config(tmp_path), 10, warn_random=False)
    _, val_tf = build_transforms(tiny_config(tmp_path, synthetic=True), model)
    lazy = SyntheticObjects(8, img_size=32, seed=1, transform=val_tf)
    eager = SyntheticObjects(8, img_size=32, seed=1, transform=val_tf, precompute=True)
    assert all(torch.equal(lazy[i][0], eager[i][0]) and lazy[i][1] == eager[i][1] for i in range(8))
    assert lazy[0][0].shape == (3, 32, 32)


def test_deit_randaugment_survives_zero_bit_posterize(tmp_path):
    model, _ = build_student(tiny_config(tmp_path), 10, warn_random=False)
    train_tf, _ = build_transforms(tiny_config(tmp_path, no_aug=False), model)
    ra = next(t for t in train_tf.transforms if type(t).__name__ == "RandAugment")
    op = next(o for o in ra.ops if o.name == "PosterizeIncreasing")
    img = Image.new("RGB", (32, 32), (200, 100, 50))
    assert np.asarray(op.aug_fn(img, 0)).max() == 0                 # Pillow alone raises ValueError here
    assert np.array_equal(np.asarray(op.aug_fn(img, 4)), np.asarray(img) & 0xF0)
    assert allow_zero_bit_posterize(train_tf) is train_tf
