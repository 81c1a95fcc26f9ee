"""IdleViT-LV-ViT-S r = 0.7 through the ONNX path: export (TensorRT op check included), metadata, ORT parity."""
import json

import onnx
import pytest
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from idlevit.cli.runtime import main
from idlevit.export.graph_checks import check_tensorrt_compat
from idlevit.onnx_file.metadata import read_metadata
from idlevit.runtime.inputs import write_bundled_photos
from tests.onnx_cache import LVVIT_S_07, export_config


@pytest.fixture(scope="module")
def lvvit_s_onnx(tmp_path_factory):
    return export_config(tmp_path_factory, LVVIT_S_07)


def test_export_passes_trt_check_with_lvvit_ops(lvvit_s_onnx):
    report = check_tensorrt_compat(lvvit_s_onnx, expected_topk=12)
    assert report.ok, report.summary()
    ops = [n.op_type for n in onnx.load(lvvit_s_onnx, load_external_data=False).graph.node]
    assert ops.count("TopK") == 12 and ops.count("Conv") == 4     # conv stem (BN folded) + projection
    assert ops.count("ReduceMax") == 1                           # the dense head's max over image tokens


def test_metadata_records_lvvit_schedule_and_eval_transform(lvvit_s_onnx):
    meta = read_metadata(lvvit_s_onnx)
    assert meta.model_name == "idlevit_lvvit_s" and meta.seed == 0
    assert meta.keep_tokens == [None] * 4 + [137] * 4 + [96] * 4 + [67] * 4
    assert meta.data_config["crop_pct"] == 0.9 and meta.data_config["interpolation"] == "bicubic"
    assert tuple(meta.mean) == pytest.approx(IMAGENET_DEFAULT_MEAN) and tuple(meta.std) == pytest.approx(IMAGENET_DEFAULT_STD)


def test_parity_on_ort_against_rebuilt_reference(lvvit_s_onnx, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_bundled_photos(str(photos), ["astronaut", "coffee", "chelsea"])
    assert main(["parity", "--onnx", lvvit_s_onnx, "--images", str(photos), "-b", "2", "-n", "1",
                 "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 4 and report["max_abs_diff"] <= 1e-4 and report["top1_agreement"] == 1.0
    assert len(report["selection_per_block"]) == 12 and min(report["selection_per_block"]) == 1.0
