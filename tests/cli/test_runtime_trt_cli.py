"""`idle-runtime parity --engine` and `bench --backend trt` up to the point where TensorRT is needed."""
import json
import sys

import pytest

from idlevit.cli.runtime import main
from idlevit.onnx_file.info import read_onnx_info
from idlevit.engines.sidecar import EngineSidecar, write_sidecar


@pytest.fixture
def fake_engine(tiny_onnx, tmp_path, monkeypatch):
    """An engine file whose sidecar carries the tiny export's metadata; no TensorRT installed."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    info = read_onnx_info(tiny_onnx[0])
    engine = str(tmp_path / "m.engine")
    open(engine, "wb").write(b"plan")
    shape = list(info.input_shape[1:])
    profile = {"input": {"min": [1] + shape, "opt": [4] + shape, "max": [8] + shape}}
    write_sidecar(EngineSidecar("10.13.3.9", "NVIDIA L4", "8.9", "fp16", profile, info.sha256,
                                onnx_metadata=info.metadata), engine)
    return engine


def test_parity_engine_rebuilds_the_reference_then_needs_tensorrt(fake_engine, capsys):
    assert main(["parity", "--backend", "trt", "--engine", fake_engine, "-n", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("TensorRT is not installed: pip install 'idlevit[trt]'")


def test_parity_engine_without_backend_trt_is_the_old_spelling(fake_engine, capsys):
    assert main(["parity", "--engine", fake_engine, "--img-size", "96"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("warning: --engine without --backend trt is deprecated and goes in the next release: "
                      "pass --backend trt --engine")
    assert "--img-size 96 does not match engine" in err[-1]


def test_parity_backend_and_file_must_agree(fake_engine, tiny_onnx, capsys):
    assert main(["parity", "--backend", "trt", "--onnx", tiny_onnx[0]]) == 2
    assert "--backend trt runs a TensorRT engine: pass --engine" in capsys.readouterr().err
    assert main(["parity", "--backend", "ort", "--engine", fake_engine]) == 2
    assert "--engine is a TensorRT engine: pass --backend trt" in capsys.readouterr().err


def test_parity_engine_checks_flags_against_the_sidecar(fake_engine, capsys):
    assert main(["parity", "--backend", "trt", "--engine", fake_engine, "--img-size", "96"]) == 2
    assert "--img-size 96 does not match engine" in capsys.readouterr().err


def test_parity_needs_onnx_or_engine(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["parity"])
    assert ex.value.code == 2 and "--onnx" in capsys.readouterr().err


def test_bench_trt_needs_both_engines(fake_engine, capsys):
    assert main(["bench", "--backend", "trt", "--engine", fake_engine]) == 2
    assert "pass both --engine and --baseline-engine" in capsys.readouterr().err
    assert main(["bench", "--backend", "ort", "--cuda-graph"]) == 2
    assert "need --backend trt" in capsys.readouterr().err


def test_bench_trt_refuses_an_idle_baseline(fake_engine, capsys):
    assert main(["bench", "--backend", "trt", "--engine", fake_engine, "--baseline-engine", fake_engine]) == 2
    err = capsys.readouterr().err
    assert "--baseline-engine" in err and "idle blocks (want keep ratio 1.0)" in err
    json.loads(open(fake_engine + ".json").read())  # untouched
