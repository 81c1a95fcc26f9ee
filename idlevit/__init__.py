"""IdleViT deployment toolkit: token-idling ViTs from PyTorch to ONNX Runtime and TensorRT.

Importing the package is instant: nothing below it is loaded until used. `idlevit.make_idle`
(or any import of `idlevit.models.idlevit`, which the model factory and training do) registers
the `idlevit_*` models with timm.
"""
from .lazy import lazy_exports

__version__ = "0.1.0"
__all__ = ["make_idle", "models", "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, {"make_idle": ".models", "models": ""})
