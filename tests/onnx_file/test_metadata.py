"""metadata_props round trip and one-line errors for files without (or with broken) idlevit metadata."""
import pytest
from onnx import helper

from idlevit.errors import UserError
from idlevit.onnx_file.io import load_onnx
from idlevit.onnx_file.metadata import ExportMetadata, props_of, read_metadata, write_metadata


def _meta(**kw):
    base = dict(model_name="m", keep_ratios=[1.0, 0.7], keep_tokens=[None, 137], img_size=224, num_classes=1000,
                mean=[0.5] * 3, std=[0.5] * 3, data_config={"input_size": [3, 224, 224], "crop_pct": 0.9},
                exporter="dynamo", torch_version="2.x", opset=18, idlevit_version="0.1.0", keep_ratio=0.7,
                ckpt_sha256="ab" * 32, seed=None, extra={"custom": "yes"})
    base.update(kw)
    return ExportMetadata(**base)


def _empty_model():
    graph = helper.make_graph([], "g", [], [])
    return helper.make_model(graph)


def test_round_trip_through_metadata_props():
    meta = _meta()
    model = write_metadata(_empty_model(), meta)
    props = props_of(model)
    assert props["model_name"] == "m" and props["ckpt_sha256"] == "ab" * 32 and props["custom"] == "yes"
    assert props["keep_tokens"] == "[null, 137]"
    assert read_metadata(model) == meta
    assert meta.num_topk == 1


def test_write_keeps_foreign_keys_and_overwrites_ours():
    model = _empty_model()
    model.metadata_props.add(key="author", value="someone")
    write_metadata(model, _meta(precision="fp32"))
    write_metadata(model, _meta(precision="fp16"))
    props = props_of(model)
    assert props["author"] == "someone" and props["precision"] == "fp16"
    assert len(model.metadata_props) == len(props)


def test_missing_metadata_is_a_user_error():
    with pytest.raises(UserError, match="has no idlevit metadata"):
        read_metadata(_empty_model())
    model = write_metadata(_empty_model(), _meta())
    keep = [p for p in model.metadata_props if p.key != "keep_tokens"]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    with pytest.raises(UserError, match="lacks idlevit metadata keep_tokens"):
        read_metadata(model)


def test_corrupt_metadata_and_files(tmp_path):
    model = write_metadata(_empty_model(), _meta())
    for p in model.metadata_props:
        if p.key == "keep_ratios":
            p.value = "[1.0, "
    with pytest.raises(UserError, match="corrupt idlevit metadata"):
        read_metadata(model)
    with pytest.raises(UserError, match="not found"):
        load_onnx(str(tmp_path / "nope.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf\xff" * 10)
    with pytest.raises(UserError, match="not a readable ONNX model"):
        load_onnx(str(junk))
