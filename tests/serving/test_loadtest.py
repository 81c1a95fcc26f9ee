"""Load-test report, plot and bad input, without a server (tests/serving/test_triton_server.py drives one)."""
import json

import pytest

from idlevit.errors import UserError
from idlevit.serving.loadtest import LoadPlan, LoadReport, ModeResult, Sample, python_model_parameters, run_modes
from idlevit.serving.loadtest_plot import plot_loadtest
from idlevit.serving.repository import DeployOptions, write_repository


def _report():
    plan = LoadPlan(phases=(1, 2), phase_seconds=2.0)
    fixed = ModeResult("1", [Sample(0.1 * n, 100.0 + n, 1.0, n // 20) for n in range(40)], [0.0, 2.0, 4.0])
    adaptive = ModeResult("adaptive", [Sample(0.1 * n, 50.0, 1.0 if n < 20 else 0.5, n // 20) for n in range(40)],
                          [0.0, 2.0, 4.0])
    return LoadReport(plan, [fixed, adaptive], {"p99_target_ms": "80", "model": "idlevit"})


def test_table_has_a_row_per_phase_and_mode():
    rows = _report().table_rows()
    assert [r[:3] for r in rows] == [["1", "1 (1 clients)", 20], ["1", "2 (2 clients)", 20], ["1", "all", 40],
                                     ["adaptive", "1 (1 clients)", 20], ["adaptive", "2 (2 clients)", 20],
                                     ["adaptive", "all", 40]]
    assert rows[0][3] == "10.00" and rows[4][6] == "0.50"        # 20 images in 2 s; ratio used in phase 2
    assert float(rows[2][5]) > float(rows[2][4])                  # p99 above p50


def test_plot_is_written(tmp_path):
    path = tmp_path / "load.png"
    plot_loadtest(_report(), str(path))
    assert path.stat().st_size > 10_000


def test_adaptive_needs_a_latency_target(tiny_ladder, tmp_path):
    write_repository([tiny_ladder[1]], str(tmp_path / "repo"))
    params = python_model_parameters(str(tmp_path / "repo"), "idlevit")
    assert params["runner"] == "ort" and json.loads(params["files"]) == {"0.5": "model.onnx"}
    with pytest.raises(UserError, match="--p99-target-ms"):
        run_modes(str(tmp_path / "repo"), "idlevit", ["adaptive"], LoadPlan())
    with pytest.raises(UserError, match="not the python-backend model"):
        python_model_parameters(str(tmp_path / "repo"), "idlevit_onnx")
    with pytest.raises(UserError, match="1 to 64 clients"):
        run_modes(str(tmp_path / "repo"), "idlevit", ["1.0"], LoadPlan(phases=(0,)))
