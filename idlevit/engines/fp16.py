"""fp32 ONNX -> mixed-precision FP16 ONNX (fp32 I/O; selection path and LayerNorm kept fp32).

This is what TensorRT 11 builds into an FP16 engine (strongly typed), and what ONNX
Runtime runs to check FP16 parity. NVIDIA ModelOpt's AutoCast is used when installed,
otherwise onnxconverter-common's float16 converter with a node block list.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import List, Sequence

from ..errors import UserError
from ..onnx_file.info import onnx_precision
from ..onnx_file.io import load_onnx, save_onnx
from ..onnx_file.metadata import expected_topk, props_of, write_props
from ..onnx_file.selection_path import onnx_nodes_of_types, onnx_selection_nodes, topk_positions
from .fp16_options import BACKENDS, KEEP_FP32_OPS  # noqa: F401  (re-exported)


@dataclass
class Fp16Result:
    model: object                 # onnx.ModelProto
    backend: str                  # "modelopt" | "onnxconverter"
    fp32_nodes: List[str]         # nodes we asked to keep in fp32 (selection path + KEEP_FP32_OPS)
    selection_nodes: List[str]


def modelopt_available() -> bool:
    try:
        import modelopt.onnx.autocast  # noqa: F401
    except ImportError:
        return False
    return True


def fp32_block_list(model, keep_fp32_ops: Sequence[str] = KEEP_FP32_OPS):
    selection = onnx_selection_nodes(model)
    extra = onnx_nodes_of_types(model, keep_fp32_ops)
    return selection, sorted(set(selection) | set(extra))


def check_selection_found(path: str, model, selection: Sequence[str], keep_fp32_ops: Sequence[str]) -> None:
    """The TopK count must match the idle blocks in the metadata; without metadata, say what stays fp32.

    The selection path is found from the graph alone; idle-export's metadata is what tells how many
    idle blocks there are, so only with it can a missing TopK (whose scores would go fp16) be caught.
    """
    topk = len(topk_positions(model))
    expected = expected_topk(props_of(model))
    kept = f"{len(selection)} selection-path nodes behind {topk} TopK node(s) and the {' '.join(keep_fp32_ops)} nodes"
    if expected is None:
        warnings.warn(f"{path} has no idle-export metadata, so its idle blocks are unknown: kept {kept} in fp32; "
                      "scores of any idle block without a TopK node would run in fp16 (export the model with "
                      "idle-export to have this checked)", stacklevel=3)
        return
    if topk != expected:
        raise UserError(f"{path} has {topk} TopK nodes but its metadata lists {expected} idle blocks, so the "
                        "selection path cannot all be kept in fp32: re-export it with idle-export")


def _convert_onnxconverter(model, block: List[str]):
    from onnxconverter_common import float16
    with warnings.catch_warnings():
        # it warns once per weight it clamps into fp16 range (tiny values -> 1e-7): expected, not actionable
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block,
                                                disable_shape_infer=False)


def _convert_modelopt(path: str, block: List[str], keep_fp32_ops: Sequence[str]):
    from modelopt.onnx.autocast import convert_to_mixed_precision
    return convert_to_mixed_precision(onnx_path=path, low_precision_type="fp16",
                                      nodes_to_exclude=[f"^{re.escape(n)}$" for n in block],
                                      op_types_to_exclude=list(keep_fp32_ops) + ["TopK"],
                                      keep_io_types=True)


def convert_to_fp16(path: str, keep_fp32_ops: Sequence[str] = KEEP_FP32_OPS, backend: str = "auto") -> Fp16Result:
    """Mixed-precision FP16 version of the fp32 ONNX at `path`.

    Args:
        path: fp32 ONNX from idle-export.
        keep_fp32_ops: op types kept in fp32 besides the selection path.
        backend: "modelopt" (AutoCast), "onnxconverter" (onnxconverter-common) or "auto"
            (ModelOpt when installed).

    Returns:
        Fp16Result with the converted model (metadata carried over, plus "precision": "fp16").
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown FP16 backend {backend!r}: use one of {', '.join(BACKENDS)}")
    model = load_onnx(path)
    if onnx_precision(model) != "fp32":
        raise UserError(f"{path} is already {onnx_precision(model)}: pass the fp32 ONNX from idle-export")
    selection, block = fp32_block_list(model, keep_fp32_ops)
    check_selection_found(path, model, selection, keep_fp32_ops)
    if backend == "auto":
        backend = "modelopt" if modelopt_available() else "onnxconverter"
    if backend == "modelopt":
        if not modelopt_available():
            raise UserError("NVIDIA ModelOpt is not installed: pip install 'idlevit[quant]' or use --converter onnxconverter")
        converted = _convert_modelopt(path, block, keep_fp32_ops)
    else:
        converted = _convert_onnxconverter(model, block)
    write_props(converted, {**props_of(model), "precision": "fp16", "fp16_backend": backend,
                            "fp32_nodes": len(block)})
    return Fp16Result(converted, backend, block, selection)


def write_fp16_onnx(src: str, dst: str, keep_fp32_ops: Sequence[str] = KEEP_FP32_OPS,
                    backend: str = "auto") -> Fp16Result:
    result = convert_to_fp16(src, keep_fp32_ops, backend)
    save_onnx(result.model, dst)
    return result
