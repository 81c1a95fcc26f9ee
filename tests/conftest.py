"""Test-wide settings: offline hub, seeded RNGs, tiny timm ViTs."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import idlevit.models.idlevit  # noqa: F401  (registers the idlevit_* models with timm)
from idlevit.models import make_idle

# pytest runs one worker per core (-n 2): one intra-op thread each, or the threads spin on a busy CPU
torch.set_num_threads(1)


def tiny_vit(keep_ratio=0.5, keep_ratios=None, depth=4, img_size=32, patch_size=8, embed_dim=32,
             num_heads=2, seed=0, **kwargs):
    """A 4-block ViT with 16 image tokens, seeded, in eval mode."""
    torch.manual_seed(seed)
    model = VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                              num_heads=num_heads, num_classes=10, **kwargs)
    return make_idle(model, keep_ratio, keep_ratios).eval()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
