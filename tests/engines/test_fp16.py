import numpy as np
import onnx
import pytest

from idlevit.engines.fp16 import convert_to_fp16, write_fp16_onnx
from idlevit.onnx_file.info import read_onnx_info
from idlevit.errors import UserError
from tests.engines.parity_utils import ort_parity


def _input_types(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return types


@pytest.fixture(scope="module")
def fp16_onnx(tiny_onnx, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fp16") / "tiny.fp16.onnx")
    return out, write_fp16_onnx(tiny_onnx[0], out, backend="onnxconverter")


def test_fp16_keeps_io_selection_path_and_layernorm_fp32(fp16_onnx):
    path, result = fp16_onnx
    model = onnx.load(path)
    info = read_onnx_info(path)
    assert info.precision == "fp16" and result.backend == "onnxconverter"
    assert info.metadata["precision"] == "fp16" and info.keep_ratios == [1.0, 1.0, 0.5, 0.25, 0.125, 0.125]
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in list(model.graph.input) + list(model.graph.output))
    types = _input_types(model)
    kept = set(result.fp32_nodes)
    checked = 0
    for node in model.graph.node:
        if node.name in kept and node.op_type in ("TopK", "MatMul", "LayerNormalization", "Div"):
            float_ins = [t for t in node.input if types.get(t) in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
            assert all(types[t] == onnx.TensorProto.FLOAT for t in float_ins), node.name
            checked += 1
    assert checked >= 4 * 4 + 13  # 4 idle blocks (TopK, Div, 2 MatMuls) and 13 LayerNorms
    converted = [n for n in model.graph.node if n.op_type == "MatMul" and n.name not in kept]
    assert converted and all(types[n.input[0]] == onnx.TensorProto.FLOAT16 for n in converted)


def test_fp16_onnx_passes_the_tensorrt_graph_check(fp16_onnx):
    from idlevit.export.graph_checks import check_tensorrt_compat
    report = check_tensorrt_compat(fp16_onnx[0], expected_topk=4)  # includes: every TopK input is fp32
    assert report.ok, report.issues


def test_fp16_parity_on_onnxruntime_cpu(tiny_onnx, fp16_onnx):
    x = np.random.RandomState(1).randn(16, 3, 64, 64).astype(np.float32)
    rep = ort_parity(tiny_onnx[0], fp16_onnx[0], x)
    cosine, top1, selection = rep.cosine_min, rep.top1_agreement, rep.selection_per_block
    assert cosine >= 0.999 and top1 >= 0.96 and len(selection) == 4
    assert min(selection) >= 0.95, selection


def test_fp16_refuses_bad_requests(tiny_onnx, fp16_onnx):
    with pytest.raises(UserError, match="already fp16"):
        convert_to_fp16(fp16_onnx[0])
    with pytest.raises(UserError, match="unknown FP16 backend"):
        convert_to_fp16(tiny_onnx[0], backend="tensorrt")
    try:  # ModelOpt is not installed in CI; asking for it names the extra
        import modelopt  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"pip install 'idlevit\[quant\]'"):
            convert_to_fp16(tiny_onnx[0], backend="modelopt")


def test_fp16_of_an_elastic_file_stays_elastic_at_every_ratio(tmp_path_factory, tmp_path):
    from tests.onnx_cache import TEST_VIT_ELASTIC, export_config
    elastic = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    out = str(tmp_path / "elastic.fp16.onnx")
    write_fp16_onnx(elastic, out, backend="onnxconverter")
    assert read_onnx_info(out).metadata["elastic"] == "true"
    x = np.random.RandomState(0).randn(8, 3, 64, 64).astype(np.float32)
    for ratio in (1.0, 0.7, 0.5, 0.3):
        report = ort_parity(elastic, out, x, keep_ratio=ratio)
        assert report.cosine_mean >= 0.999 and report.top1_agreement >= 0.99, (ratio, report.rows())


def test_fp16_without_our_metadata_says_what_it_kept_fp32(tiny_onnx, tmp_path):
    model = onnx.load(tiny_onnx[0])
    del model.metadata_props[:]
    plain = str(tmp_path / "plain.onnx")
    onnx.save(model, plain)
    with pytest.warns(UserWarning, match=r"no idle-export metadata.*kept \d+ selection-path nodes behind 4 TopK "
                                         r"node\(s\) and the LayerNormalization nodes in fp32"):
        result = convert_to_fp16(plain, backend="onnxconverter")
    assert len(result.selection_nodes) > 0


def test_fp16_refuses_a_topk_count_that_contradicts_the_metadata(tiny_onnx, tmp_path):
    model = onnx.load(tiny_onnx[0])
    for prop in model.metadata_props:
        if prop.key == "keep_tokens":
            prop.value = prop.value.replace("null", "3", 1)     # one more idle block than TopK nodes
    wrong = str(tmp_path / "wrong.onnx")
    onnx.save(model, wrong)
    with pytest.raises(UserError, match="has 4 TopK nodes but its metadata lists 5 idle blocks"):
        convert_to_fp16(wrong, backend="onnxconverter")
