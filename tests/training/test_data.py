"""Data: ImageFolder checks and timm transforms."""
import numpy as np
import pytest
from PIL import Image

from idlevit.training.data import allow_zero_bit_posterize, build_transforms
from idlevit.training.student import build_student
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


def test_deit_randaugment_survives_zero_bit_posterize(tmp_path):
    model, _ = build_student(tiny_config(tmp_path), 10, warn_random=False)
    train_tf, _ = build_transforms(tiny_config(tmp_path, no_aug=False), model)
    ra = next(t for t in train_tf.transforms if type(t).__name__ == "RandAugment")
    op = next(o for o in ra.ops if o.name == "PosterizeIncreasing")
    img = Image.new("RGB", (32, 32), (200, 100, 50))
    assert np.asarray(op.aug_fn(img, 0)).max() == 0                 # Pillow alone raises ValueError here
    assert np.array_equal(np.asarray(op.aug_fn(img, 4)), np.asarray(img) & 0xF0)
    assert allow_zero_bit_posterize(train_tf) is train_tf
