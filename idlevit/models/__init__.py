"""IdleViT models: the keep-ratio schedule, token selection, idle blocks, timm registration and the cut loss."""
from .cut_loss import TokenCutLoss, token_cut_loss
from .idle_block import IdleBlock, idle_block_forward, masked_block_forward
from .idlevit import BACKBONES, IdleViTMixin, MaskedOutput, backbone_name, make_idle, registered_name
from .schedule import DEFAULT_KEEP_RATIO, KeepSchedule, check_keep_ratio, tokens_to_keep
from .selection import cls_attention_scores, select_tokens, selection_mask

__all__ = [
    "BACKBONES", "DEFAULT_KEEP_RATIO", "IdleBlock", "IdleViTMixin", "KeepSchedule", "MaskedOutput", "TokenCutLoss",
    "backbone_name", "check_keep_ratio", "cls_attention_scores", "idle_block_forward", "make_idle",
    "masked_block_forward", "registered_name", "select_tokens", "selection_mask", "token_cut_loss", "tokens_to_keep",
]
