"""Model names the toolkit needs without importing torch or timm (CLI defaults, help texts)."""

DEFAULT_MODEL = "idlevit_deit_small_patch16_224"

GTP_PREFIX = "gtp_"   # GTP-ViT (graph-based token propagation) model names: gtp_<timm ViT name>


def is_gtp(model_name: str) -> bool:
    """True for a GTP-ViT model name."""
    return model_name.startswith(GTP_PREFIX)
