"""The TensorRT static op check on small hand-built graphs: each rule must catch its violation."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from idlevit.export.graph_checks import MAX_TOPK, check_tensorrt_compat


def _model(nodes, inits=(), opset=18, out_shape=("batch", 4), out_type=TensorProto.FLOAT, in_shape=("batch", 8),
           in_type=TensorProto.FLOAT, outputs=None):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", in_type, list(in_shape))],
        outputs or [helper.make_tensor_value_info("y", out_type, list(out_shape))],
        initializer=[numpy_helper.from_array(np.asarray(v), name) for name, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _topk(k=4, **attrs):
    return _model([helper.make_node("TopK", ["x", "k"], ["y", "i"], **attrs)], [("k", np.array([k], np.int64))],
                  outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", k]),
                           helper.make_tensor_value_info("i", TensorProto.INT64, ["batch", k])],
                  in_shape=("batch", max(k, 8)))


def _problems(model, **kw):
    report = check_tensorrt_compat(model, **kw)
    return report, " | ".join(map(str, report.issues))


def test_clean_topk_passes():
    report, text = _problems(_topk(axis=-1, largest=1, sorted=1), expected_topk=1)
    assert report.ok, text
    assert report.topk == [4]
    assert report.dynamic_dims == ["batch"]


@pytest.mark.parametrize("attrs,needle", [
    ({"sorted": 0}, "sorted=0"),
    ({"largest": 0}, "largest=0"),
    ({"axis": 0}, "axis=0"),
])
def test_topk_attribute_rules(attrs, needle):
    report, text = _problems(_topk(**attrs))
    assert not report.ok and needle in text


def test_topk_k_limit():
    report, text = _problems(_topk(k=MAX_TOPK + 1))
    assert not report.ok and f"K = {MAX_TOPK + 1} > {MAX_TOPK}" in text
    assert check_tensorrt_compat(_topk(k=MAX_TOPK)).ok


def test_topk_k_must_be_constant():
    k_from_data = _model([helper.make_node("Shape", ["x"], ["s"], start=1),
                          helper.make_node("TopK", ["x", "s"], ["y", "i"])],
                         outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])])
    report, text = _problems(k_from_data, check_shapes=False)
    assert not report.ok and "must be a constant" in text


def test_topk_on_fp16_scores_is_flagged():
    model = _model([helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
                    helper.make_node("TopK", ["h", "k"], ["y", "i"])], [("k", np.array([4], np.int64))],
                   out_type=TensorProto.FLOAT16)
    report, text = _problems(model)
    assert not report.ok and "FLOAT16" in text and "fp32" in text


def test_expected_topk_count():
    report, text = _problems(_topk(), expected_topk=9)
    assert not report.ok and "1 TopK nodes, expected 9" in text


def test_forbidden_ops():
    model = _model([helper.make_node("NonZero", ["x"], ["y"])], out_shape=(2, None), out_type=TensorProto.INT64)
    report, text = _problems(model)
    assert not report.ok and "NonZero" in text and "not allowed" in text


def test_data_dependent_shape_is_found_by_shape_inference():
    # NonZero -> Transpose: the check must also see the unknown dim flowing on
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Transpose", ["nz"], ["y"])]
    report, text = _problems(_model(nodes, out_shape=(None, 2), out_type=TensorProto.INT64))
    assert "data-dependent or unknown dim" in text


def test_scatter_reduction_is_rejected():
    def scatter_elements(**attrs):
        node = helper.make_node("ScatterElements", ["x", "idx", "upd"], ["y"], axis=1, **attrs)
        return _model([node], [("idx", np.zeros((2, 1), np.int64)), ("upd", np.zeros((2, 1), np.float32))],
                      in_shape=(2, 8), out_shape=(2, 8))

    def scatter_nd(**attrs):   # whole rows, as idle blocks put theirs back
        node = helper.make_node("ScatterND", ["x", "idx", "upd"], ["y"], **attrs)
        return _model([node], [("idx", np.zeros((1, 1), np.int64)), ("upd", np.zeros((1, 8), np.float32))],
                      in_shape=(2, 8), out_shape=(2, 8))
    for scatter in (scatter_elements, scatter_nd):
        assert check_tensorrt_compat(scatter()).ok and check_tensorrt_compat(scatter(reduction="none")).ok
        report, text = _problems(scatter(reduction="add"))
        assert not report.ok and "reduction" in text


def test_reduce_mean_axes_must_be_constant():
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
             helper.make_node("Sub", ["s", "one"], ["ax"]),
             helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=1)]
    report, text = _problems(_model(nodes, [("one", np.array([1], np.int64))], out_shape=("batch", 1)),
                             check_shapes=False)
    assert not report.ok and "ReduceMean" in text and "must be a constant" in text


def test_unsupported_op_custom_domain_and_opset():
    model = _model([helper.make_node("StringNormalizer", ["x"], ["y"])], opset=18)
    assert "not supported by TensorRT" in _problems(model, check_shapes=False)[1]
    custom = _model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")], out_shape=("batch", 8))
    custom.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "custom domain" in _problems(custom, check_shapes=False)[1]
    old = _model([helper.make_node("Relu", ["x"], ["y"])], opset=13, out_shape=("batch", 8))
    assert "opset 13 is outside 17-20" in _problems(old)[1]


def test_only_batch_may_be_dynamic_on_inputs():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], in_shape=("batch", "width"),
                   out_shape=("batch", "width"))
    report, text = _problems(model)
    assert not report.ok and "dim 1 is dynamic" in text


def test_layernorm_extra_outputs_are_rejected():
    ln = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y", "mean"], axis=-1)
    model = _model([ln], [("g", np.ones(8, np.float32)), ("b", np.zeros(8, np.float32))], out_shape=("batch", 8),
                   outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8]),
                            helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", 1])])
    report, text = _problems(model, check_shapes=False)
    assert not report.ok and "Mean/InvStdDev" in text


def test_report_json_and_summary():
    report = check_tensorrt_compat(_topk())
    js = report.to_json()
    assert js["ok"] and js["topk"] == [4] and js["op_counts"] == {"TopK": 1}
    assert report.summary().startswith("TensorRT op check: ok")


def test_failed_shape_inference_leaves_nothing_in_the_working_directory(tmp_path, monkeypatch):
    """ONNX Runtime saves sym_shape_infer_temp.onnx (+ its weights) into the CWD before it raises."""
    import os
    monkeypatch.chdir(tmp_path)
    model = _model([helper.make_node("Mystery", ["x"], ["m"], domain="custom.ops"),
                    helper.make_node("Relu", ["m"], ["y"])], out_shape=())
    model.opset_import.append(helper.make_opsetid("custom.ops", 1))
    report, problems = _problems(model)
    assert not report.ok and "symbolic shape inference failed" in problems, problems
    assert os.listdir(tmp_path) == [] and os.getcwd() == str(tmp_path)


def test_shape_start_end_feeds_range_on_every_onnx_runtime():
    """The dynamo exporter's Shape(start, end) -> Squeeze -> Range: ONNX Runtime's inference tool before 1.31
    ignored start/end and asserted in Range; the check must infer the same static dims on every release."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
             helper.make_node("Squeeze", ["s", "axes"], ["n"]),
             helper.make_node("Range", ["zero", "n", "one"], ["r"]),
             helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["x", "rf"], ["y"])]
    inits = [("axes", np.array([0], np.int64)), ("zero", np.array(0, np.int64)), ("one", np.array(1, np.int64))]
    report, text = _problems(_model(nodes, inits, out_shape=("batch", 8)))
    assert report.ok, text
    assert report.dynamic_dims == ["batch"]
