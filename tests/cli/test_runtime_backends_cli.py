"""OpenVINO and INT8 Q/DQ files through idle-runtime bench, parity, sweep, validate and lineup."""
import json

import pytest

from idlevit.cli.runtime import main
from tests.cli import exit_status
from tests.onnx_cache import TEST_VIT_10, cached, export_config
from tests.runtime.test_openvino_runner import needs_openvino

FAST = ["--warmup", "0", "--iters", "2", "--rounds", "2", "--threads", "1"]


def run(argv):
    return exit_status(main, argv)


def one_error_line(capsys):
    return [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]


@pytest.fixture(scope="module")
def files(tiny_onnx, tiny_calib, tmp_path_factory):
    """(idle r = 0.5, its baseline, its INT8 Q/DQ file) of timm's test ViT at 64 px."""
    from idlevit.calibration.quantize import QuantizeOptions, quantize_int8
    qdq = cached(tmp_path_factory, "cli_tiny.qdq.onnx",
                 lambda path: quantize_int8(tiny_onnx[0], tiny_calib, path, QuantizeOptions(backend="onnxruntime")))
    return tiny_onnx[0], export_config(tmp_path_factory, TEST_VIT_10), qdq


def test_bench_times_the_int8_file_against_the_fp32_baseline(files, capsys):
    idle, base, qdq = files
    assert run(["bench", "--onnx", idle, "--baseline-onnx", base, "--qdq", qdq, "-b", "2", "--json"] + FAST) == 0
    result = json.loads(capsys.readouterr().out)
    int8 = result["extras"]["int8"]
    assert int8["speedup"] == pytest.approx(int8["throughput_img_s"] / result["baseline"]["throughput_img_s"])
    assert int8["iters"] == 2 and result["setup"]["int8_kernels"].startswith(("exact u8u8", "default u8s8"))
    assert run(["bench", "--onnx", idle, "--baseline-onnx", base, "--qdq", qdq, "--int8-kernels", "default",
                "-b", "1"] + FAST) == 0
    out = capsys.readouterr().out
    assert "int8: speedup" in out and "int8_kernels default u8s8: forced by the caller" in out


