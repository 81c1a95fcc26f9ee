"""The synthetic task: seeded images whose class lives in one small object."""
import numpy as np
import pytest
import torch

from idlevit.training.data import build_transforms
from idlevit.training.student import build_student
from idlevit.training.synthetic import CLASS_COLOURS, SyntheticObjects, class_parts, render_images, shape_masks
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


def test_class_is_colour_by_shape():
    assert class_parts(10) == (2, 6) and class_parts(12) == (2, 6) and class_parts(13) == (4, 6)
    with pytest.raises(ValueError, match="2 to 24 classes, not 1"):
        class_parts(1)


def test_shape_masks_are_four_distinct_shapes():
    masks = shape_masks(8)
    assert masks.shape == (4, 8, 8) and masks.dtype == bool
    assert len({m.tobytes() for m in masks}) == 4
    assert masks[0][0].all() and not masks[0][4, 4]          # ring: border on, centre off
    assert masks[3][4, 4] and not masks[3][0, 0]             # disc: centre on, corner off


def test_decoys_add_class_coloured_shapes_of_unused_kinds():
    plain, labels = render_images(16, num_classes=6, img_size=32, seed=5, clutter=0)
    decoyed, labels2 = render_images(16, num_classes=6, img_size=32, seed=5, clutter=0, decoys=3)
    assert np.array_equal(labels, labels2)
    assert _class_coloured_pixels(decoyed) > _class_coloured_pixels(plain)


def _class_coloured_pixels(images):
    return sum(np.all(images == c.astype(np.uint8), axis=-1).sum() for c in CLASS_COLOURS)


def test_object_size_must_fit_the_image():
    with pytest.raises(ValueError, match="object size 40 does not fit a 32px image"):
        render_images(2, img_size=32, object_size=40)


def test_dataset_without_transform_gives_unit_range_tensors():
    ds = SyntheticObjects(4, img_size=16, seed=2)
    image, label = ds[0]
    assert len(ds) == 4 and image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and label == int(ds.labels[0])
