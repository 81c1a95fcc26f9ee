"""--backend auto: the choice from given measurements (no timing), the candidates per CPU, and the cache."""
import json

import pytest

from idlevit.errors import UserError
from idlevit.runtime.auto_backend import (Candidate, Measured, cache_key, candidates, choose, read_cached,
                                          write_cached)
from idlevit.runtime.cpu_features import CpuFeatures

ORT, OV, OV_BF16 = Candidate("ort", "fp32"), Candidate("openvino", "fp32"), Candidate("openvino", "bf16")
AVX2 = CpuFeatures("AMD EPYC", "x86_64", frozenset({"avx2"}))
AMX = CpuFeatures("Intel Xeon", "x86_64", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                                                      "amx_int8"}))


def m(c, ms, ok=True):
    return Measured(c, ms, ok, "pass" if ok else "max abs 3e-2: FAIL")


def test_choose_takes_the_fastest_that_passes():
    choice = choose([m(ORT, 80.0), m(OV, 41.0), m(OV_BF16, 20.0, ok=False)])
    assert choice.picked == OV
    assert "41.0 ms" in choice.why and "ort fp32 80.0 ms" in choice.why and "failed parity: openvino bf16" in choice.why


def test_choose_keeps_onnx_runtime_when_the_other_is_within_the_margin():
    assert choose([m(ORT, 100.0), m(OV, 98.0)]).picked == ORT          # 2 % faster: not a measurable gain
    assert choose([m(ORT, 100.0), m(OV, 96.0)]).picked == OV           # 4 % faster
    assert choose([m(ORT, 100.0), m(OV, 98.0)], min_gain=0.0).picked == OV


def test_choose_never_picks_a_candidate_that_failed_parity():
    assert choose([m(ORT, 100.0), m(OV, 10.0, ok=False)]).picked == ORT
    assert choose([m(ORT, None, ok=False), m(OV, 50.0)]).picked == OV
    with pytest.raises(UserError, match="no backend that passes parity"):
        choose([m(ORT, 100.0, ok=False), m(OV, 50.0, ok=False)])


def test_candidates_follow_the_cpu_and_the_install():
    assert candidates("fp32", AVX2, have_openvino=False) == [ORT]
    assert candidates("fp32", AVX2, have_openvino=True) == [ORT, OV]        # no native bf16: no bf16 candidate
    assert candidates("fp32", AMX, have_openvino=True) == [ORT, OV, OV_BF16]
    assert candidates("int8", AMX, have_openvino=True) == [Candidate("ort", "int8"), Candidate("openvino", "int8")]


def test_cache_key_changes_with_cpu_file_threads_batch_and_versions():
    base = cache_key(AMX, "a" * 64, 2, 1, {"onnxruntime": "1.31.1"})
    assert base == cache_key(AMX, "a" * 64, 2, 1, {"onnxruntime": "1.31.1"})
    others = {cache_key(AVX2, "a" * 64, 2, 1, {"onnxruntime": "1.31.1"}),
              cache_key(AMX, "b" * 64, 2, 1, {"onnxruntime": "1.31.1"}),
              cache_key(AMX, "a" * 64, 1, 1, {"onnxruntime": "1.31.1"}),
              cache_key(AMX, "a" * 64, 2, 16, {"onnxruntime": "1.31.1"}),
              cache_key(AMX, "a" * 64, 2, 1, {"onnxruntime": "1.23.2"})}
    assert base not in others and len(others) == 5


def test_cache_round_trip_and_unreadable_files(tmp_path):
    path = str(tmp_path / "sub" / "key.json")
    measured = [m(ORT, 80.0), m(OV, 41.0), m(OV_BF16, None, ok=False)]
    write_cached(path, measured, {"threads": 2})
    assert read_cached(path) == measured
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["key.json"]   # no temporary file left
    (tmp_path / "bad.json").write_text("{not json")
    assert read_cached(str(tmp_path / "bad.json")) is None
    (tmp_path / "old.json").write_text(json.dumps({"version": 0, "measured": []}))
    assert read_cached(str(tmp_path / "old.json")) is None
    assert read_cached(str(tmp_path / "absent.json")) is None
