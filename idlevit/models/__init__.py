"""IdleViT models: token selection, idle blocks, timm registration and the cut loss."""
from .cut_loss import TokenCutLoss, token_cut_loss
from .idle_block import IdleBlock, idle_block_forward, masked_block_forward
from .idlevit import BACKBONES, IdleViTMixin, MaskedOutput, backbone_name, make_idle
from .selection import (check_keep_ratio, cls_attention_scores, keep_ratio_schedule, select_tokens,
                        selection_mask, tokens_to_keep)

__all__ = [
    "BACKBONES", "IdleBlock", "IdleViTMixin", "MaskedOutput", "TokenCutLoss", "backbone_name",
    "check_keep_ratio", "cls_attention_scores", "idle_block_forward", "keep_ratio_schedule",
    "make_idle", "masked_block_forward", "select_tokens", "selection_mask", "token_cut_loss",
    "tokens_to_keep",
]
