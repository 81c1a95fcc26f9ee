"""Reading and writing ONNX files: one-line errors, atomic saves."""
import os

import onnx
import pytest
from onnx import helper

from idlevit.errors import UserError
from idlevit.onnx_file.io import check_onnx_file, load_onnx, save_onnx


def _model():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


def test_save_then_load_round_trips_and_leaves_no_temp_file(tmp_path):
    path = str(tmp_path / "m.onnx")
    save_onnx(_model(), path)
    assert os.listdir(tmp_path) == ["m.onnx"]
    assert [n.op_type for n in load_onnx(path).graph.node] == ["Identity"]


def test_one_not_found_message(tmp_path):
    for call in (check_onnx_file, load_onnx):
        with pytest.raises(UserError, match=r"^ONNX file .*nope.onnx not found: pass the path of a file written by "
                                            r"idle-export$"):
            call(str(tmp_path / "nope.onnx"))
