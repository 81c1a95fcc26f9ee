import json

import pytest

from idlevit.engines.gpu import GpuInfo
from idlevit.engines.sidecar import EngineSidecar, check_engine_compatible, read_sidecar, sidecar_path, write_sidecar
from idlevit.errors import UserError

H100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")


def _sidecar(**kw):
    base = dict(tensorrt_version="10.13.3.9", gpu_name=H100.name, compute_capability="9.0", precision="fp16",
                profile={"input": {"min": [1, 3, 224, 224], "opt": [32, 3, 224, 224], "max": [128, 3, 224, 224]}},
                onnx_sha256="ab" * 32, onnx_file="model.onnx", keep_ratios=[1.0, 0.7])
    base.update(kw)
    return EngineSidecar(**base)


def test_write_read_round_trip(tmp_path):
    engine = str(tmp_path / "m.engine")
    path = write_sidecar(_sidecar(), engine)
    assert path == sidecar_path(engine) == engine + ".json"
    assert read_sidecar(engine) == _sidecar()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("content,match", [(None, "is missing"), ("{not json", "not valid JSON"),
                                           ("[1, 2]", "not a JSON object"),
                                           ('{"tensorrt_version": "10.13"}', "lacks compute_capability"),
                                           ("BADVERSION", "TensorRT version"), ("BADPRECISION", "precision")])
def test_read_rejects_broken_sidecars(tmp_path, content, match):
    engine = str(tmp_path / "m.engine")
    if content == "BADVERSION":
        content = json.dumps({**_sidecar().to_json(), "tensorrt_version": "ten"})
    if content == "BADPRECISION":
        content = json.dumps({**_sidecar().to_json(), "precision": "int4"})
    if content is not None:
        (tmp_path / "m.engine.json").write_text(content)
    with pytest.raises(UserError, match=match) as err:
        read_sidecar(engine)
    assert "idle-trt-build" in str(err.value) and "\n" not in str(err.value)


def test_same_version_and_gpu_loads():
    check_engine_compatible(_sidecar(), "m.engine", "10.13.3.9", H100)


@pytest.mark.parametrize("runtime", ["10.13.3.10", "10.12.0.36", "11.4.0.106"])
def test_other_tensorrt_version_is_refused(runtime):
    with pytest.raises(UserError, match=f"built with TensorRT 10.13.3.9 but TensorRT {runtime}") as err:
        check_engine_compatible(_sidecar(), "m.engine", runtime, H100)
    assert "--version-compatible" in str(err.value)


def test_version_compatible_engines_load_on_later_versions_only():
    sidecar = _sidecar(version_compatible=True)
    check_engine_compatible(sidecar, "m.engine", "10.14.1.48", H100)
    check_engine_compatible(sidecar, "m.engine", "11.4.0.106", H100)
    with pytest.raises(UserError, match="same or a later version"):
        check_engine_compatible(sidecar, "m.engine", "10.8.0.43", H100)


@pytest.mark.parametrize("gpu", [GpuInfo("NVIDIA A100-SXM4-80GB", "8.0"), GpuInfo("NVIDIA H100 PCIe", "9.0")])
def test_other_gpu_is_refused_even_when_version_compatible(gpu):
    with pytest.raises(UserError, match=f"built for {H100.name} .* but this GPU is {gpu.name}"):
        check_engine_compatible(_sidecar(version_compatible=True), "m.engine", "10.13.3.9", gpu)


@pytest.mark.parametrize("profile", [{"input": {}}, {}, {"input": {"min": [1, 3], "opt": [1, 3], "max": [2]}},
                                     {"input": {"min": [1, 3], "opt": [1, 3], "max": ["8", 3]}}])
def test_sidecar_with_a_broken_profile_is_one_line(tmp_path, profile):
    engine = str(tmp_path / "m.plan")
    write_sidecar(EngineSidecar("10.13.3.9", "NVIDIA L4", "8.9", "fp16", profile, "ab" * 32), engine)
    with pytest.raises(UserError, match="broken optimization profile.*rebuild the engine"):
        read_sidecar(engine)
