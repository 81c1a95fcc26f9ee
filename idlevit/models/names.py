"""Model names the toolkit needs without importing torch or timm (CLI defaults, help texts)."""

DEFAULT_MODEL = "idlevit_deit_small_patch16_224"

SWEEP_NUM_PROPS = (0, 4, 8, 12, 16)   # P per block a GTP-ViT sweep runs unless told (DeiT at 224 px: P <= 16)
GTP_PREFIX = "gtp_"   # GTP-ViT (graph-based token propagation) model names: gtp_<timm ViT name>


def is_gtp(model_name: str) -> bool:
    """True for a GTP-ViT model name."""
    return model_name.startswith(GTP_PREFIX)
