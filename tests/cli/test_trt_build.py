"""idle-trt-build: flags are checked before TensorRT is needed; without TensorRT it says how to install it."""
import sys

import pytest

from idlevit.cli.trt_build import build_parser, main


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_flags_and_defaults():
    args = build_parser().parse_args(["--onnx", "m.onnx", "-o", "m.engine", "--workspace", "512MiB"])
    assert (args.min_batch, args.opt_batch, args.max_batch, args.workspace) == (1, 32, 128, 512 << 20)
    assert not (args.fp16 or args.int8 or args.version_compatible) and args.timing_cache is None


def test_without_tensorrt_exit_2_with_install_hint(no_tensorrt, tiny_onnx, tmp_path, capsys):
    code, err = _run(["--onnx", tiny_onnx[0], "--fp16", "-o", str(tmp_path / "m.engine")], capsys)
    assert code == 2 and err == "error: TensorRT is not installed: pip install 'idlevit[trt]'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra,message", [
    (["--int8"], "--int8 needs calibration"),
    (["--calib", "CALIB"], "only apply to INT8: add --int8"),
    (["--int8", "--calib", "CALIB", "--qdq", "ONNX"], "pass one"),
    (["--min-batch", "8", "--opt-batch", "4"], "--min-batch <= --opt-batch <= --max-batch"),
    (["--qdq", "missing.onnx", "--int8"], "--qdq missing.onnx does not exist"),
])
def test_bad_flags_one_line_exit_2(no_tensorrt, tiny_onnx, tiny_calib, tmp_path, capsys, extra, message):
    extra = [tiny_calib if a == "CALIB" else tiny_onnx[0] if a == "ONNX" else a for a in extra]
    code, err = _run(["--onnx", tiny_onnx[0], "-o", str(tmp_path / "m.engine")] + extra, capsys)
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert "TensorRT is not installed" not in err  # checked before TensorRT is looked for


def test_argparse_errors(capsys):
    for bad, message in ((["--workspace", "lots"], "is not a size"), (["--max-batch", "0"], "positive integer")):
        with pytest.raises(SystemExit) as ex:
            main(["--onnx", "m.onnx", "-o", "m.engine"] + bad)
        assert ex.value.code == 2 and message in capsys.readouterr().err
    code, err = _run(["--onnx", "missing.onnx", "-o", "m.engine"], capsys)
    assert code == 2 and "--onnx missing.onnx does not exist" in err


def test_json_reports_the_sidecar(tiny_onnx, tmp_path, capsys, monkeypatch):
    import json

    from idlevit.engines import build as build_mod
    from idlevit.engines.gpu import GpuInfo
    from tests.engines.fake_tensorrt import make_fake_tensorrt
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.13.3.9"))
    monkeypatch.setattr(build_mod, "current_gpu", lambda: GpuInfo("NVIDIA L4", "8.9"))
    engine = str(tmp_path / "m.engine")
    assert main(["--onnx", tiny_onnx[0], "--fp16", "-o", engine, "--workspace", "1GiB", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = json.load(open(engine + ".json"))
    assert (report["engine"], report["sidecar"], report["workspace"]) == (engine, engine + ".json", 1 << 30)
    assert {k: report[k] for k in saved} == saved and saved["precision"] == "fp16"
