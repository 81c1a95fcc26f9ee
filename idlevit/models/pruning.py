"""Token-pruning baseline for the replication: IdleViT's selection, but unselected tokens are dropped.

This is the EViT / DynamicViT family without token fusion, the comparison of the IdleViT paper's
Table 2 ("No Token Left Behind", Xu et al., https://arxiv.org/abs/2310.05654).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from timm.models.vision_transformer import Block, VisionTransformer

from .idle_block import select_for_block
from .idlevit import IdleViTMixin, KeepScheduleMixin, MaskedOutput
from .selection import gather_tokens


class PruneViTMixin(KeepScheduleMixin):
    """Adds token pruning to a timm `VisionTransformer` subclass.

    Modifications:
    - before each block whose K (same schedule and [CLS]-logit scores as IdleViT) is smaller than
      the number of image tokens still alive, only [CLS] + the top-K tokens are kept; the others
      are dropped for good, so a later block can never pick them again.
    - `forward_masked` returns the same `MaskedOutput` as IdleViT (no attention maps or masks),
      so the fine-tuning loop trains both variants; gather is differentiable for kept tokens.
    Blocks stay timm's own and no parameter is added or renamed.
    """
    prune_tokens: List[Optional[int]]

    def _use_keep_tokens(self, keep_tokens: List[Optional[int]]) -> None:
        self.prune_tokens = keep_tokens

    def forward_features(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                         is_causal: bool = False) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("token pruning changes the sequence length: attention masks are not supported")
        x = self._embed(x)
        for blk, keep in zip(self.blocks, self.prune_tokens):
            if keep is not None and x.shape[1] - 1 > keep:
                x = prune_tokens(blk, x, keep)
            x = blk(x)
        return self.norm(x)

    def forward_masked(self, x: torch.Tensor, attn_map: str = "mean_softmax") -> MaskedOutput:
        x = self.forward_features(x)
        return MaskedOutput(self.forward_head(x), x[:, 0], [], [])


def prune_tokens(block: Block, x: torch.Tensor, keep: int) -> torch.Tensor:
    """[CLS] + the `keep` image tokens with the highest [CLS] logits in `block`, others dropped."""
    return gather_tokens(x, select_for_block(block, block.norm1(x), keep))


_PRUNE_CLASSES: Dict[type, type] = {}


def make_prune(model: VisionTransformer, keep_ratio: float = 1.0,
               keep_ratios: Optional[Sequence[float]] = None) -> VisionTransformer:
    """Turn a timm ViT with a [CLS] token (or an IdleViT, whose idling is switched off) into the
    pruning baseline, in place. Parameter names do not change, so checkpoints load unchanged."""
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"{type(model).__name__} is not a timm VisionTransformer: pruning needs one")
    if getattr(model, "cls_token", None) is None or model.num_prefix_tokens != 1:
        raise ValueError("token pruning needs exactly one [CLS] token and no register/distillation tokens")
    if isinstance(model, IdleViTMixin):
        model.set_keep_ratio(1.0)          # blocks run timm's plain forward
        cls = next(c for c in type(model).__mro__ if not issubclass(c, KeepScheduleMixin))
    else:
        cls = type(model)
    if not issubclass(cls, PruneViTMixin):
        if cls not in _PRUNE_CLASSES:
            _PRUNE_CLASSES[cls] = type(f"Prune{cls.__name__}", (PruneViTMixin, cls), {})
        model.__class__ = _PRUNE_CLASSES[cls]
    return model.set_keep_ratio(keep_ratio, keep_ratios)
