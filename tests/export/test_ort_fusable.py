import numpy as np
import onnx
from onnx import TensorProto, helper

from idlevit.export.ort_fusable import make_ort_fusable


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
