"""Triton `config.pbtxt` for one model: I/O names, types and dims, dynamic batching, instance groups.

Written as protobuf text by hand (no tritonclient needed to deploy); where tritonclient is installed, every
text is parsed against Triton's own schema (`tritonclient.grpc.model_config_pb2`) before it is written, and
the ranges Triton checks on load are checked either way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import UserError

# numpy dtype name -> Triton DataType
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
                 "int64": "TYPE_INT64", "int32": "TYPE_INT32", "int16": "TYPE_INT16", "int8": "TYPE_INT8",
                 "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}
INSTANCE_KINDS = ("KIND_CPU", "KIND_GPU", "KIND_AUTO")
INT32_MAX, UINT64_MAX = 2 ** 31 - 1, 2 ** 64 - 1   # max_batch_size and count are int32, the queue delay uint64


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as Triton sees it: `dims` without the batch axis when the model batches."""
    name: str
    dtype: str                  # numpy dtype name
    dims: Sequence[int]         # -1 = variable

    def triton_type(self) -> str:
        if self.dtype not in TRITON_DTYPES:
            raise UserError(f"tensor {self.name} has type {self.dtype}, which Triton cannot carry: "
                            "export the model with float32 inputs and outputs")
        return TRITON_DTYPES[self.dtype]


@dataclass
class ModelConfig:
    """The fields of Triton's ModelConfig that a deployment of one of our files sets."""
    name: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    max_batch_size: int
    platform: Optional[str] = None          # "onnxruntime_onnx", "tensorrt_plan"
    backend: Optional[str] = None           # "python"
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    max_queue_delay_us: int = 0
    preferred_batch_sizes: Sequence[int] = ()
    default_model_filename: Optional[str] = None
    parameters: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if (self.platform is None) == (self.backend is None):
            raise ValueError("a model config sets exactly one of platform and backend")
        if self.instance_kind not in INSTANCE_KINDS:
            raise UserError(f"instance kind {self.instance_kind} is not one of {', '.join(INSTANCE_KINDS)}")
        if not 1 <= self.instance_count <= INT32_MAX:
            raise UserError(f"instance count {self.instance_count} must be from 1 to {INT32_MAX}")
        if not 0 <= self.max_batch_size <= INT32_MAX:
            raise UserError(f"max batch size {self.max_batch_size} must be from 0 (no batching) to {INT32_MAX}")
        if not 0 <= self.max_queue_delay_us <= UINT64_MAX:
            raise UserError(f"max queue delay {self.max_queue_delay_us} us must be from 0 to {UINT64_MAX}")

    def to_pbtxt(self) -> str:
        """The model's config.pbtxt (protobuf text format of Triton's ModelConfig)."""
        lines = [f"name: {_quote(self.name)}"]
        lines.append(f"platform: {_quote(self.platform)}" if self.platform else f"backend: {_quote(self.backend)}")
        lines.append(f"max_batch_size: {self.max_batch_size}")
        if self.default_model_filename:
            lines.append(f"default_model_filename: {_quote(self.default_model_filename)}")
        lines += _tensors("input", self.inputs) + _tensors("output", self.outputs)
        if self.max_batch_size > 0:  # Triton refuses a batcher on a model that does not batch
            lines.append("dynamic_batching {")
            lines += [f"  preferred_batch_size: {b}" for b in self.preferred_batch_sizes]
            lines.append(f"  max_queue_delay_microseconds: {self.max_queue_delay_us}")
            lines.append("}")
        lines.append(f"instance_group [ {{ count: {self.instance_count} kind: {self.instance_kind} }} ]")
        for key, value in self.parameters.items():
            lines.append(f"parameters {{ key: {_quote(key)} value {{ string_value: {_quote(value)} }} }}")
        return "\n".join(lines) + "\n"


def _tensors(kind: str, specs: Sequence[TensorSpec]) -> List[str]:
    out = [f"{kind} ["]
    for n, spec in enumerate(specs):
        dims = ", ".join(str(int(d)) for d in spec.dims)
        sep = "," if n + 1 < len(specs) else ""
        out.append(f"  {{ name: {_quote(spec.name)} data_type: {spec.triton_type()} dims: [ {dims} ] }}{sep}")
    return out + ["]"]


def _quote(text: str) -> str:
    return json.dumps(str(text), ensure_ascii=False)  # JSON escapes are valid protobuf text escapes for our names


def config_kind(pbtxt: str) -> str:
    """The platform (onnxruntime_onnx, tensorrt_plan) or backend (python) a config.pbtxt text names."""
    return next(line.split(":", 1)[1].strip().strip('"') for line in pbtxt.splitlines()
                if line.startswith(("platform:", "backend:")))


def check_with_triton_schema(pbtxt: str, model: str) -> None:
    """Refuse a config Triton would not load: parsed against Triton's ModelConfig schema (when tritonclient is
    installed), then the ranges Triton checks when it loads a model."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return   # the ranges are checked on ModelConfig itself; the schema needs 'idlevit[serve]'
    try:
        config = text_format.Parse(pbtxt, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise UserError(f"config.pbtxt of {model} does not fit Triton's schema ({e}): pass values in range") from None
    problems = []
    if config.max_batch_size < 0:
        problems.append(f"max_batch_size {config.max_batch_size} is negative")
    problems += [f"instance_group count {g.count} is below 1" for g in config.instance_group if g.count < 1]
    for tensor in list(config.input) + list(config.output):
        if any(d == 0 or d < -1 for d in tensor.dims) or (config.max_batch_size == 0 and not tensor.dims):
            problems.append(f"tensor {tensor.name} has dims {list(tensor.dims)}")
    batches = config.dynamic_batching.preferred_batch_size
    problems += [f"preferred batch {b} is outside 1..{config.max_batch_size}" for b in batches
                 if not 1 <= b <= config.max_batch_size]
    if problems:
        raise UserError(f"config.pbtxt of {model} would not load in Triton ({'; '.join(problems)}): "
                        "pass values in range")
