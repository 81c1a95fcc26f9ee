"""Lazy TensorRT import with an install hint, and the one place that branches on its major version."""
from __future__ import annotations

from packaging.version import Version

from ..errors import UserError
from ..optional_deps import INSTALL_HINTS

INSTALL_HINT = INSTALL_HINTS["tensorrt"]


def import_tensorrt():
    """The `tensorrt` module, or a UserError with the install hint (CLIs exit 2).

    Unlike optional_deps.require it also catches OSError: a tensorrt wheel whose libnvinfer
    cannot be loaded is as good as none.
    """
    try:
        import tensorrt as trt
    except (ImportError, OSError) as e:  # OSError: the wheel is there but libnvinfer is not
        detail = "" if isinstance(e, ModuleNotFoundError) else f" ({e})"
        raise UserError(INSTALL_HINT + detail) from None
    return trt


def tensorrt_version(trt) -> Version:
    return Version(trt.__version__)


def strongly_typed_only(trt) -> bool:
    """TensorRT 11 removed weak typing: no FP16/INT8 builder flags, precision comes from the ONNX."""
    return tensorrt_version(trt).major >= 11
