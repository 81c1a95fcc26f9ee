"""IdleViT models: the keep-ratio schedule, token selection, idle blocks, timm registration and the cut loss;
GTP-ViT (graph-based token propagation) beside them.

The names below load on first use (so that `idlevit.models.schedule` and `idlevit.models.names`, pure
Python, import without torch); `make_idle`, `backbone_name`, `registered_name` or any import of
`idlevit.models.idlevit` registers the `idlevit_*` models with timm; `make_gtp` or an import of
`idlevit.models.gtp_vit` registers the training-free GTP-ViT `gtp_*` models.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("TokenCutLoss", "token_cut_loss"), ".cut_loss"),
    **dict.fromkeys(("IdleBlock", "idle_block_forward", "masked_block_forward"), ".idle_block"),
    **dict.fromkeys(("BACKBONES", "IdleViTMixin", "MaskedOutput", "backbone_name", "make_idle", "registered_name"),
                    ".idlevit"),
    **dict.fromkeys(("DEFAULT_KEEP_RATIO", "KeepSchedule", "check_keep_ratio", "tokens_to_keep"), ".schedule"),
    **dict.fromkeys(("cls_attention_scores", "select_tokens", "selection_mask"), ".selection"),
    **dict.fromkeys(("GTPSettings", "make_gtp"), ".gtp_vit"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
