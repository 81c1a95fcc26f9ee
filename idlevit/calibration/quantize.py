"""fp32 ONNX + calib.npz -> explicitly quantized INT8 Q/DQ ONNX for TensorRT (and ONNX Runtime).

ModelOpt's ONNX quantizer is used when installed, otherwise ONNX Runtime's static QDQ
quantization: symmetric int8 activations and per-channel symmetric int8 weights (the only
Q/DQ form TensorRT accepts). The selection path (scores, TopK) and Softmax are never
quantized, so INT8 does not change which tokens idle.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..fileio import atomic_output, file_sha256, library_temp_dir, temp_path_beside
from ..limits import check_batch_size
from ..onnx_file.info import OnnxInfo, num_qdq_nodes, onnx_precision, read_onnx_info
from ..onnx_file.io import load_onnx, save_onnx
from ..onnx_file.metadata import props_of, write_props
from ..onnx_file.selection_path import onnx_nodes_of_types, onnx_selection_nodes
from .dataset import read_calib_npz
from .options import BACKEND_METHODS, BACKENDS, METHODS, WEIGHT_BITS, QuantizeOptions  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

@dataclass
class QuantizeResult:
    path: str
    backend: str
    excluded_nodes: List[str]
    selection_nodes: List[str]
    num_qdq: int
    calibration_images: int
    options: QuantizeOptions = field(default_factory=QuantizeOptions)


class NpzCalibrationReader:
    """onnxruntime.quantization CalibrationDataReader over one array, in fixed-size batches.

    `extra` inputs go with every batch unchanged (an elastic file's keep inputs at its default ratio).
    """

    def __init__(self, input_name: str, images: np.ndarray, batch_size: int = 8,
                 extra: Optional[Dict[str, np.ndarray]] = None):
        self.input_name, self.images, self.batch_size = input_name, images, max(1, batch_size)
        self.extra = dict(extra or {})
        self._batches: Optional[Iterator] = None
        self.rewind()

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = iter({self.input_name: self.images[i:i + self.batch_size], **self.extra}
                             for i in range(0, len(self.images), self.batch_size))

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)


def modelopt_available() -> bool:
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except ImportError:
        return False
    return True


def nodes_to_exclude(model, options: QuantizeOptions) -> tuple:
    """(selection-path nodes, all nodes kept in float).

    Besides the selection path and the `exclude_ops` nodes (Softmax), the nodes reading a
    Softmax output (attention-times-V) stay float too, so attention probabilities are never
    rounded to int8 on either side of the Softmax.
    """
    selection = onnx_selection_nodes(model)
    kept = set(onnx_nodes_of_types(model, options.exclude_ops))
    kept_outputs = {t for n in model.graph.node if n.name in kept for t in n.output}
    readers = {n.name for n in model.graph.node if set(n.input) & kept_outputs}
    excluded = set(selection) | kept | readers | set(options.exclude_nodes)
    return selection, sorted(excluded)


def restore_float_inputs(model, node_names: Sequence[str]) -> int:
    """Rewire `node_names` to read the float tensor wherever a quantizer fed them Q -> DQ of it.

    Quantizers insert one Q/DQ pair per tensor and hand the dequantized copy to every
    consumer, including consumers that were excluded (norm1's output feeds both the key
    projection, which is quantized, and the [CLS] query of the selection path, which must
    not be). Returns how many inputs were restored; Q/DQ pairs left unused are removed.
    """
    nodes = model.graph.node
    weights = {t.name for t in model.graph.initializer}
    producer = {t: n for n in nodes for t in n.output}
    keep = set(node_names)
    restored = 0
    for node in nodes:
        if node.name not in keep:
            continue
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] not in weights:
                node.input[i] = q.input[0]
                restored += 1
    while True:  # drop Q/DQ nodes nobody reads any more
        used = {t for n in nodes for t in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in used]
        if not dead:
            return restored
        orphans = {t for n in dead for t in n.input[1:]}  # their scales and zero points
        for n in dead:
            nodes.remove(n)
        used = {t for n in nodes for t in n.input}
        for init in [t for t in model.graph.initializer if t.name in orphans - used]:
            model.graph.initializer.remove(init)


def _quantize_onnxruntime(src: str, dst: str, reader: NpzCalibrationReader, exclude: List[str],
                          options: QuantizeOptions) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options.method]
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True,  # TensorRT: zero point must be 0
             "QuantizeBias": False,                                  # TensorRT: no int32 bias Q/DQ
             # Q/DQ on GEMM inputs only (TensorRT's and ModelOpt's placement); ORT would also
             # quantize every MatMul output, e.g. the logits going into Softmax
             "OpTypesToExcludeOutputQuantization": list(options.quantize_ops),
             "CalibPercentile": options.percentile, "CalibMaxIntermediateOutputs": None}
    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(options.quantize_ops),
                    per_channel=options.per_channel, reduce_range=options.weight_bits == 7,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=method,
                    extra_options={k: v for k, v in extra.items() if v is not None})


def _quantize_modelopt(src: str, dst: str, input_name: str, images: np.ndarray, exclude: List[str],
                       options: QuantizeOptions) -> None:
    from modelopt.onnx.quantization import quantize
    method = {"minmax": "max", "entropy": "entropy"}[options.method]
    # op_types_to_quantize: by default ModelOpt also puts Q/DQ on the inputs of LayerNorm and of the residual
    # Adds (DeiT-S r = 0.7: cosine 0.92 against 0.998 with GEMMs only). high_precision_dtype fp32: its default
    # fp16 pass would cast the selection path (TopK's scores) too; TopK is also kept off that pass by name.
    quantize(onnx_path=src, quantize_mode="int8", calibration_data={input_name: images},
             calibration_method=method, nodes_to_exclude=[f"^{re.escape(n)}$" for n in exclude],
             op_types_to_quantize=list(options.quantize_ops), op_types_to_exclude=list(options.exclude_ops),
             high_precision_dtype="fp32", op_types_to_exclude_fp16=["TopK"],
             calibration_eps=["cpu"], output_path=dst)


def check_fp32_source(onnx_path: str, precision: str) -> None:
    """Only an fp32 file is quantized: an fp16 or int8 one would stack a second conversion on the first."""
    if precision != "fp32":
        raise UserError(f"{onnx_path} is {precision}, not fp32: quantize the fp32 ONNX from idle-export")


def quantize_int8(onnx_path: str, calib_path: str, out_path: str,
                  options: Optional[QuantizeOptions] = None) -> QuantizeResult:
    """Write the INT8 Q/DQ version of the fp32 ONNX at `onnx_path`, calibrated on `calib_path`.

    Args:
        onnx_path: fp32 ONNX from idle-export.
        calib_path: calib.npz from idle-calibrate (or build_calibration_set).
        out_path: where the Q/DQ ONNX goes (written atomically).
        options: calibration method, per-channel weights, backend, what to keep in float.

    Returns:
        QuantizeResult naming the backend, the nodes kept in float and the Q/DQ count.
    """
    options = options or QuantizeOptions()
    check_batch_size(options.batch_size)
    if options.method is not None and options.method not in METHODS:
        raise UserError(f"unknown calibration method {options.method!r}: use one of {', '.join(METHODS)}")
    if options.backend not in BACKENDS:
        raise UserError(f"unknown quantization backend {options.backend!r}: use one of {', '.join(BACKENDS)}")
    backend = options.backend
    if backend == "auto":
        backend = "modelopt" if modelopt_available() else "onnxruntime"
    if options.weight_bits not in WEIGHT_BITS:
        raise UserError(f"--weight-bits {options.weight_bits} is not supported: use one of "
                        f"{', '.join(map(str, WEIGHT_BITS))}")
    if options.weight_bits != 8 and backend == "modelopt":
        raise UserError("7-bit weights are an ONNX Runtime CPU format: pass --quantizer ort, or drop --weight-bits")
    if backend == "modelopt" and not modelopt_available():
        raise UserError("NVIDIA ModelOpt is not installed: pip install 'idlevit[quant]' or use --quantizer ort")
    supported = BACKEND_METHODS[backend]
    if options.method is None:
        options = replace(options, method=supported[0])
    elif options.method not in supported:
        raise UserError(f"{backend} quantization calibrates with {' or '.join(supported)}, not {options.method}: "
                        f"pass --method {supported[0]}")
    model = load_onnx(onnx_path)
    check_fp32_source(onnx_path, onnx_precision(model))
    info = read_onnx_info(onnx_path, model)
    images = read_calib_npz(calib_path, info.input_name)
    want = tuple(d for d in info.input_shape[1:])
    if tuple(images.shape[1:]) != want:
        raise UserError(f"{calib_path} holds images of shape {list(images.shape[1:])} but {onnx_path} takes "
                        f"{list(want)}: make calib.npz with idle-calibrate --onnx {onnx_path}")
    selection, exclude = nodes_to_exclude(model, options)
    keep = _elastic_default_feed(info)
    if keep and backend == "modelopt":
        raise UserError(f"{onnx_path} is elastic and ModelOpt calibrates on image inputs only: "
                        "pass --quantizer ort")

    with atomic_output(out_path, suffix=".onnx") as tmp_out:
        # quantizers want file paths: hand them a copy with every node named, beside the output
        tmp_src = temp_path_beside(out_path, ".src.onnx")
        try:
            save_onnx(model, tmp_src)
            log.info("quantizing %s with %s (%s calibration, %d images; %d nodes kept in float)",
                     onnx_path, backend, options.method, len(images), len(exclude))
            with library_temp_dir("quant"):   # the quantizers' own temp folders (ort.quant.*): gone even after a kill
                if backend == "modelopt":
                    _quantize_modelopt(tmp_src, tmp_out, info.input_name, images, exclude, options)
                else:
                    reader = NpzCalibrationReader(info.input_name, images, options.batch_size, extra=keep)
                    _quantize_onnxruntime(tmp_src, tmp_out, reader, exclude, options)
        finally:
            os.remove(tmp_src)
        quantized = load_onnx(tmp_out)
        restore_float_inputs(quantized, exclude)
        write_props(quantized, {**props_of(model), "precision": "int8", "int8_backend": backend,
                                "calibration_method": options.method, "calibration_images": len(images),
                                "int8_weight_bits": options.weight_bits,
                                "calibration_sha256": file_sha256(calib_path)})
        save_onnx(quantized, tmp_out)
    num_qdq = num_qdq_nodes(quantized)
    return QuantizeResult(out_path, backend, exclude, selection, num_qdq, len(images), options)


def _elastic_default_feed(info: OnnxInfo) -> Dict[str, np.ndarray]:
    """An elastic file's keep inputs at its default ratio (calibration runs there); {} for a fixed-K file."""
    from ..onnx_file.elastic import ElasticKeep
    if info.metadata.get("elastic") != "true":
        return {}
    return ElasticKeep.from_metadata(info.export_metadata, info.path).feed()
