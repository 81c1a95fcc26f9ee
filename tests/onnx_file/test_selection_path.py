import onnx
from onnx import TensorProto, helper

from idlevit.onnx_file.selection_path import (TensorGraph, ensure_node_names, exclusive_ancestors,
                                            onnx_selection_nodes, onnx_tensor_graph)


def test_exclusive_ancestors_stops_at_the_branch_and_handles_diamonds():
    # 0: x -> a ; 1: a -> b ; 2: a -> c (other consumer: 5) ; 3: b -> d ; 4: (b, d) -> e [seed] ; 5: c -> out
    g = TensorGraph(inputs=[["x"], ["a"], ["a"], ["b"], ["b", "d"], ["c"]],
                    outputs=[["a"], ["b"], ["c"], ["d"], ["e"], ["out"]], graph_outputs={"out"})
    assert exclusive_ancestors(g, [4]) == {1, 3, 4}       # b feeds d and e (diamond): joins once both did
    g.inputs[2] = ["b"]                                     # now b also feeds the other branch
    assert exclusive_ancestors(g, [4]) == {3, 4}


def _toy_block():
    """norm -> (key matmul -> [score path, gather]) -> TopK -> gather: the IdleViT shape."""
    nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["xn"], name="norm"),
             helper.make_node("MatMul", ["xn", "wk"], ["k"], name="key"),
             helper.make_node("Slice", ["xn", "i0", "i1"], ["cls"], name="cls"),
             helper.make_node("MatMul", ["cls", "wq"], ["q"], name="query"),
             helper.make_node("MatMul", ["k", "q"], ["score"], name="score"),
             helper.make_node("TopK", ["score", "kk"], ["vals", "idx"], name=""),
             helper.make_node("GatherElements", ["k", "idx"], ["y"], name="gather")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph)


def test_onnx_selection_path_of_a_toy_block():
    model = _toy_block()
    assert onnx_selection_nodes(model) == ["cls", "query", "score", "TopK_5"]  # graph order; unnamed TopK named
    assert all(n.name for n in model.graph.node)


def test_no_topk_no_path():
    model = _toy_block()
    del model.graph.node[5:]
    assert onnx_selection_nodes(model) == []


def test_selection_path_of_exported_idlevit(tiny_onnx):
    model = onnx.load(tiny_onnx[0])
    path = set(onnx_selection_nodes(model))
    nodes = {n.name: n for n in model.graph.node}
    ops = [nodes[n].op_type for n in path]
    # per idle block: the [CLS] query (a Gemm: one row per image), the query folded through the key weights and
    # the scores (the key-bias term and the 1/H, which change no ranking, are left out); norm1 of all tokens
    # feeds only the scores (the selected rows are normed again inside the block)
    assert ops.count("TopK") == 4 and ops.count("LayerNormalization") == 4
    assert ops.count("Gemm") == 4 and ops.count("MatMul") == 8 and "Div" not in ops
    assert "GatherElements" not in ops
    consumers = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, set()).add(n.name)
    for name in path - {n for n in path if nodes[n].op_type == "TopK"}:
        for t in nodes[name].output:   # every path node feeds only the path
            assert consumers.get(t, set()) <= path, name
    # the branch points: producers outside the path that feed it also feed something else
    feeders = {n.name for n in model.graph.node if n.name not in path
               and any(c in path for t in n.output for c in consumers.get(t, ()))}
    for name in feeders:
        assert any(c not in path for t in nodes[name].output for c in consumers.get(t, ())), name
    assert len(feeders) == 4   # the residual stream entering each idle block: also gathered and merged

    def feeds_a_row_gather(name, hops=2):  # through the reshape to (B*N, C) rows
        readers = [nodes[c] for t in nodes[name].output for c in consumers.get(t, ())]
        return any(r.op_type == "Gather" or (hops and r.op_type == "Reshape" and feeds_a_row_gather(r.name, hops - 1))
                   for r in readers)
    assert all(feeds_a_row_gather(n) for n in feeders)
    ensure_node_names(model)
    assert len(onnx_tensor_graph(model).inputs) == len(model.graph.node)
