"""Every TensorRT name our code uses exists in the real TensorRT 10.13 and 11.4 Python bindings.

The wheels are fetched by .ci/run (pip download --no-deps) into .cache/trt-bindings; this
test downloads nothing and skips with a reason when they are absent.
"""
import pytest

from tests.engines.trt_names import (CACHE, WHEELS, binding_names_from, find_wheels, read_wheel,
                                     strings_of, trt_sources, used_names, versions_needing)

# Version-specific API (docs/design.md §3.2): weak typing is gone in TensorRT 11, so these may only be
# used on the TensorRT 10 path (functions named *_trt10).
TRT10_ONLY = {"BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
              "precision", "set_output_type"}
# Removed in 11 and distinct enough that the strings prove it (INT8 lives on inside UINT8):
# a negative control that the wheel reader can tell the versions apart.
REMOVED_IN_11 = {"FP16", "OBEY_PRECISION_CONSTRAINTS", "EXPLICIT_BATCH", "precision", "set_output_type",
                 "platform_has_fast_fp16", "int8_calibrator"}
# Calls docs/design.md §3.2 names as unchanged between 10 and 11; our code must use them.
CORE_CALLS = {"build_serialized_network", "set_memory_pool_limit", "WORKSPACE", "create_optimization_profile",
              "set_shape", "add_optimization_profile", "create_timing_cache", "set_timing_cache",
              "execute_async_v3", "set_tensor_address", "set_input_shape", "deserialize_cuda_engine",
              "STRONGLY_TYPED", "VERSION_COMPATIBLE", "parse_from_file"}


@pytest.fixture(scope="module")
def bindings():
    wheels = find_wheels()
    missing = sorted(set(WHEELS) - set(wheels))
    if missing:
        pytest.skip(f"TensorRT bindings wheels for TensorRT {missing} not in {CACHE}: run .ci/run, or "
                    "pip download --no-deps tensorrt-cu12-bindings==10.13.3.9 tensorrt-cu13-bindings==11.4.0.106 "
                    f"-d {CACHE}")
    return {major: read_wheel(path) for major, path in wheels.items()}


@pytest.fixture(scope="module")
def used():
    return used_names(trt_sources())


def test_every_used_name_exists_in_each_version_that_runs_it(bindings, used):
    problems = []
    for name, where in sorted(used.items()):
        for major in sorted(versions_needing(where)):
            if not bindings[major].has(name):
                problems.append(f"{name} (TensorRT {bindings[major].version}) used at {sorted(where)}")
    assert not problems, "names missing from the TensorRT bindings:\n" + "\n".join(problems)


def test_version_specific_names_only_on_their_path(used):
    table = {**used, **used_names(trt_sources(), qualified=True)}
    leaks = {name: sorted(w for w in table[name] if not w.startswith("10@")) for name in TRT10_ONLY if name in table}
    assert not any(leaks.values()), f"TensorRT-10-only API outside a *_trt10 function: {leaks}"
    assert TRT10_ONLY <= set(table), f"the TensorRT 10 FP16/INT8 path lost {sorted(TRT10_ONLY - set(table))}"


def test_core_calls_are_used_and_checked(used):
    assert CORE_CALLS <= set(used), f"not found in our TensorRT code: {sorted(CORE_CALLS - set(used))}"


def test_reader_tells_the_versions_apart(bindings):
    for name in REMOVED_IN_11:
        assert bindings[10].has(name), f"{name} should exist in TensorRT {bindings[10].version}"
        assert not bindings[11].has(name), f"{name} should be gone in TensorRT {bindings[11].version}"
    assert bindings[11].has("__version__") and bindings[10].has("nptype")  # names from __init__.py


def test_reader_tail_merging_rule():
    blob = b"\x00UINT8\x00Example 2: CHW2 + FP16\x00set_shape\x00ab\x00"
    names = binding_names_from(blob, "__version__ = '1'\nDataType.itemsize = 1\n", "x")
    assert strings_of(blob) == {"UINT8", "Example 2: CHW2 + FP16", "set_shape"}
    assert names.has("INT8") and names.has("set_shape") and names.has("itemsize") and names.has("__version__")
    assert not names.has("FP16") and not names.has("get_shape") and not names.has("ab")


def test_collector_finds_chains_keywords_and_version_tags():
    src = ("def build(trt, builder):\n"
           "    config = builder.create_builder_config()\n"
           "    config.set_timing_cache(cache, ignore_mismatch=False)\n"
           "    x = network.get_layer(0).type == trt.LayerType.TOPK\n"
           "    self._engine.num_io_tensors\n"
           "    request.profile.shapes\n"
           "def _flags_trt10(trt, config):\n"
           "    config.set_flag(trt.BuilderFlag.FP16)\n")
    found = used_names({"/x/mod.py": src})
    assert {"create_builder_config", "set_timing_cache", "ignore_mismatch", "get_layer", "type", "LayerType",
            "TOPK", "num_io_tensors", "set_flag", "BuilderFlag", "FP16"} == set(found)
    assert versions_needing(found["FP16"]) == {10}
    qualified = used_names({"/x/mod.py": src}, qualified=True)
    assert set(qualified) == {"LayerType.TOPK", "BuilderFlag.FP16"}
    assert versions_needing(found["set_timing_cache"]) == {10, 11}
