"""The engine build chain on CPU: the plan per TensorRT version, and the calls it makes (fake tensorrt)."""
import json
import sys

import onnx
import pytest
from packaging.version import Version

from idlevit.engines import build as build_mod
from idlevit.engines.batch_profile import BatchProfile, KeepRange
from idlevit.engines.build import BuildRequest, build_engine, derived_onnx_path, plan_build
from idlevit.engines.gpu import GpuInfo
from idlevit.onnx_file.info import OnnxInfo, read_onnx_info
from idlevit.onnx_file.selection_path import onnx_selection_nodes
from idlevit.errors import UserError
from tests.engines.fake_tensorrt import make_fake_tensorrt
from tests.onnx_cache import TEST_VIT_ELASTIC, export_config

GPU = GpuInfo("NVIDIA L4", "8.9")


def _info(precision="fp32", path="m.onnx"):
    return OnnxInfo(path, "0" * 64, "input", ("batch", 3, 64, 64), ["logits"], {}, precision)


@pytest.mark.parametrize("version,strongly,fp16_flag,make", [("10.13.3.9", False, True, None),
                                                               ("11.4.0.106", True, False, "fp16")])
def test_plan_fp16(version, strongly, fp16_flag, make):
    plan = plan_build(BuildRequest("m.onnx", "out/m.engine", fp16=True), _info(), Version(version))
    assert (plan.strongly_typed, plan.fp16_flag, plan.pin_fp32, plan.make_onnx) == (strongly, fp16_flag, fp16_flag, make)
    assert plan.onnx == ("out/m.fp16.onnx" if make else "m.onnx") and plan.precision == "fp16"


@pytest.mark.parametrize("version", ["10.13.3.9", "11.4.0.106"])
def test_plan_int8_uses_qdq_onnx_and_no_calibrator(version):
    trt10 = version.startswith("10")
    plan = plan_build(BuildRequest("m.onnx", "m.engine", int8=True, calib="c.npz"), _info(), Version(version))
    assert plan.make_onnx == "int8" and plan.onnx == derived_onnx_path("m.engine", "int8") == "m.qdq.onnx"
    assert plan.int8_flag is trt10 and plan.strongly_typed is not trt10 and plan.precision == "int8"
    given = plan_build(BuildRequest("m.onnx", "m.engine", int8=True, qdq="q.onnx"), _info(), Version(version))
    assert given.make_onnx is None and given.onnx == "q.onnx"


def test_plan_errors_and_passthrough():
    with pytest.raises(UserError, match="--calib calib.npz"):
        plan_build(BuildRequest("m.onnx", "m.engine", int8=True), _info(), Version("10.13"))
    with pytest.raises(UserError, match="build it with --int8"):
        plan_build(BuildRequest("m.onnx", "m.engine"), _info("int8"), Version("10.13"))
    mixed = plan_build(BuildRequest("m.onnx", "m.engine", fp16=True), _info("fp16"), Version("10.13"))
    assert mixed.strongly_typed and not mixed.fp16_flag and mixed.make_onnx is None
    assert plan_build(BuildRequest("m.onnx", "m.engine"), _info(), Version("11.4")).strongly_typed
    assert not plan_build(BuildRequest("m.onnx", "m.engine"), _info(), Version("10.13")).strongly_typed


@pytest.fixture
def fake_trt(monkeypatch, request):
    trt = make_fake_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(build_mod, "current_gpu", lambda: GPU)
    return trt


