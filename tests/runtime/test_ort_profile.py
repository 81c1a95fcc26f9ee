"""ORT profile parsing: kernel time per op type, warm-up run excluded."""
import json

import pytest

from idlevit.runtime.ort_profile import op_times, profile_op_types
from tests.onnx_cache import TEST_VIT_05, THREADS, export_config


def test_op_times_skips_the_first_run(tmp_path):
    events = [{"name": "model_run", "cat": "Session", "ts": 0, "dur": 100},
              {"name": "a_kernel_time", "cat": "Node", "ts": 10, "dur": 50_000, "args": {"op_name": "MatMul"}},
              {"name": "model_run", "cat": "Session", "ts": 200, "dur": 100},
              {"name": "b_kernel_time", "cat": "Node", "ts": 210, "dur": 4_000, "args": {"op_name": "MatMul"}},
              {"name": "c_kernel_time", "cat": "Node", "ts": 220, "dur": 1_000, "args": {"op_name": "TopK"}},
              {"name": "model_run", "cat": "Session", "ts": 400, "dur": 100},
              {"name": "d_kernel_time", "cat": "Node", "ts": 410, "dur": 2_000, "args": {"op_name": "MatMul"}}]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(events))
    assert op_times(str(path)) == {"MatMul": 3.0, "TopK": 0.5}
    with pytest.raises(ValueError):
        op_times(str(path), skip_runs=3)


def test_profile_a_real_session(tmp_path_factory):
    times = profile_op_types(export_config(tmp_path_factory, TEST_VIT_05), batch=2, img_size=64, calls=2,
                             threads=THREADS)
    assert {"TopK", "Gather", "ScatterND"} <= set(times)
    assert all(ms >= 0 for ms in times.values()) and sum(times.values()) > 0
