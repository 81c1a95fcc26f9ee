"""idle-fp16 on CPU: flags, the human table and --json, the old --backend name."""
import json

from idlevit.cli.fp16 import build_parser, main
from idlevit.onnx_file.info import read_onnx_info


def test_idle_fp16_cli(tiny_onnx, tmp_path, capsys):
    out = str(tmp_path / "m.fp16.onnx")
    assert main(["--onnx", tiny_onnx[0], "-o", out, "--converter", "onnxconverter"]) == 0
    assert "(36 on the selection path" in capsys.readouterr().out and read_onnx_info(out).precision == "fp16"
    assert main(["--onnx", out, "-o", str(tmp_path / "again.onnx")]) == 2
    assert "already fp16" in capsys.readouterr().err and not (tmp_path / "again.onnx").exists()


def test_idle_fp16_json(tiny_onnx, tmp_path, capsys):
    out = str(tmp_path / "m.fp16.onnx")
    assert main(["--onnx", tiny_onnx[0], "-o", out, "--converter", "onnxconverter", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fp16_onnx"] == out and report["converter"] == "onnxconverter"
    assert report["selection_nodes"] == 36 and report["kept_fp32"] > 36
    assert report["keep_fp32_ops"] == ["LayerNormalization"]


def test_old_backend_flag_is_the_converter(capsys):
    old = build_parser().parse_args(["--onnx", "m.onnx", "-o", "x.onnx", "--backend", "onnxconverter"])
    assert old.converter == "onnxconverter"
    assert capsys.readouterr().err == ("warning: --backend is deprecated and goes in the next release: "
                                       "use --converter\n")