@pytest.mark.parametrize("fake_trt", ["10.13.3.9"], indirect=True)
def test_trt10_fp16_sets_flag_and_pins_selection_path(fake_trt, tiny_onnx, tmp_path):
    onnx_path, model = tiny_onnx
    engine = str(tmp_path / "m.engine")
    cache = str(tmp_path / "timing.cache")
    sidecar = build_engine(BuildRequest(onnx_path, engine, fp16=True, profile=BatchProfile(1, 4, 8),
                                        workspace=1 << 30, timing_cache=cache))
    trt, config, network = fake_trt, fake_trt.config, fake_trt.network
    assert network.flags == 0  # explicit batch is the default; weakly typed
    assert {trt.BuilderFlag.FP16, trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS} <= config.flags
    assert trt.BuilderFlag.INT8 not in config.flags
    assert ("set_shape", "input", (1, 3, 64, 64), (4, 3, 64, 64), (8, 3, 64, 64)) in trt.calls
    assert ("workspace", trt.MemoryPoolType.WORKSPACE, 1 << 30) in trt.calls
    pinned = {l.name for l in network.layers if l.precision == trt.DataType.FLOAT}
    selection = set(onnx_selection_nodes(onnx.load(onnx_path)))
    norms = {l.name for l in network.layers if l.type == trt.LayerType.NORMALIZATION}
    assert len(selection) == 4 * 9 and norms  # 4 idle blocks: norm1, [CLS] query, folded query, scores, TopK, ...
    # every float-producing selection layer and every LayerNorm is pinned, nothing else
    float_selection = {l.name for l in network.layers if l.name in selection
                       and any(o.dtype == trt.DataType.FLOAT for o in l._outs)}
    assert pinned == float_selection | norms
    topk = [l for l in network.layers if l.type == trt.LayerType.TOPK]
    assert len(topk) == 4 and all(l.pinned == {0: trt.DataType.FLOAT} for l in topk)  # indices output untouched
    with open(engine, "rb") as f:
        assert f.read().startswith(b"fake-plan")
    saved = json.load(open(engine + ".json"))
    assert saved["tensorrt_version"] == "10.13.3.9" and saved["gpu_name"] == GPU.name
    assert saved["precision"] == "fp16" and not saved["strongly_typed"]
    assert saved["keep_ratios"] == model.keep_ratios and saved["onnx_sha256"] == read_onnx_info(onnx_path).sha256
    assert saved["profile"]["input"]["max"] == [8, 3, 64, 64] and sidecar.compute_capability == "8.9"
    assert open(cache, "rb").read() == b"fresh-cache+tuned"


@pytest.mark.parametrize("fake_trt", ["11.4.0.106"], indirect=True)
def test_trt11_fp16_builds_mixed_onnx_strongly_typed(fake_trt, tiny_onnx, tmp_path):
    onnx_path, _ = tiny_onnx
    engine = str(tmp_path / "m.engine")
    sidecar = build_engine(BuildRequest(onnx_path, engine, fp16=True, version_compatible=True))
    trt = fake_trt
    assert trt.network.flags == 1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert trt.config.flags == {trt.BuilderFlag.VERSION_COMPATIBLE}
    fp16_onnx = str(tmp_path / "m.fp16.onnx")
    assert ("parse", fp16_onnx) in [(c[0], c[1]) for c in trt.calls if c[0] == "parse"]
    assert read_onnx_info(fp16_onnx).precision == "fp16"
    assert sidecar.strongly_typed and sidecar.version_compatible and sidecar.onnx_file == fp16_onnx
    assert sidecar.source_onnx_sha256 == read_onnx_info(onnx_path).sha256 != sidecar.onnx_sha256


@pytest.mark.parametrize("fake_trt", ["10.13.3.9", "11.4.0.106"], indirect=True)
def test_int8_from_calibration(fake_trt, tiny_onnx, tiny_calib, tmp_path):
    onnx_path, _ = tiny_onnx
    engine = str(tmp_path / "m.engine")
    sidecar = build_engine(BuildRequest(onnx_path, engine, int8=True, calib=tiny_calib))
    trt = fake_trt
    assert read_onnx_info(str(tmp_path / "m.qdq.onnx")).precision == "int8" and sidecar.precision == "int8"
    if trt.__version__.startswith("10"):
        assert trt.config.flags == {trt.BuilderFlag.INT8} and trt.network.flags == 0
    else:
        assert trt.config.flags == set() and trt.network.flags == 1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED


@pytest.mark.parametrize("fake_trt", ["10.13.3.9"], indirect=True)
def test_failed_build_leaves_nothing(fake_trt, tiny_onnx, tmp_path, monkeypatch):
    onnx_path, _ = tiny_onnx
    monkeypatch.setattr(fake_trt.Builder, "build_serialized_network", lambda self, n, c: None)
    with pytest.raises(UserError, match="could not build"):
        build_engine(BuildRequest(onnx_path, str(tmp_path / "m.engine")))
    assert list(tmp_path.iterdir()) == []


def test_without_tensorrt_the_hint_is_given(monkeypatch, tiny_onnx, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"TensorRT is not installed: pip install 'idlevit\[trt\]'"):
        build_engine(BuildRequest(tiny_onnx[0], str(tmp_path / "m.engine")))


@pytest.mark.parametrize("fake_trt", ["10.13.3.9", "11.4.0.106"], indirect=True)
def test_elastic_engine_has_one_profile_per_keep_range(fake_trt, tmp_path_factory, tmp_path):
    onnx_path = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    engine = str(tmp_path / "m.engine")
    sidecar = build_engine(BuildRequest(onnx_path, engine, profile=BatchProfile(1, 4, 8),
                                        keep_ranges=[KeepRange(0.3, 0.5, 0.7), KeepRange(0.7, 0.9, 1.0)]))
    calls = fake_trt.calls
    assert calls.count(("add_profile",)) == 2
    # 16 image tokens: stage s keeps floor(16 * r**s), at least 1
    assert ("set_shape", "keep_tokens.1", (4,), (8,), (11,)) in calls
    assert ("set_shape", "keep_tokens.3", (1,), (2,), (5,)) in calls
    assert ("set_shape", "keep_tokens.2", (7,), (12,), (16,)) in calls
    assert calls.count(("set_shape", "input", (1, 3, 64, 64), (4, 3, 64, 64), (8, 3, 64, 64))) == 2
    saved = json.load(open(engine + ".json"))
    assert saved["keep_ranges"] == [[0.3, 0.5, 0.7], [0.7, 0.9, 1.0]] and len(saved["profiles"]) == 2
    assert saved["profiles"][1]["keep_tokens.2"] == {"min": [7], "opt": [12], "max": [16]}
    assert saved["profile"] == saved["profiles"][0] and sidecar.onnx_metadata["elastic"] == "true"


@pytest.mark.parametrize("fake_trt", ["11.4.0.106"], indirect=True)
def test_elastic_engine_default_profile_covers_every_k(fake_trt, tmp_path_factory, tmp_path):
    onnx_path = export_config(tmp_path_factory, TEST_VIT_ELASTIC)
    sidecar = build_engine(BuildRequest(onnx_path, str(tmp_path / "m.engine"), fp16=True))
    assert sidecar.profiles[0]["keep_tokens.1"] == {"min": [1], "opt": [8], "max": [16]}
    assert read_onnx_info(sidecar.onnx_file).metadata["elastic"] == "true"  # the FP16 ONNX stays elastic


@pytest.mark.parametrize("fake_trt", ["10.13.3.9"], indirect=True)
def test_keep_range_needs_an_elastic_file_and_three_ratios(fake_trt, tiny_onnx, tmp_path):
    with pytest.raises(UserError, match="fixed keep ratio: --keep-range needs an elastic file"):
        build_engine(BuildRequest(tiny_onnx[0], str(tmp_path / "m.engine"), keep_ranges=[KeepRange(0.3, 0.5, 0.7)]))
    for text in ("0.3:0.7", "a:b:c", "0.7:0.5:0.9", "0:0.5:1"):
        with pytest.raises(UserError, match="--keep-range"):
            KeepRange.parse(text)
    assert list(tmp_path.iterdir()) == []
