"""idle-runtime bench: ORT with given files or temporary exports, torch, the profile table, and refusals."""
import json

import pytest

from idlevit.cli.runtime import main
from tests.cli import exit_status
from tests.onnx_cache import TEST_VIT_05, TEST_VIT_10, export_config

FAST = ["-b", "2", "--warmup", "0", "--iters", "2", "--rounds", "2", "--threads", "1"]


def run(argv):
    return exit_status(main, argv)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_05), export_config(tmp_path_factory, TEST_VIT_10)


def test_ort_bench_json_with_given_files(files, capsys):
    idle, base = files
    rc = run(["bench", "--backend", "ort", "--onnx", idle, "--baseline-onnx", base, "--json"] + FAST)
    result = json.loads(capsys.readouterr().out)
    assert rc == 0
    idle, base = result["idle"]["throughput_img_s"], result["baseline"]["throughput_img_s"]
    assert result["speedup"] == pytest.approx(idle / base)
    assert result["efficiency"] == pytest.approx(result["speedup"] / result["mac_ratio"])
    assert result["gmacs_idle"] < result["gmacs_baseline"]
    setup = result["setup"]
    assert (setup["batch"], setup["iters"], setup["threads"], setup["model"]) == (2, 2, 1, "test_vit")
    assert setup["providers"] == ["CPUExecutionProvider"] and setup["order"] == "alternating rounds"


def test_bench_backend_auto_times_both_files_on_the_pick(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("IDLEVIT_CACHE_DIR", str(tmp_path))
    idle, base = files
    rc = run(["bench", "--backend", "auto", "--onnx", idle, "--baseline-onnx", base, "--json"] + FAST)
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    picked = result["setup"]["backend_auto"]["picked"]
    assert rc == 0 and "--backend auto picked" in captured.err
    assert result["setup"]["backend"] == picked["backend"] and result["speedup"] > 0


def test_ort_bench_table_with_profile(files, capsys):
    idle, base = files
    assert run(["bench", "--onnx", idle, "--baseline-onnx", base, "--profile", "1"] + FAST) == 0
    out = capsys.readouterr().out
    assert "measured: batch 2, 0 warmup + 2 timed calls per model in 2 alternating rounds" in out
    assert f"baseline {base}: idle-export --keep-ratio 1.0 of test_vit" in out
    assert "efficiency" in out and "p99 ms" in out
    assert "op type" in out and "TopK" in out and "ScatterND" in out


def test_ort_bench_exports_temporary_files(capsys):
    rc = run(["bench", "--model", "test_vit", "--img-size", "64", "--keep-ratio", "0.5", "--exporter", "torchscript",
              "--json"] + FAST)
    captured = capsys.readouterr()
    assert rc == 0 and json.loads(captured.out)["setup"]["model"] == "test_vit"
    assert "exporting the idle model" in captured.err and "exporting the baseline model" in captured.err
    assert json.loads(captured.out)["setup"]["baseline_file"]["exporter"] == "torchscript"


def _plain_vit_onnx(path, img_size=64, num_classes=1000):
    """A plain ViT exported by hand with torch.onnx (no idlevit metadata), as a user would bring one."""
    import warnings

    import timm
    import torch
    model = timm.create_model("vit_tiny_patch16_224", img_size=img_size, num_classes=num_classes, depth=2).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, img_size, img_size),), str(path), dynamo=False,
                          opset_version=18, input_names=["x"], dynamic_axes={"x": {0: "b"}})
    return str(path)


def test_ort_bench_times_any_plain_vit_onnx_and_names_it(files, tmp_path, capsys):
    idle, _ = files
    plain = _plain_vit_onnx(tmp_path / "plain.onnx")
    assert run(["bench", "--onnx", idle, "--baseline-onnx", plain] + FAST) == 0
    out = capsys.readouterr().out
    assert f"baseline {plain}: a plain ONNX file without idlevit metadata, from pytorch" in out


def test_ort_bench_refuses_a_plain_onnx_of_another_shape(files, tmp_path, capsys):
    idle, _ = files
    plain = _plain_vit_onnx(tmp_path / "plain.onnx", num_classes=7)
    assert run(["bench", "--onnx", idle, "--baseline-onnx", plain] + FAST) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a plain ViT of this model: its first output is not (batch, 1000) logits" in err[0]


def test_torch_bench(capsys):
    rc = run(["bench", "--backend", "torch", "--model", "test_vit", "--img-size", "32", "--keep-ratio", "0.5"] + FAST)
    out = capsys.readouterr().out
    assert rc == 0 and "backend torch" in out and "speedup" in out


@pytest.mark.parametrize("flags,needle", [
    (["--backend", "torch", "--onnx", "x.onnx"], "need --backend ort"),
    (["--baseline-onnx", "IDLE"], "is not the baseline of this model: idle blocks"),
    (["--iters", "0"], "must be >= 1"),
    (["-b", "0"], "-b/--batch-size 0 must be at least 1"),
    (["-b", "100000000"], "-b/--batch-size 100000000 at 64 px needs about"),
])
def test_bad_flags_exit_2(files, capsys, flags, needle):
    idle, _ = files
    argv = ["bench", "--onnx", idle] + FAST + [idle if f == "IDLE" else f for f in flags]
    rc = run(argv)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert rc == 2 and len(err) == 1 and needle in err[0], err
