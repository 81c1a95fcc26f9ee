"""idle-calibrate end to end on CPU: photos -> calib.npz -> Q/DQ ONNX that ONNX Runtime runs."""
import os

import numpy as np

from idlevit.cli.calibrate import build_parser, main
from idlevit.onnx_file.info import read_onnx_info
from idlevit.runtime.ort_runner import OrtRunner
from tests.onnx_cache import THREADS


def test_calibrate_writes_npz_and_qdq(photo_folder, tiny_onnx, tmp_path, capsys):
    calib, qdq = str(tmp_path / "calib.npz"), str(tmp_path / "m.qdq.onnx")
    code = main(["--onnx", tiny_onnx[0], "--images", photo_folder, "--num-images", "4", "-o", calib, "--qdq-output", qdq,
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "Q/DQ ONNX" in out and "onnxruntime (percentile calibration)" in out
    with np.load(calib) as data:
        assert data["input"].shape == (4, 3, 64, 64)
    assert read_onnx_info(qdq).precision == "int8"
    with OrtRunner(qdq, threads=THREADS) as runner:
        logits = runner.infer(np.random.RandomState(0).randn(3, 3, 64, 64).astype(np.float32))["logits"]
    assert logits.shape == (3, 1000) and np.isfinite(logits).all()


def test_calibrate_json(photo_folder, tiny_onnx, tmp_path, capsys):
    import json
    calib = str(tmp_path / "calib.npz")
    assert main(["--onnx", tiny_onnx[0], "--images", photo_folder, "--num-images", "2", "-o", calib, "--no-progress",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"calibration_set": calib, "images": 2, "image_shape": [3, 64, 64]}


def test_old_flag_names_still_parse_with_a_warning(capsys):
    old = build_parser().parse_args(["--onnx", "m.onnx", "--images", "d", "-n", "3", "--seed", "1",
                                     "--qdq", "q.onnx", "--backend", "modelopt"])
    err = capsys.readouterr().err.splitlines()
    new = build_parser().parse_args(["--onnx", "m.onnx", "--images", "d", "--num-images", "3", "--shuffle-seed", "1",
                                     "--qdq-output", "q.onnx", "--quantizer", "modelopt"])
    assert vars(old) == vars(new)
    assert err == [f"warning: {old_flag} is deprecated and goes in the next release: use {new_flag}" for old_flag, new_flag
                   in (("-n", "--num-images"), ("--seed", "--shuffle-seed"), ("--qdq", "--qdq-output"),
                       ("--backend", "--quantizer"))]


def test_calibrate_errors(photo_folder, tiny_onnx, tmp_path, capsys):
    assert main(["--onnx", tiny_onnx[0], "--images", str(tmp_path), "-o", str(tmp_path / "c.npz")]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["--onnx", tiny_onnx[0], "--calib", str(tmp_path / "c.npz")]) == 2
    assert "--calib without --qdq" in capsys.readouterr().err
    assert main(["--onnx", str(tmp_path / "x.onnx"), "--images", photo_folder]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "c.npz").exists()


def test_bad_batch_sizes_and_fp16_files_leave_no_calib_npz(photo_folder, tiny_onnx, tmp_path, capsys):
    from idlevit.engines.fp16 import write_fp16_onnx
    calib, qdq = tmp_path / "calib.npz", tmp_path / "q.onnx"
    for batch in ("0", "-1"):
        code = main(["--onnx", tiny_onnx[0], "--images", photo_folder, "--num-images", "2", "-o", str(calib), "--qdq-output", str(qdq),
                     "-b", batch, "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err == f"error: -b/--batch-size {batch} must be at least 1 (images per batch): pass e.g. -b 8"
    fp16 = str(tmp_path / "m.fp16.onnx")
    write_fp16_onnx(tiny_onnx[0], fp16, backend="onnxconverter")
    code = main(["--onnx", fp16, "--images", photo_folder, "--num-images", "2", "-o", str(calib), "--qdq-output", str(qdq),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is fp16, not fp32" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["m.fp16.onnx"]


def test_interrupted_quantization_keeps_the_old_pair_and_leaves_no_temp_folders(photo_folder, tiny_onnx, tmp_path,
                                                                                  monkeypatch, capsys):
    """ONNX Runtime's own ort.quant.* folder lives in a scratch folder of ours; Ctrl-C while quantizing leaves the
    calib.npz and Q/DQ file of the last run as they were (not a new calib.npz beside an old Q/DQ file)."""
    import tempfile

    import idlevit.calibration.quantize as quantize
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    out = tmp_path / "out"
    out.mkdir()
    calib, qdq = out / "calib.npz", out / "m.qdq.onnx"
    args = ["--onnx", tiny_onnx[0], "--images", photo_folder, "-o", str(calib), "--qdq-output", str(qdq), "--no-progress"]
    assert main(args + ["--num-images", "2"]) == 0
    assert os.listdir(system_tmp) == []
    before = calib.read_bytes(), qdq.read_bytes()
    seen = []

    def interrupted(src, dst, reader, exclude, options):
        seen.append(tempfile.gettempdir())
        tempfile.mkdtemp(prefix="ort.quant.")   # where ONNX Runtime puts its own
        raise KeyboardInterrupt
    monkeypatch.setattr(quantize, "_quantize_onnxruntime", interrupted)
    assert main(args + ["--num-images", "3"]) == 130
    assert capsys.readouterr().err.strip().endswith("error: interrupted")
    assert os.path.basename(seen[0]).startswith("idlevit-quant-") and os.path.dirname(seen[0]) == str(system_tmp)
    assert (calib.read_bytes(), qdq.read_bytes()) == before
    assert os.listdir(system_tmp) == [] and sorted(os.listdir(out)) == ["calib.npz", "m.qdq.onnx"]


def test_a_file_for_a_folder_and_a_folder_for_a_file_say_so(tiny_onnx, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["--onnx", tiny_onnx[0], "--images", str(tmp_path / "afile"), "-o", str(tmp_path / "c.npz")]) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err
    assert main(["--onnx", tiny_onnx[0], "--calib", str(tmp_path), "--qdq-output", str(tmp_path / "q.onnx")]) == 2
    assert f"calibration file {tmp_path} is a folder" in capsys.readouterr().err
    assert main(["--onnx", tiny_onnx[0], "--images", str(tmp_path), "--qdq-output", str(tmp_path / "no" / "q.onnx")]) == 2
    assert capsys.readouterr().err.strip().endswith("pass another --qdq-output")
    assert sorted(os.listdir(tmp_path)) == ["afile"]
