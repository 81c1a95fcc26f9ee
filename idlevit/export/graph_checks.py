"""Static check that an ONNX graph is one TensorRT's ONNX parser accepts, with the constraints of docs/design.md §3.1."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Union

import numpy as np
import onnx
from onnx import numpy_helper

from ..onnx_file.elastic import is_keep_input

# Ops marked supported in onnx-tensorrt's operator matrix for TensorRT 10.x (docs/operators.md), default domain.
TRT_SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU
HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization
LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow
PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape
Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan
Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Parsed by TensorRT, but not allowed in an IdleViT graph (docs/design.md §3.1).
FORBIDDEN_OPS = {
    "NonZero": "data-dependent output shape (boolean indexing exports it)",
    "Unique": "data-dependent output shape",
    "Compress": "data-dependent output shape",
    "NonMaxSuppression": "data-dependent output shape",
}
MAX_TOPK = 3840                 # TensorRT's TopK limit
OPSET_RANGE = (17, 20)          # safe on TensorRT 10 and 11
# inputs that TensorRT needs as build-time constants: op -> input positions
CONSTANT_INPUTS = {
    "TopK": (1,), "Slice": (3,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceMean": (1,), "ReduceSum": (1,),
    "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,),
    "ReduceSumSquare": (1,), "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "CumSum": (1,),
}


@dataclass
class GraphIssue:
    node: str
    op: str
    problem: str

    def __str__(self) -> str:
        return f"{self.op} {self.node}: {self.problem}"


@dataclass
class GraphCheckReport:
    """What the check found. `ok` is True when nothing blocks a TensorRT build."""
    opset: int
    op_counts: Dict[str, int]
    topk: List[int]                                  # K of each TopK, in graph order
    issues: List[GraphIssue] = field(default_factory=list)
    dynamic_dims: List[str] = field(default_factory=list)   # symbols seen in shapes (batch and keep lengths are fine)

    @property
    def ok(self) -> bool:
        return not self.issues

    def summary(self) -> str:
        head = (f"TensorRT op check: {'ok' if self.ok else f'{len(self.issues)} problem(s)'} "
                f"(opset {self.opset}, {sum(self.op_counts.values())} nodes, {len(self.topk)} TopK, "
                f"K = {', '.join(map(str, self.topk)) or '-'})")
        return "\n".join([head] + [f"  {issue}" for issue in self.issues])

    def to_json(self) -> dict:
        return {"ok": self.ok, "opset": self.opset, "op_counts": self.op_counts, "topk": self.topk,
                "issues": [str(i) for i in self.issues], "dynamic_dims": self.dynamic_dims}


def _constants(graph: onnx.GraphProto) -> Dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
                elif attr.name in ("value_int", "value_ints"):
                    values[node.output[0]] = np.array(onnx.helper.get_attribute_value(attr))
    return values


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _symbolic_shapes(model: onnx.ModelProto):
    """ONNX Runtime's symbolic shape inference: every dim as an int or an expression of the input symbols.

    An elastic file slices K = len(keep input) out of N sorted indices, which the inference writes as
    Min(N, K) and cannot prove equal to K where the two meet; `auto_merge` lets it equate them (the
    merged dims are still checked to depend on input dims only).
    """
    from ..optional_deps import require
    require("onnxruntime")
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    elastic = any(is_keep_input(value.name) for value in model.graph.input)
    inference = SymbolicShapeInference(2**31 - 1, elastic, False, 0)
    # ONNX Runtime's tool before 1.31 ignores Shape's start/end (opset >= 15), which the dynamo exporter
    # emits, and then asserts further down (in Range); this handler makes every release from 1.23 on agree
    inference.dispatcher_["Shape"] = lambda node: _infer_shape_slice(inference, node)
    if default_opset(model) >= 18:
        # ReduceMax/ReduceMin take their axes as an input from opset 18 on, exactly as ReduceSum does from
        # 13 (LV-ViT's dense head ends in a ReduceMax); ORT's tool knows only the ReduceSum/ReduceMean form
        for op in ("ReduceMax", "ReduceMin"):
            inference.dispatcher_.setdefault(op, inference._infer_ReduceSum)
    inference._preprocess(model)
    complete = False
    while inference.run_:
        complete = inference._infer_impl()
    if not complete:
        raise ValueError("some tensor shapes could not be inferred")
    inference._update_output_from_vi()
    return inference.out_mp_


def _infer_shape_slice(inference, node: onnx.NodeProto) -> None:
    """Shape with its opset-15 start/end: Python's slice clamps out-of-range and negative bounds as ONNX does."""
    dims = inference._get_sympy_shape(node, 0)
    inference.sympy_data_[node.output[0]] = dims[_attr(node, "start", 0):_attr(node, "end")]


