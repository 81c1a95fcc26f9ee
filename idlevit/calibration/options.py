"""What an INT8 quantization run is asked to do (quantizer, calibration method, ops kept in float).

Kept apart from `quantize` so that `idle-calibrate --help` reads the choices and defaults without
loading onnx or torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

METHODS = ("minmax", "entropy", "percentile")
# what each quantizer can do: ORT's quantize_static cannot set the entropy histogram size
# (128 bins, which makes it pick the min/max range), ModelOpt has no percentile calibration
BACKEND_METHODS = {"onnxruntime": ("percentile", "minmax"), "modelopt": ("entropy", "minmax")}
BACKENDS = ("auto", "modelopt", "onnxruntime")
# the CLI spells ONNX Runtime "ort" like every runtime flag (idle-calibrate --quantizer ort)
QUANTIZERS = {"auto": "auto", "modelopt": "modelopt", "ort": "onnxruntime"}
EXCLUDE_OPS = ("Softmax",)
# GEMM-like ops carry the INT8 speedup on TensorRT; everything else stays in float
QUANTIZE_OPS = ("MatMul", "Gemm", "Conv")
WEIGHT_BITS = (8, 7)


@dataclass
class QuantizeOptions:
    method: Optional[str] = None         # None: the backend's first BACKEND_METHODS entry
    percentile: float = 99.99
    per_channel: bool = True
    batch_size: int = 8
    backend: str = "auto"
    exclude_ops: Sequence[str] = EXCLUDE_OPS
    quantize_ops: Sequence[str] = QUANTIZE_OPS
    exclude_nodes: Sequence[str] = ()     # extra node names kept in float
    # 7: weights in [-64, 64] (ORT's reduce_range), so ONNX Runtime's fast u8s8 kernels cannot saturate their
    # 16-bit pair sums on x86 CPUs without VNNI (255 * 64 * 2 < 2**15); 8 for TensorRT and VNNI/AMX CPUs
    weight_bits: int = 8
