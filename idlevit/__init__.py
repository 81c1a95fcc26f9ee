"""IdleViT deployment toolkit: token-idling ViTs from PyTorch to ONNX Runtime and TensorRT.

Importing the package registers the `idlevit_*` models with timm.
"""
from . import models  # noqa: F401  (registers timm models)
from .models import make_idle

__version__ = "0.1.0"
__all__ = ["make_idle", "models", "__version__"]