def _shape_table(model: onnx.ModelProto) -> Dict[str, onnx.TypeProto]:
    graph = model.graph
    return {v.name: v.type for v in list(graph.value_info) + list(graph.input) + list(graph.output)}


def check_tensorrt_compat(model: Union[str, onnx.ModelProto], *, expected_topk: Optional[int] = None,
                          check_shapes: bool = True) -> GraphCheckReport:
    """Check every node against TensorRT's ONNX parser and the IdleViT export rules.

    Args:
        model: ONNX path or ModelProto.
        expected_topk: number of TopK nodes the graph must have (the idle blocks), or None.
        check_shapes: run symbolic shape inference and require every dim to be static or a
            function of the batch symbol and, in an elastic file, of the keep inputs' lengths
            (no data-dependent shapes).

    Returns:
        GraphCheckReport; `report.ok` is False when anything would fail or break the rules:
        ops TensorRT does not parse, NonZero and other data-dependent shapes, TopK with a
        non-constant K, K > 3840, sorted=0, largest=0, not on the last axis, or on a non-fp32
        input, ScatterElements or ScatterND with a reduction, axes that are not constants, opset outside 17-20.
    """
    if isinstance(model, str):
        model = onnx.load(model)
    graph = model.graph
    opset = default_opset(model)
    issues: List[GraphIssue] = []
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        issues.append(GraphIssue("(model)", "opset", f"opset {opset} is outside {OPSET_RANGE[0]}-{OPSET_RANGE[1]}, "
                                 "the range TensorRT 10 and 11 parse safely: re-export with --opset 18"))
    shapes = {}
    dynamic: Set[str] = set()
    batch_symbols = _batch_symbols(graph)
    if check_shapes:
        try:
            inferred = _symbolic_shapes(model)
            shapes = _shape_table(inferred)
            issues += _shape_issues(inferred, batch_symbols, dynamic)
        except Exception as e:  # inference itself failing is a finding, not a crash
            issues.append(GraphIssue("(model)", "shapes", f"symbolic shape inference failed: "
                                     f"{(str(e).splitlines() or [type(e).__name__])[0][:160]}"))
    else:
        shapes = _shape_table(model)
    constants = _constants(graph)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    topk: List[int] = []
    for node in graph.node:
        name = node.name or (node.output[0] if node.output else "?")
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            issues.append(GraphIssue(name, op, f"custom domain {node.domain!r}: TensorRT needs a plugin for it"))
            continue
        if op in FORBIDDEN_OPS:
            issues.append(GraphIssue(name, op, f"not allowed: {FORBIDDEN_OPS[op]}"))
            continue
        if op not in TRT_SUPPORTED_OPS:
            issues.append(GraphIssue(name, op, "not supported by TensorRT's ONNX parser"))
            continue
        for pos in CONSTANT_INPUTS.get(op, ()):
            if len(node.input) > pos and node.input[pos] and node.input[pos] not in constants:
                issues.append(GraphIssue(name, op, f"input {pos} ({node.input[pos]}) must be a constant "
                                         "(initializer or Constant) for TensorRT"))
        if op == "TopK":
            issues += _topk_issues(node, name, constants, shapes, topk)
        elif op in ("ScatterElements", "ScatterND") and _attr(node, "reduction", b"none") not in (b"none", "none"):
            issues.append(GraphIssue(name, op, f"reduction={_attr(node, 'reduction')!r}: TensorRT's scatter layer "
                                     f"has no reduction, so only {op} without one is allowed"))
        elif op == "LayerNormalization" and any(o and o in used for o in node.output[1:]):
            issues.append(GraphIssue(name, op, "uses Mean/InvStdDev outputs: TensorRT supports only output Y"))
    if expected_topk is not None and len(topk) != expected_topk:
        issues.append(GraphIssue("(model)", "TopK", f"{len(topk)} TopK nodes, expected {expected_topk} "
                                 "(one per idle block)"))
    counts = dict(sorted(Counter(n.op_type for n in graph.node).items(), key=lambda kv: (-kv[1], kv[0])))
    return GraphCheckReport(opset, counts, topk, issues, sorted(dynamic))


