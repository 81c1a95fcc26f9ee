"""IdleViT on timm VisionTransformer: in-place conversion, masked forward and registered models.

Paper: "No Token Left Behind: Efficient Vision Transformer via Dynamic Token Idling",
Xu et al., https://arxiv.org/abs/2310.05654
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import timm
import torch
from timm.models import register_model
from timm.models.vision_transformer import Block, VisionTransformer

from . import lvvit  # noqa: F401  (registers the lvvit_s / lvvit_m backbones)
from .idle_block import IdleBlock, idle_block_forward, masked_block_forward
from .schedule import DEFAULT_KEEP_RATIO, KeepSchedule


@dataclass
class MaskedOutput:
    """What the training losses need from one masked forward."""
    logits: torch.Tensor
    features: torch.Tensor            # final [CLS] feature after the last norm (B, C)
    attn_maps: List[torch.Tensor]     # per idle block, W (B, N, N)
    masks: List[torch.Tensor]         # per idle block, selection mask (B, N), [CLS] included


class KeepScheduleMixin:
    """What IdleViT and the token-pruning baseline share on a timm `VisionTransformer`: a keep-ratio
    schedule (`keep_ratios`, set by `set_keep_ratio` without touching weights) and timm's embedding."""
    keep_ratios: List[float]

    @property
    def num_image_tokens(self) -> int:
        return self.patch_embed.num_patches

    def set_keep_ratio(self, keep_ratio: float = 1.0, keep_ratios: Optional[Sequence[float]] = None):
        schedule = KeepSchedule(keep_ratio, keep_ratios)
        self.keep_ratios = schedule.block_ratios(len(self.blocks))
        self._use_keep_tokens(schedule.block_tokens(len(self.blocks), self.num_image_tokens))
        return self

    def _use_keep_tokens(self, keep_tokens: List[Optional[int]]) -> None:
        """Apply K per block (None = plain block)."""
        raise NotImplementedError

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """timm's `forward_features` up to the blocks."""
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        return self.norm_pre(x)


class IdleViTMixin(KeepScheduleMixin):
    """Adds token idling to a timm `VisionTransformer` subclass.

    Modifications:
    - blocks become `IdleBlock` (same parameters); `keep_ratios` / `keep_tokens` describe
      the schedule and `set_keep_ratio` changes it without touching weights.
    - `forward_masked` runs the training path and returns logits, [CLS] feature,
      attention maps and masks; `forward_with_selection` returns the selected indices.
    - `forward` is timm's, except that where the head reads only [CLS] (token pooling, a
      per-token final norm) only that row is normed; `forward_features` is timm's own.
    """

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if args or kwargs or self.grad_checkpointing:
            return super().forward(x, *args, **kwargs)
        return self._norm_and_head(self.blocks(self._embed(x)))

    def _norm_and_head(self, x: torch.Tensor) -> torch.Tensor:
        """timm's final norm and head. Norming the other N-1 rows is wasted work when the head reads [CLS]
        only, and in ONNX Runtime it fuses with the last residual Add into a slower SkipLayerNormalization."""
        cls_only = (self.global_pool == "token" and self.attn_pool is None
                    and type(self).forward_head is VisionTransformer.forward_head
                    and isinstance(self.norm, (torch.nn.LayerNorm, torch.nn.Identity)))
        return self.forward_head(self.norm(x[:, :1] if cls_only else x))

    @property
    def keep_tokens(self) -> List[Optional[int]]:
        """K per block (None for a plain block)."""
        return [blk.keep_tokens for blk in self.blocks]

    def _use_keep_tokens(self, keep_tokens: List[Optional[int]]) -> None:
        for blk, k in zip(self.blocks, keep_tokens):
            blk.keep_tokens = k

    def forward_masked(self, x: torch.Tensor, attn_map: str = "mean_softmax") -> MaskedOutput:
        x = self._embed(x)
        maps, masks = [], []
        for blk in self.blocks:
            if blk.keep_tokens is None:
                x = blk(x)
                continue
            x, w_map, mask = masked_block_forward(blk, x, blk.keep_tokens, attn_map)
            maps.append(w_map)
            masks.append(mask)
        x = self.norm(x)
        return MaskedOutput(self.forward_head(x), x[:, 0], maps, masks)

    def forward_with_selection(self, x: torch.Tensor):
        """Eval forward that also returns, per idle block, the indices (B, K+1) it selected."""
        x = self._embed(x)
        selected = []
        for blk in self.blocks:
            if blk.keep_tokens is None:
                x = blk(x)
            else:
                x, idx = idle_block_forward(blk, x, blk.keep_tokens, return_indices=True)
                selected.append(idx)
        return self._norm_and_head(x), selected


