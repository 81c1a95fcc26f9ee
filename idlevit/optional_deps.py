"""Lazy imports of optional heavy packages, failing with one line that says how to install them."""
from __future__ import annotations

import importlib

from .errors import UserError

INSTALL_HINTS = {
    "onnxruntime": "ONNX Runtime is not installed: pip install onnxruntime (CPU) or pip install 'idlevit[gpu]' (CUDA)",
    "tensorrt": "TensorRT is not installed: pip install 'idlevit[trt]'",
    "openvino": "OpenVINO is not installed: pip install 'idlevit[openvino]'",
    "modelopt": "NVIDIA ModelOpt is not installed: pip install 'idlevit[quant]'",
    "onnx_graphsurgeon": "onnx-graphsurgeon (needed by Polygraphy's constant folding) is not installed: "
                         "pip install onnx-graphsurgeon",
    "onnxslim": "onnxslim is not installed: pip install onnxslim",
    "tritonclient": "tritonclient is not installed: pip install 'idlevit[serve]'",
}


def require(module: str):
    """Import `module` or raise UserError with its install hint."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or module == e.name or module.startswith(e.name + "."):
            raise UserError(INSTALL_HINTS.get(top, f"{top} is not installed: pip install {top}")) from None
        raise _broken(top, e) from None
    except ImportError as e:  # installed, but built for other versions of its own dependencies (numpy, say)
        raise _broken(top, e) from None


def _broken(top: str, error: ImportError) -> UserError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UserError(f"{top} is installed but does not import ({reason}); install a version from the "
                     f"supported range (pyproject.toml, docs/containers.md): pip install -U {top}")
