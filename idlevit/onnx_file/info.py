"""Facts about an exported ONNX that engines and calibration need: I/O, metadata, precision, sha256."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..checkpoint import file_sha256
from ..errors import UserError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class OnnxInfo:
    path: str
    sha256: str
    input_name: str
    input_shape: Tuple            # batch axis as a str/None (dynamic), the rest ints
    output_names: List[str]
    metadata: Dict[str, str] = field(default_factory=dict)
    precision: str = "fp32"       # fp32 | fp16 (mixed, fp16 ops inside) | int8 (has Q/DQ nodes)

    @property
    def keep_ratios(self) -> Optional[List[float]]:
        value = metadata_list(self.metadata, "keep_ratios")
        return [float(v) for v in value] if value is not None else None


def metadata_value(meta: Dict[str, str], *keys: str):
    """First of `keys` in ONNX metadata_props, JSON-decoded when it is JSON; None when absent."""
    for key in keys:
        if key in meta:
            try:
                return json.loads(meta[key])
            except (ValueError, TypeError):
                return meta[key]
    return None


def metadata_list(meta: Dict[str, str], *keys: str) -> Optional[list]:
    """A list-valued metadata entry written as JSON ("[0.7, 0.49]") or comma-separated."""
    value = metadata_value(meta, *keys)
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, (int, float)):
        return [value]
    return [v.strip() for v in str(value).strip("[]()").split(",") if v.strip()]


def load_onnx(path: str, load_weights: bool = True):
    """onnx.ModelProto, or a one-line UserError for a missing or unreadable file."""
    import onnx
    if not os.path.isfile(path):
        raise UserError(f"ONNX file {path} does not exist: export one with idle-export or pass another --onnx")
    try:
        return onnx.load(path, load_external_data=load_weights)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError for broken files
        raise UserError(f"cannot read ONNX file {path} ({type(e).__name__}): re-export it") from None


def _dims(value_info) -> Tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def onnx_precision(model) -> str:
    """int8 when the graph has Q/DQ nodes, fp16 when it computes in fp16 anywhere, else fp32."""
    import onnx
    ops = {n.op_type for n in model.graph.node}
    if ops & set(QDQ_OPS):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    if any(t.data_type == fp16 for t in model.graph.initializer):
        return "fp16"
    for n in model.graph.node:
        if n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute):
            return "fp16"
    return "fp32"


def read_onnx_info(path: str, model=None) -> OnnxInfo:
    """Inputs, outputs, metadata and precision of the ONNX at `path` (one image input, plus an elastic file's
    keep inputs, expected)."""
    from .elastic import is_keep_input
    model = model if model is not None else load_onnx(path, load_weights=False)
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights and not is_keep_input(i.name)]
    if len(inputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}): "
                        "expected one image input; export it with idle-export")
    shape = _dims(inputs[0])
    if len(shape) != 4:
        raise UserError(f"{path}: input {inputs[0].name} has shape {list(shape)}, expected (batch, 3, H, W)")
    return OnnxInfo(path=path, sha256=file_sha256(path), input_name=inputs[0].name, input_shape=shape,
                    output_names=[o.name for o in model.graph.output],
                    metadata={p.key: p.value for p in model.metadata_props},
                    precision=onnx_precision(model))


def save_onnx(model, path: str) -> None:
    """Write `model` atomically (temp file + rename); big models go to one external-data file."""
    import onnx
    from ..fileio import atomic_output
    big = model.ByteSize() > 1_900_000_000  # protobuf's 2 GiB limit
    with atomic_output(path) as tmp:
        if big:
            onnx.save(model, tmp, save_as_external_data=True, location=os.path.basename(path) + ".data")
        else:
            onnx.save(model, tmp)


def copy_metadata(src, dst, extra: Optional[Dict[str, str]] = None,
                  drop: Sequence[str] = ()) -> None:
    """Carry metadata_props from `src` to `dst` (the precision converters drop or keep them unevenly)."""
    meta = {p.key: p.value for p in src.metadata_props}
    meta.update(extra or {})
    for key in drop:
        meta.pop(key, None)
    del dst.metadata_props[:]
    for key, value in meta.items():
        entry = dst.metadata_props.add()
        entry.key, entry.value = key, str(value)
