"""The token-selection path in a parsed TensorRT network: the layers pinned to fp32 under TensorRT 10's FP16 flag.

The walk is the ONNX one (`onnx_file.selection_path.exclusive_ancestors`) over the network's layers.
"""
from __future__ import annotations

from typing import List

from ..onnx_file.selection_path import TensorGraph, exclusive_ancestors


def trt_network_graph(network) -> TensorGraph:
    """TensorGraph of a parsed TensorRT INetworkDefinition (layers in network order)."""
    inputs, outputs = [], []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        ins = [layer.get_input(j) for j in range(layer.num_inputs)]
        inputs.append([t.name for t in ins if t is not None])
        outputs.append([layer.get_output(j).name for j in range(layer.num_outputs)])
    return TensorGraph(inputs, outputs, {network.get_output(i).name for i in range(network.num_outputs)})


def trt_selection_layers(trt, network) -> List[int]:
    """Indices of the TensorRT layers on the selection path (TopK layers and what feeds only them)."""
    seeds = [i for i in range(network.num_layers) if network.get_layer(i).type == trt.LayerType.TOPK]
    if not seeds:
        return []
    return sorted(exclusive_ancestors(trt_network_graph(network), seeds))
