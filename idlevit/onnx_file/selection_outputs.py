"""Expose each TopK's indices as extra graph outputs, so any backend can report which tokens it selected.

Works on every ONNX file we make (fp32 export, fp16/int8 conversions): the indices output of
the i-th TopK (graph order = block order, since each block consumes the previous one) becomes
graph output `topk_indices.<i>`, shape (batch, K), int64, 0-based over the image tokens
(the PyTorch indices minus 1 with [CLS] dropped).
"""
from __future__ import annotations

import copy
from typing import List, Tuple

import numpy as np
import onnx
from onnx import helper

from .selection_path import topk_positions

SELECTION_PREFIX = "topk_indices."


def selection_output_name(i: int) -> str:
    return f"{SELECTION_PREFIX}{i}"


def is_selection_output(name: str) -> bool:
    return name.startswith(SELECTION_PREFIX)


def topk_nodes(model: onnx.ModelProto) -> List[onnx.NodeProto]:
    """TopK nodes in graph (topological) order."""
    return [model.graph.node[i] for i in topk_positions(model)]


def _batch_dim(model: onnx.ModelProto):
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    if dims and dims[0].HasField("dim_param"):
        return dims[0].dim_param
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None


def _k_value(model: onnx.ModelProto, name: str):
    for init in model.graph.initializer:
        if init.name == name:
            return int(np.asarray(onnx.numpy_helper.to_array(init)).reshape(-1)[0])
    return None


def add_selection_outputs(model: onnx.ModelProto) -> Tuple[onnx.ModelProto, List[str]]:
    """A copy of `model` with `topk_indices.<i>` outputs added (idempotent). Returns (model, names)."""
    model = copy.deepcopy(model)
    existing = {o.name for o in model.graph.output}
    batch = _batch_dim(model)
    names = []
    for i, node in enumerate(topk_nodes(model)):
        name = selection_output_name(i)
        names.append(name)
        if name in existing:
            continue
        indices, width = node.output[1], _k_value(model, node.input[1])
        kept = _elastic_slice(model, indices)
        if kept is not None:  # elastic file: TopK sorts every token, the Slice after it keeps the first K
            indices, width = kept.output[0], None
        # an Identity keeps the TopK tensor's own name (and its consumers) untouched
        model.graph.node.append(helper.make_node("Identity", [indices], [name], name=f"expose_{name}"))
        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [batch, width]))
    return model, names


def _elastic_slice(model: onnx.ModelProto, indices: str):
    """The Slice that takes the first K of a TopK's indices with a run-time end (elastic files), or None."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    for node in model.graph.node:
        if node.op_type == "Slice" and node.input[0] == indices and len(node.input) > 2 \
                and node.input[2] not in constants:
            return node
    return None


def selection_from_torch(indices) -> List[np.ndarray]:
    """PyTorch `forward_with_selection` indices (B, K+1) with [CLS] first -> the ONNX convention (B, K)."""
    return [np.asarray(idx[:, 1:].cpu().numpy() - 1, dtype=np.int64) for idx in indices]
