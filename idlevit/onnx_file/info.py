"""An exported ONNX file as engines, calibration and serving see it: image input, outputs, metadata, precision.

`OnnxInfo` is the one description of a file on disk. Its metadata is kept as the raw
metadata_props (a converted or foreign ONNX need not carry all of idle-export's keys);
`export_metadata` parses them strictly into `ExportMetadata`, `value`/`list` read single
keys leniently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import onnx

from ..errors import UserError
from ..fileio import file_sha256
from .elastic import is_keep_input
from .io import load_onnx
from .metadata import ExportMetadata, metadata_list, metadata_value, props_of

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class OnnxInfo:
    path: str
    sha256: str
    input_name: str
    input_shape: Tuple            # batch axis as a str/None (dynamic), the rest ints
    output_names: List[str]
    metadata: Dict[str, str] = field(default_factory=dict)   # metadata_props as written
    precision: str = "fp32"       # fp32 | fp16 (mixed, fp16 ops inside) | int8 (has Q/DQ nodes)

    @property
    def export_metadata(self) -> ExportMetadata:
        """The idle-export metadata, parsed strictly; UserError when absent or corrupt."""
        return ExportMetadata.from_props(self.metadata, self.path)

    def value(self, *keys: str):
        """First of `keys` in the metadata (JSON-decoded when it is JSON), or None."""
        return metadata_value(self.metadata, *keys)

    def list_value(self, *keys: str) -> Optional[list]:
        """A list-valued metadata entry (JSON or comma-separated), or None."""
        return metadata_list(self.metadata, *keys)

    @property
    def keep_ratios(self) -> Optional[List[float]]:
        value = self.list_value("keep_ratios")
        return [float(v) for v in value] if value is not None else None


def _dims(value_info) -> Tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def num_qdq_nodes(model: onnx.ModelProto) -> int:
    return sum(n.op_type in QDQ_OPS for n in model.graph.node)


def onnx_precision(model: onnx.ModelProto) -> str:
    """int8 when the graph has Q/DQ nodes, fp16 when it computes in fp16 anywhere, else fp32."""
    if num_qdq_nodes(model):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    if any(t.data_type == fp16 for t in model.graph.initializer):
        return "fp16"
    for n in model.graph.node:
        if n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute):
            return "fp16"
    return "fp32"


def read_onnx_info(path: str, model: Optional[onnx.ModelProto] = None) -> OnnxInfo:
    """Inputs, outputs, metadata and precision of the ONNX at `path` (one image input, plus an elastic file's
    keep inputs, expected)."""
    model = model if model is not None else load_onnx(path, load_external_data=False)
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights and not is_keep_input(i.name)]
    if len(inputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}): "
                        "expected one image input; export it with idle-export")
    shape = _dims(inputs[0])
    if len(shape) != 4:
        raise UserError(f"{path}: input {inputs[0].name} has shape {list(shape)}, expected (batch, 3, H, W)")
    return OnnxInfo(path=path, sha256=file_sha256(path), input_name=inputs[0].name, input_shape=shape,
                    output_names=[o.name for o in model.graph.output], metadata=props_of(model),
                    precision=onnx_precision(model))
