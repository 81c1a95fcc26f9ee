"""Find the token-selection path (scores -> TopK) in an ONNX graph (or any `TensorGraph`).

The path is walked back from each TopK and ends where it branches off the rest of the
model: a producer joins the path only when every consumer of its outputs is already on
it. In IdleViT that is norm1 of all tokens, the [CLS] query, the query folded through
the key weights, the score MatMul and TopK; the residual stream, which the block also
gathers rows from, stays outside.
GTP-ViT scores tokens from every attention map and moves features along its token graph, so in a GTP file
the path also holds every MatMul of two activations but attention-times-V (the attention logits, the
similarity of the semantic graph, the propagation of tokens into their neighbours) with what only they read.
FP16 conversion keeps these nodes fp32 and INT8 quantization leaves them alone, because
near-ties in lower precision change which tokens are selected.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Set


@dataclass
class TensorGraph:
    """Any dataflow graph as per-node input/output tensor names (ONNX nodes, TensorRT layers)."""
    inputs: List[List[str]]
    outputs: List[List[str]]
    graph_outputs: Set[str]

    def producers(self) -> Dict[str, int]:
        return {t: i for i, outs in enumerate(self.outputs) for t in outs}

    def consumers(self) -> Dict[str, Set[int]]:
        found: Dict[str, Set[int]] = {}
        for i, ins in enumerate(self.inputs):
            for t in ins:
                found.setdefault(t, set()).add(i)
        return found


def exclusive_ancestors(graph: TensorGraph, seeds: Iterable[int]) -> Set[int]:
    """`seeds` plus every upstream node whose outputs feed only nodes already in the set.

    A producer is looked at again each time one of its consumers joins, so diamonds
    (one tensor read by two path nodes) are found whatever the order.
    """
    producers, consumers = graph.producers(), graph.consumers()
    path = set(seeds)
    frontier = list(path)
    while frontier:
        candidates = {producers[t] for n in frontier for t in graph.inputs[n] if t in producers}
        frontier = []
        for p in sorted(candidates - path):
            outs = graph.outputs[p]
            if any(t in graph.graph_outputs for t in outs):
                continue
            if all(consumers.get(t, set()) <= path for t in outs):
                path.add(p)
                frontier.append(p)
    return path


def topk_positions(model) -> List[int]:
    """Positions of the ONNX graph's TopK nodes in graph (topological) order: one per idle block."""
    return [i for i, n in enumerate(model.graph.node) if n.op_type == "TopK"]


def onnx_tensor_graph(model) -> TensorGraph:
    return TensorGraph(inputs=[[t for t in n.input if t] for n in model.graph.node],
                       outputs=[[t for t in n.output if t] for n in model.graph.node],
                       graph_outputs={o.name for o in model.graph.output})


def ensure_node_names(model) -> None:
    """Give unnamed nodes a unique name: block/exclude lists refer to nodes by name."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def onnx_selection_nodes(model) -> List[str]:
    """Names of the ONNX nodes on the selection path of every idle block (empty for r = 1); for a GTP-ViT file
    (metadata method=gtp) also its scoring and graph MatMuls."""
    from .metadata import metadata_value, props_of
    ensure_node_names(model)
    nodes = model.graph.node
    seeds = topk_positions(model)
    if metadata_value(props_of(model), "method") == "gtp":
        seeds += activation_matmuls(model)
    if not seeds:
        return []
    return [nodes[i].name for i in sorted(exclusive_ancestors(onnx_tensor_graph(model), seeds))]


def activation_matmuls(model) -> List[int]:
    """Positions of the MatMuls whose inputs are both computed (no weight, no constant) and that do not read a
    Softmax output: the GEMMs a model computes between its own activations, attention-times-V excepted."""
    nodes = model.graph.node
    fixed = {t.name for t in model.graph.initializer} | {t for n in nodes if n.op_type == "Constant" for t in n.output}
    softmax_out = {t for n in nodes if n.op_type == "Softmax" for t in n.output}
    return [i for i, n in enumerate(nodes) if n.op_type == "MatMul"
            and not set(n.input) & (fixed | softmax_out)]


def onnx_nodes_of_types(model, op_types: Sequence[str]) -> List[str]:
    ensure_node_names(model)
    return [n.name for n in model.graph.node if n.op_type in set(op_types)]
