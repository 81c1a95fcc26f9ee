"""Build an IdleViT from a model name, keep ratio and optional local checkpoint (used by every CLI)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import timm
import torch

from .checkpoint import load_checkpoint
from .errors import UserError
from .models import backbone_name, make_idle
from .models.selection import check_keep_ratio

DEFAULT_MODEL = "idlevit_deit_small_patch16_224"


@dataclass
class ModelSource:
    """Where a model's weights came from: recorded in ONNX metadata and sidecars."""
    model_name: str
    ckpt: Optional[str] = None
    ckpt_sha256: Optional[str] = None
    seed: Optional[int] = None
    keep_ratios: list = field(default_factory=list)


def create_idlevit(model_name: str = DEFAULT_MODEL, keep_ratio: float = 0.7,
                   keep_ratios: Optional[Sequence[float]] = None, ckpt: Optional[str] = None,
                   img_size: Optional[int] = None, seed: int = 0, num_classes: Optional[int] = None,
                   warn_random: bool = True, **kwargs):
    """IdleViT in eval mode plus its `ModelSource`.

    Without `ckpt` the weights are timm's init under `torch.manual_seed(seed)`, so the same
    name and seed always rebuild the same model (export and parity rely on this).
    Any timm ViT name with a [CLS] token works; `idlevit_*` names map to their backbone.
    """
    try:
        check_keep_ratio(keep_ratio)
        if keep_ratios is not None:
            [check_keep_ratio(r, "per-block keep ratio") for r in keep_ratios]
    except ValueError as e:
        raise UserError(str(e)) from None
    backbone = backbone_name(model_name)
    if not timm.is_model(backbone):
        raise UserError(f"unknown model {model_name!r}: use one of the idlevit_deit_* / idlevit_lvvit_* names or a timm ViT name "
                        "such as deit3_small_patch16_224")
    if img_size is not None:
        kwargs["img_size"] = img_size
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    torch.manual_seed(seed)
    try:
        model = timm.create_model(backbone, pretrained=False, **kwargs)
        make_idle(model, keep_ratio, keep_ratios)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError(f"cannot build {model_name}: {e}") from None
    source = ModelSource(model_name, seed=None if ckpt else seed, keep_ratios=list(model.keep_ratios))
    if ckpt:
        source.ckpt = ckpt
        source.ckpt_sha256 = load_checkpoint(model, ckpt, model_name)
    elif warn_random:
        warnings.warn(f"no --ckpt given: {model_name} uses seeded random weights (seed {seed}); "
                      "numbers are for speed and parity, not accuracy", stacklevel=2)
    return model.eval(), source


def image_size(model) -> int:
    size = model.patch_embed.img_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def model_data_config(model) -> dict:
    """timm's eval data config for `model` at the resolution it was built for (not its pretrained default)."""
    from timm.data import resolve_data_config
    img = image_size(model)
    return resolve_data_config({"input_size": (3, img, img)}, model=model)