_IDLE_CLASSES: Dict[type, type] = {}


def _idle_class(cls: type) -> type:
    if issubclass(cls, IdleViTMixin):
        return cls
    if cls not in _IDLE_CLASSES:
        _IDLE_CLASSES[cls] = type(f"Idle{cls.__name__}", (IdleViTMixin, cls), {})
    return _IDLE_CLASSES[cls]


def make_idle(model: VisionTransformer, keep_ratio: float = 1.0,
              keep_ratios: Optional[Sequence[float]] = None) -> VisionTransformer:
    """Turn a timm ViT with a [CLS] token into IdleViT in place (ToMe-style class swap).

    Works for any timm `VisionTransformer` whose blocks are plain `Block`s (DeiT, DeiT3 with
    LayerScale, ViT-AugReg, ...). Parameter names do not change.
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"{type(model).__name__} is not a timm VisionTransformer: IdleViT needs one")
    if getattr(model, "cls_token", None) is None or model.num_prefix_tokens != 1:
        raise ValueError(f"{type(model).__name__} has {model.num_prefix_tokens} prefix tokens and "
                         f"cls_token={'yes' if getattr(model, 'cls_token', None) is not None else 'no'}: "
                         "IdleViT needs exactly one [CLS] token and no register/distillation tokens")
    for i, blk in enumerate(model.blocks):
        if type(blk) not in (Block, IdleBlock):
            raise ValueError(f"block {i} is a {type(blk).__name__}: IdleViT supports timm's Block only")
        if type(blk.attn).__name__ != "Attention":
            raise ValueError(f"block {i} uses {type(blk.attn).__name__}: IdleViT supports timm's Attention only")
        blk.__class__ = IdleBlock
    model.__class__ = _idle_class(model.__class__)
    return model.set_keep_ratio(keep_ratio, keep_ratios)


def _create(backbone: str, pretrained: bool, keep_ratio: float, keep_ratios, **kwargs):
    # keys timm's factory hands every model fn; the backbone gets its own defaults instead
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    model = timm.create_model(backbone, pretrained=pretrained, **kwargs)
    return make_idle(model, keep_ratio, keep_ratios)


def _register(name: str, backbone: str):
    def fn(pretrained: bool = False, keep_ratio: float = DEFAULT_KEEP_RATIO,
           keep_ratios: Optional[Sequence[float]] = None, **kwargs):
        return _create(backbone, pretrained, keep_ratio, keep_ratios, **kwargs)
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"IdleViT on timm `{backbone}`; keep_ratio={DEFAULT_KEEP_RATIO} unless given."
    fn.__module__ = __name__
    register_model(fn)
    return fn


BACKBONES = {
    "idlevit_deit_tiny_patch16_224": "deit_tiny_patch16_224",
    "idlevit_deit_small_patch16_224": "deit_small_patch16_224",
    "idlevit_deit_base_patch16_224": "deit_base_patch16_224",
    "idlevit_deit_base_patch16_384": "deit_base_patch16_384",
    "idlevit_lvvit_s": "lvvit_s",
    "idlevit_lvvit_m": "lvvit_m",
}
for _name, _backbone in BACKBONES.items():
    globals()[_name] = _register(_name, _backbone)


def backbone_name(model_name: str) -> str:
    """timm name of the plain backbone behind an IdleViT name (or the name itself)."""
    return BACKBONES.get(model_name, model_name)


def registered_name(model_name: str) -> str:
    """The timm registry name that builds `model_name` as an IdleViT: an `idlevit_*` name as it is; any other
    timm ViT name as `idlevit_<name>`, registered the first time it is asked for (so every IdleViT, DeiT3 or
    AugReg included, is built by `timm.create_model`)."""
    if model_name in BACKBONES:
        return model_name
    name = f"idlevit_{model_name}"
    if name not in BACKBONES:
        BACKBONES[name] = model_name
        globals()[name] = _register(name, model_name)
    return name
