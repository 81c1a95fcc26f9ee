"""OnnxInfo: the one description of an exported file (image input, outputs, raw metadata, precision, sha256),
with the strict idle-export parse and the lenient key readers on top."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from idlevit.errors import UserError
from idlevit.fileio import file_sha256
from idlevit.onnx_file.info import onnx_precision, read_onnx_info
from idlevit.onnx_file.metadata import write_metadata, write_props
from tests.onnx_file.test_metadata import _meta


def _model(nodes=(), inputs=(("input", ["batch", 3, 8, 8]),), initializers=(), props=None):
    graph = helper.make_graph(
        list(nodes) or [helper.make_node("Identity", ["input"], ["logits"])], "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, 8, 8])], list(initializers))
    model = helper.make_model(graph)
    if props is not None:
        write_props(model, props)
    return model


def _save(model, tmp_path, name="m.onnx"):
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def test_describes_the_file(tmp_path):
    path = _save(write_metadata(_model(), _meta()), tmp_path)
    info = read_onnx_info(path)
    assert (info.input_name, info.input_shape, info.output_names) == ("input", ("batch", 3, 8, 8), ["logits"])
    assert info.precision == "fp32" and info.sha256 == file_sha256(path)
    assert info.metadata["model_name"] == "m" and info.export_metadata == _meta()
    assert info.keep_ratios == [1.0, 0.7] and info.value("keep_tokens") == [None, 137]


def test_lenient_readers_take_foreign_metadata_and_the_strict_parse_refuses_it(tmp_path):
    info = read_onnx_info(_save(_model(props={"keep_ratios": "0.7, 0.49", "author": "someone"}), tmp_path))
    assert info.list_value("keep_ratios") == ["0.7", "0.49"] and info.keep_ratios == [0.7, 0.49]
    assert info.value("missing", "author") == "someone" and info.value("missing") is None
    with pytest.raises(UserError, match="has no idlevit metadata"):
        info.export_metadata


def test_keep_inputs_of_an_elastic_file_are_not_the_image_input(tmp_path):
    model = _model(inputs=(("input", ["batch", 3, 8, 8]), ("keep_tokens.1", ["keep_tokens_1"])))
    assert read_onnx_info(_save(model, tmp_path)).input_name == "input"


@pytest.mark.parametrize("inputs,match", [
    ((("a", ["batch", 3, 8, 8]), ("b", ["batch", 3, 8, 8])), "has 2 inputs"),
    ((("input", ["batch", 64]),), r"expected \(batch, 3, H, W\)"),
])
def test_refuses_files_without_one_image_input(tmp_path, inputs, match):
    with pytest.raises(UserError, match=match):
        read_onnx_info(_save(_model(inputs=inputs), tmp_path))


def test_missing_and_unreadable_files_fail_in_one_line(tmp_path):
    with pytest.raises(UserError, match="not found: pass the path of a file written by idle-export"):
        read_onnx_info(str(tmp_path / "nope.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk\xff" * 10)
    with pytest.raises(UserError, match="not a readable ONNX model"):
        read_onnx_info(str(tmp_path / "junk.onnx"))


def test_precision_from_the_graph():
    half = numpy_helper.from_array(np.zeros(1, np.float16), "w")
    cast = helper.make_node("Cast", ["input"], ["logits"], to=TensorProto.FLOAT16)
    qdq = [helper.make_node("QuantizeLinear", ["input", "s"], ["q"]),
           helper.make_node("DequantizeLinear", ["q", "s"], ["logits"])]
    assert onnx_precision(_model()) == "fp32"
    assert onnx_precision(_model(initializers=[half])) == "fp16"
    assert onnx_precision(_model([cast])) == "fp16"
    assert onnx_precision(_model(qdq)) == "int8"
