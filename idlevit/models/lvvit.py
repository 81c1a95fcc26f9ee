"""LV-ViT (Token Labeling) as a timm VisionTransformer, so IdleViT idles it like a DeiT.

Paper: "All Tokens Matter: Token Labeling for Training Better Vision Transformers",
Jiang et al., NeurIPS 2021, https://arxiv.org/abs/2104.10858
Registers `lvvit_s` and `lvvit_m` with timm. Parameter names follow the Token Labeling
release (and the IdleViT authors' `IdleLVViT`), so their state dicts load with strict=True.
"""
from __future__ import annotations

from functools import partial
from typing import Tuple

import torch
from torch import nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import Block, VisionTransformer

STEM_CHANNELS = 64


class ConvPatchEmbed(nn.Module):
    """LV-ViT's "4_2" patch embedding: a 3-conv stem at stride 2, then a (patch/2)-stride projection.

    conv 7x7/2 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU -> conv p/2 x p/2,
    stride p/2 (with bias). Returns tokens (B, N, C) like timm's PatchEmbed, whose attributes
    (`img_size`, `patch_size`, `grid_size`, `num_patches`) it mirrors.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=384, **_timm_kwargs):
        super().__init__()
        self.img_size: Tuple[int, int] = to_2tuple(img_size)
        self.patch_size: Tuple[int, int] = to_2tuple(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.dynamic_img_size = False
        c = STEM_CHANNELS
        self.conv1 = nn.Conv2d(in_chans, c, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        proj = (self.patch_size[0] // 2, self.patch_size[1] // 2)
        self.proj = nn.Conv2d(c, embed_dim, kernel_size=proj, stride=proj)

    def feat_ratio(self, as_scalar: bool = True):
        return max(self.patch_size) if as_scalar else self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.proj(x).flatten(2).transpose(1, 2)


class ResidualScale(nn.Module):
    """Divides a residual branch by `skip_lam` (LV-ViT's residual scaling); no parameters."""

    def __init__(self, skip_lam: float):
        super().__init__()
        self.skip_lam = float(skip_lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.skip_lam

    def extra_repr(self) -> str:
        return f"skip_lam={self.skip_lam:g}"


def lvvit_block(skip_lam: float = 2.0, **block_kwargs) -> Block:
    """A plain timm `Block` whose LayerScale slots divide by `skip_lam`.

    Using timm's own Block (not a subclass) means IdleViT's idle block, export path and
    training path apply unchanged: they already route both branches through `ls1` / `ls2`.
    """
    block = Block(**block_kwargs)
    block.ls1 = ResidualScale(skip_lam)
    block.ls2 = ResidualScale(skip_lam)
    return block


class LVViT(VisionTransformer):
    """timm VisionTransformer with LV-ViT's stem, residual scaling and dense auxiliary head.

    Modifications:
    - `patch_embed` is `ConvPatchEmbed` and blocks are `lvvit_block`s (via timm's hooks).
    - adds `aux_head`, a linear classifier applied to every image token; the logits are
      `head(x[:, 0]) + 0.5 * max over image tokens of aux_head(x[:, 1:])` (Token Labeling's
      eval output). Training with token labels (per-token targets) is not implemented here.
    """

    def __init__(self, skip_lam: float = 2.0, aux_weight: float = 0.5, **kwargs):
        kwargs.setdefault("embed_layer", ConvPatchEmbed)
        kwargs.setdefault("block_fn", partial(lvvit_block, skip_lam))
        kwargs.setdefault("norm_layer", partial(nn.LayerNorm, eps=1e-5))
        super().__init__(**kwargs)
        self.aux_weight = aux_weight
        self.aux_head = nn.Linear(self.embed_dim, self.num_classes) if self.num_classes > 0 else nn.Identity()
        if isinstance(self.aux_head, nn.Linear):
            trunc_normal_(self.aux_head.weight, std=0.02)
            nn.init.zeros_(self.aux_head.bias)

    def reset_classifier(self, num_classes: int, global_pool=None):
        super().reset_classifier(num_classes, global_pool)
        self.aux_head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        logits = super().forward_head(x, pre_logits=pre_logits)
        if pre_logits or self.num_classes == 0:
            return logits
        # every row through aux_head, then the image tokens: the linear of the sliced (strided) rows makes
        # torch 2.9's dynamo export guard batch != 1; one extra row of N+1 costs nothing measurable
        dense = self.aux_head(x)[:, self.num_prefix_tokens:]
        return logits + self.aux_weight * dense.max(1)[0]


def _cfg(**kwargs):
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None,
        "crop_pct": 0.9, "interpolation": "bicubic", "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.conv1", "classifier": "head", **kwargs,
    }


# eval crops as in the Token Labeling release: 0.9 for S, 1.0 for M
default_cfgs = generate_default_cfgs({
    "lvvit_s.untrained": _cfg(),
    "lvvit_m.untrained": _cfg(crop_pct=1.0),
})


def _create_lvvit(variant: str, pretrained: bool = False, **kwargs) -> LVViT:
    return build_model_with_cfg(LVViT, variant, pretrained, pretrained_strict=True,
                                feature_cfg=dict(out_indices=3, feature_cls="getter"), **kwargs)


_COMMON = dict(patch_size=16, mlp_ratio=3.0, qkv_bias=False, skip_lam=2.0)


@register_model
def lvvit_s(pretrained: bool = False, **kwargs) -> LVViT:
    """LV-ViT-S: width 384, depth 16, 6 heads (26.2 M parameters)."""
    return _create_lvvit("lvvit_s", pretrained, **{**_COMMON, "embed_dim": 384, "depth": 16, "num_heads": 6, **kwargs})


@register_model
def lvvit_m(pretrained: bool = False, **kwargs) -> LVViT:
    """LV-ViT-M: width 512, depth 20, 8 heads (55.8 M parameters)."""
    return _create_lvvit("lvvit_m", pretrained, **{**_COMMON, "embed_dim": 512, "depth": 20, "num_heads": 8, **kwargs})
