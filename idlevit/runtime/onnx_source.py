"""An ONNX model given as a path, ModelProto or bytes, in the form a runtime reads, with selection outputs if asked."""
from __future__ import annotations

from typing import Union

import onnx

from ..errors import UserError
from ..onnx_file.io import check_onnx_file, load_onnx


def onnx_for_runtime(source: Union[str, bytes, "onnx.ModelProto"], selection: bool) -> Union[str, bytes]:
    """A path (unchanged file) or serialized bytes; with `selection`, each TopK's indices become outputs."""
    src = source
    label = f"ONNX file {src}" if isinstance(src, str) else "the ONNX model"
    if isinstance(src, str):
        check_onnx_file(src)
        if not selection:
            return src
        src = load_onnx(src)
    elif isinstance(src, (bytes, bytearray)):
        if not selection:
            return bytes(src)
        src = onnx.load_from_string(bytes(src))
    if selection:
        from ..onnx_file.selection_outputs import add_selection_outputs
        src, names = add_selection_outputs(src)
        if not names:
            raise UserError(f"{label} has no TopK node, so it selects no tokens to report (a keep-ratio-1.0 "
                            "baseline, or not an IdleViT export): pass an IdleViT ONNX exported by idle-export "
                            "with a keep ratio below 1.0")
    return src.SerializeToString()
