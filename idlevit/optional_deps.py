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
}


def require(module: str):
    """Import `module` or raise UserError with its install hint."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UserError(INSTALL_HINTS.get(top, f"{top} is not installed: pip install {top}")) from None
