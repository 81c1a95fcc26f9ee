"""Model names the toolkit needs without importing torch or timm (CLI defaults, help texts)."""

DEFAULT_MODEL = "idlevit_deit_small_patch16_224"
