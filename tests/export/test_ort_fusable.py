import functools
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from idlevit.export.ort_fusable import make_ort_fusable
from idlevit.export.simplify import DEFAULT_SIMPLIFIER, simplify_onnx


def _dynamo_gelu_graph() -> onnx.ModelProto:
    """MatMul -> GELU written as x * (0.5 * (1 + erf(x / sqrt 2))), the dynamo exporter's order."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 16], rng.standard_normal((8, 16)).astype(np.float32).ravel())
    consts = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
              (("root2", 1.4142135), ("one", 1.0), ("half", 0.5))]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Div", ["h", "root2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["half", "a"], ["m"]),
             helper.make_node("Mul", ["h", "m"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])], [w] + consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _ort_ops_and_output(model: onnx.ModelProto, x, tmp_path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": x})[0]
    return {n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node}, out


def test_dynamo_gelu_becomes_an_ort_gelu_and_stays_standard_onnx(tmp_path):
    model = _dynamo_gelu_graph()
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    before_ops, before = _ort_ops_and_output(model, x, tmp_path)
    rewritten = make_ort_fusable(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert {n.domain for n in rewritten.graph.node} <= {""}
    after_ops, after = _ort_ops_and_output(rewritten, x, tmp_path)
    assert "Erf" in before_ops and "Gelu" not in before_ops
    assert "Gelu" in after_ops and "Erf" not in after_ops
    np.testing.assert_allclose(after, before, atol=1e-6)


class _Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def _dynamo_attention_graph() -> onnx.ModelProto:
    return onnx.load_from_string(_dynamo_attention_bytes())


@functools.lru_cache(maxsize=1)
def _dynamo_attention_bytes() -> bytes:
    """SDPA as the dynamo exporter writes it and our simplifier leaves it (as in `export_onnx`): k^T as
    Reshape -> Transpose -> Reshape."""
    qkv = tuple(torch.randn(2, 3, 5, 4) for _ in range(3))
    batch = torch.export.Dim.AUTO   # not one named Dim on three inputs: torch 2.9.0 calls that two definitions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Attention(), qkv, dynamo=True, input_names=["q", "k", "v"],
                                    dynamic_shapes=({0: batch}, {0: batch}, {0: batch}), opset_version=18)
    return simplify_onnx(program.model_proto, DEFAULT_SIMPLIFIER)[0].SerializeToString()


def _perms(model: onnx.ModelProto):
    return [list(onnx.helper.get_attribute_value(a)) for n in model.graph.node if n.op_type == "Transpose"
            for a in n.attribute if a.name == "perm"]


def test_reshaped_key_transpose_becomes_one_transpose_with_the_same_output(tmp_path):
    import onnxruntime as ort
    model = _dynamo_attention_graph()
    assert _perms(model) == [[0, 2, 1]]                # the flattened 3-D transpose between two Reshapes
    rewritten = make_ort_fusable(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert _perms(rewritten) == [[0, 1, 3, 2]]
    assert {n.op_type for n in rewritten.graph.node}.isdisjoint({"Shape", "Concat"})
    feeds = {name: np.random.default_rng(i).standard_normal((3, 3, 5, 4)).astype(np.float32)
             for i, name in enumerate("qkv")}
    outs = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            for m in (model, rewritten)]
    np.testing.assert_array_equal(outs[1], outs[0])


def test_a_reshape_that_is_not_a_transpose_is_left_alone():
    """Reshape back to the *unswapped* dims reorders elements differently from a Transpose: no rewrite."""
    model = _dynamo_attention_graph()
    last_reshape = [n for n in model.graph.node if n.op_type == "Reshape"][-1]
    shape = next((i for i in model.graph.initializer if i.name == last_reshape.input[1]), None)
    if shape is not None:
        dims = numpy_helper.to_array(shape).copy()
        dims[-2:] = dims[-2:][::-1]
        shape.CopyFrom(numpy_helper.from_array(dims, shape.name))
    else:  # older exporters (torch 2.9) concatenate the target shape from one-element pieces: swap the last two
        concat = next(n for n in model.graph.node if last_reshape.input[1] in n.output)
        assert concat.op_type == "Concat", concat.op_type
        concat.input[-2], concat.input[-1] = concat.input[-1], concat.input[-2]
    assert _perms(make_ort_fusable(model)) == [[0, 2, 1]]