def _topk_issues(node, name, constants, shapes, topk) -> List[GraphIssue]:
    issues = []
    k_name = node.input[1] if len(node.input) > 1 else ""
    if k_name in constants:
        k = int(np.asarray(constants[k_name]).reshape(-1)[0])
        topk.append(k)
        if k > MAX_TOPK:
            issues.append(GraphIssue(name, "TopK", f"K = {k} > {MAX_TOPK}, TensorRT's TopK limit: "
                                     "lower the keep ratio or the image size"))
    else:
        topk.append(-1)  # the constant-input rule above already reported it
    if _attr(node, "sorted", 1) != 1:
        issues.append(GraphIssue(name, "TopK", "sorted=0: TensorRT needs sorted=1"))
    if _attr(node, "largest", 1) != 1:
        issues.append(GraphIssue(name, "TopK", "largest=0: IdleViT selects the largest scores"))
    axis = _attr(node, "axis", -1)
    typ = shapes.get(node.input[0])
    rank = len(typ.tensor_type.shape.dim) if typ is not None and typ.tensor_type.HasField("shape") else None
    if axis != -1 and (rank is None or axis != rank - 1):
        issues.append(GraphIssue(name, "TopK", f"axis={axis}: IdleViT's TopK runs on the last axis"))
    if typ is not None and typ.tensor_type.elem_type not in (0, onnx.TensorProto.FLOAT):
        dtype = onnx.TensorProto.DataType.Name(typ.tensor_type.elem_type)
        issues.append(GraphIssue(name, "TopK", f"scores are {dtype}: keep the selection path (scores, TopK) in fp32"))
    return issues


def _batch_symbols(graph: onnx.GraphProto) -> Set[str]:
    """The dynamic dims a graph may have: the image input's batch, and the length of each elastic keep input."""
    symbols = set()
    for i, value in enumerate(graph.input):
        dims = value.type.tensor_type.shape.dim
        if (i == 0 or (is_keep_input(value.name) and len(dims) == 1)) and dims and dims[0].HasField("dim_param"):
            symbols.add(dims[0].dim_param)
    return symbols


_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b(?!\s*\()")   # symbols, not functions such as Min( or floor(


def _shape_issues(model: onnx.ModelProto, batch_symbols: Set[str], dynamic: Set[str]) -> List[GraphIssue]:
    """Tensors whose shape is not static or a function of the batch symbol."""
    producer = {o: n for n in model.graph.node for o in n.output}
    issues, seen_nodes = [], set()
    for value in list(model.graph.value_info) + list(model.graph.output):
        t = value.type.tensor_type
        if not t.HasField("shape"):
            continue
        for dim in t.shape.dim:
            if dim.HasField("dim_value"):
                continue
            symbols = set(_IDENT.findall(dim.dim_param)) if dim.HasField("dim_param") else {"?"}
            dynamic |= symbols
            if symbols - batch_symbols:
                node = producer.get(value.name)
                key = node.name if node is not None else value.name
                if key not in seen_nodes:
                    seen_nodes.add(key)
                    issues.append(GraphIssue(key, node.op_type if node is not None else "tensor",
                                             f"output {value.name} has a data-dependent or unknown dim "
                                             f"{dim.dim_param or '?'} (only the batch axis and keep lengths "
                                             "may be dynamic)"))
                break
    for n, value in enumerate(model.graph.input):
        dims = value.type.tensor_type.shape.dim
        if n > 0 and is_keep_input(value.name) and len(dims) != 1:
            issues.append(GraphIssue(value.name, "input", f"keep input has {len(dims)} dims: it must be 1-D "
                                     "(its length is the stage's K)"))
        for i, dim in enumerate(dims):
            if dim.HasField("dim_value") or (i == 0 and dim.dim_param in batch_symbols):
                continue
            issues.append(GraphIssue(value.name, "input", f"dim {i} is dynamic: only the batch axis (and the length "
                                     "of an elastic keep_tokens.<s> input) may be"))
    return issues