@needs_openvino
def test_bench_and_parity_on_openvino(files, capsys):
    idle, base, _ = files
    assert run(["bench", "--backend", "openvino", "--onnx", idle, "--baseline-onnx", base, "-b", "2", "--json"]
               + FAST) == 0
    setup = json.loads(capsys.readouterr().out)["setup"]
    assert (setup["backend"], setup["precision"], setup["threads"]) == ("openvino", "f32", 1)
    assert run(["parity", "--backend", "openvino", "--onnx", idle, "-n", "6", "-b", "3", "--threads", "1",
                "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runner"]["backend"] == "openvino" and report["precision"] == "fp32"
    assert report["max_abs_diff"] <= 1e-4 and report["top1_agreement"] == 1.0 and report["selection_agreement"] == 1.0


@needs_openvino
def test_parity_bf16_uses_the_fp16_limits_and_reports_selection(files, capsys):
    idle, _, _ = files
    rc = run(["parity", "--backend", "openvino", "--precision", "bf16", "--onnx", idle, "-n", "4", "--threads", "1",
              "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "bf16" and report["runner"]["precision_hint"] == "bf16"
    assert {c["name"]: c["limit"] for c in report["checks"]} == {"cosine (mean)": 0.999, "top-1 agreement": 0.99}
    assert len(report["selection_per_block"]) == 4 and rc == (0 if report["passed"] else 1)


@needs_openvino
def test_sweep_has_an_openvino_and_an_int8_series(tmp_path, tiny_calib, capsys):
    out = tmp_path / "sweep"
    assert run(["sweep", "--model", "test_vit", "--img-size", "64", "--ratios", "0.5", "--backends", "openvino",
                "ort-int8", "--calib", tiny_calib, "-b", "2", "--parity-samples", "3", "-o", str(out)] + FAST) == 0
    recs = json.loads((out / "sweep.json").read_text())["records"]
    assert [(r["backend"], r["keep_ratio"]) for r in recs] == [("openvino", 1.0), ("openvino", 0.5),
                                                              ("ort-int8", 1.0), ("ort-int8", 0.5)]
    assert all(r["max_abs_diff"] < 1e-4 and r["top1_agreement"] == 1.0 for r in recs[:2])
    assert all(r["cosine"] > 0.9 for r in recs[2:])   # int8 limits apply; the tiny random model may miss top-1
    assert sorted(p.name for p in (out / "onnx").iterdir()) == ["test_vit_baseline_torchscript.onnx",
                                                                "test_vit_r0.5.onnx", "test_vit_r0.5.qdq.onnx",
                                                                "test_vit_r1.onnx", "test_vit_r1.qdq.onnx"]
    assert recs[2]["baseline_file"]["exporter"] == "torchscript"   # INT8 is timed against the fp32 ORT baseline


@needs_openvino
def test_validate_on_openvino(tmp_path, capsys):
    rc = run(["validate", "--backend", "openvino", "--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5",
              "-n", "2", "--parity-batch", "4", "--bench-batch", "2", "--iters", "1", "--warmup", "0",
              "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "parity (OpenVINO CPU, fp32)" in out and "bench (OpenVINO CPU)" in out
    assert "selection 1.000" in out and "validate PASSED" in out


@needs_openvino
def test_lineup_times_every_entry_and_checks_each_one(files, tmp_path, capsys):
    idle, base, qdq = files
    out = tmp_path / "lineup.json"
    assert run(["lineup", "--onnx", idle, "--baseline-onnx", base, "--qdq", qdq, "--int8-kernels", "both",
                "--openvino", "f32", "-b", "1", "2", "--iters", "2", "--warmup", "0", "--threads", "1", "-n", "4",
                "--json-output", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    labels = [e["label"] for e in data["entries"]]
    assert labels == ["test_vit fp32, ONNX Runtime", "test_vit fp32, ONNX Runtime (again: noise floor)",
                      "IdleViT r = 0.5 fp32, ONNX Runtime", "IdleViT r = 0.5 INT8 Q/DQ, ONNX Runtime, exact u8u8 kernels",
                      "IdleViT r = 0.5 INT8 Q/DQ, ONNX Runtime, default u8s8 kernels", "IdleViT r = 0.5 f32, OpenVINO"]
    first, noise, fp32 = data["entries"][:3]
    assert first["speedup"] == {"1": 1.0, "2": 1.0} and noise["parity"] is None
    assert fp32["parity"]["passed"] and fp32["parity"]["selection_agreement"] == 1.0
    assert data["entries"][-1]["parity"]["max_abs_diff"] <= 1e-4
    assert all(e["timings"]["2"]["iters"] == 2 for e in data["entries"])
    assert "no VNNI" in data["cpu"] or "vnni" in data["cpu"] or "flags unknown" in data["cpu"]
    assert "interleaved call by call" in printed and "batch 2: speed-up (p50)" in printed


@pytest.mark.parametrize("flags,needle", [
    (["--precision", "bf16"], "--precision bf16 is OpenVINO's"),
    (["--qdq", "BASE"], "was not quantized from"),
    (["--backend", "torch", "--qdq", "QDQ"], "need --backend ort or openvino"),
])
def test_bench_refuses_bad_int8_and_precision_flags(files, capsys, flags, needle):
    idle, base, qdq = files
    flags = [{"BASE": base, "QDQ": qdq}.get(f, f) for f in flags]
    rc = run(["bench", "--onnx", idle, "-b", "1"] + FAST + flags)
    err = one_error_line(capsys)
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_parity_bf16_needs_openvino_and_sweep_int8_needs_calib(files, tmp_path, capsys):
    idle, _, _ = files
    assert run(["parity", "--onnx", idle, "--precision", "bf16", "-n", "1"]) == 2
    assert "pass --backend openvino" in one_error_line(capsys)[0]
    assert run(["sweep", "--backends", "ort-int8", "-o", str(tmp_path / "s")]) == 2
    assert "needs --calib" in one_error_line(capsys)[0]
