"""GTP-ViT export: constant-K TopK and row Gathers only, the TensorRT op check, metadata that rebuilds the model,
ONNX Runtime parity at batch 1, 3 and 7 with both exporters, and the one-line refusal of sparsity < 1."""
import collections
import json

import numpy as np
import onnx
import pytest
import torch

from idlevit.cli.export import main as idle_export
from idlevit.cli.runtime import main as idle_runtime
from idlevit.export import check_tensorrt_compat
from idlevit.onnx_file.metadata import expected_topk, props_of, read_metadata
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.runtime.reference import baseline_of, reference_from_metadata

TINY_ARGS = ["--model", "gtp_deit_tiny_patch16_224", "--img-size", "32", "--num-classes", "10",
             "--model-kwargs", "depth=4", "embed_dim=32", "num_heads=2", "patch_size=8"]
FORBIDDEN = {"NonZero", "Loop", "If", "ScatterND", "ScatterElements", "GatherElements", "Compress", "Unique"}


def _export(tmp_path, name, settings, exporter="dynamo"):
    path = tmp_path / name
    assert idle_export(TINY_ARGS + settings + ["--exporter", exporter, "-o", str(path), "--json"]) == 0
    return str(path)


@pytest.mark.parametrize("exporter, settings, topk", [
    ("dynamo", ["num_prop=2", "num_neighbours=3"], [4, 16, 14, 12, 10]),                 # mixed: graph TopK + 4
    ("torchscript", ["num_prop=[0,3,2,4]", "graph_type=spatial", "token_scale=False"], [16, 13, 11]),
])
def test_graph_rules_metadata_and_parity_at_1_3_7(tmp_path, capsys, exporter, settings, topk):
    path = _export(tmp_path, f"gtp_{exporter}.onnx", settings, exporter)
    report = json.loads(capsys.readouterr().out)
    assert all(c["max_abs_diff"] <= 1e-4 for c in report["forward_checks"])
    model = onnx.load(path)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert not FORBIDDEN & set(ops), ops
    check = check_tensorrt_compat(model, expected_topk=len(topk))
    assert check.ok, check.issues
    assert check.topk == topk
    meta = read_metadata(path)
    assert meta.method == "gtp" and meta.num_topk == len(topk) == expected_topk(props_of(model))
    assert meta.model_kwargs == {"depth": 4, "embed_dim": 32, "num_heads": 2, "patch_size": 8}
    reference, _ = reference_from_metadata(meta, path, warn_random=False)
    assert reference.gtp.to_json() == meta.gtp
    x = np.random.default_rng(0).standard_normal((7, 3, 32, 32)).astype(np.float32)
    with OrtRunner(path) as runner, torch.no_grad():
        for batch in (1, 3, 7):
            got = runner.infer(x[:batch])["logits"]
            want = reference(torch.from_numpy(x[:batch])).numpy()
            assert np.abs(got - want).max() <= 1e-4
            assert np.array_equal(got.argmax(1), want.argmax(1))
        plain = baseline_of(reference)(torch.from_numpy(x)).numpy()
        assert np.abs(runner.infer(x)["logits"] - plain).max() > 1e-4   # the file propagates tokens


def test_sparsity_below_one_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "sparse.onnx"
    assert idle_export(TINY_ARGS + ["num_prop=2", "sparsity=0.6", "-o", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: GTP-ViT sparsity=0.6 needs TopK over all N^2 attention entries")
    assert "Traceback" not in "\n".join(err) and not path.exists()


def test_model_kwargs_that_repeat_a_flag_are_refused(tmp_path, capsys):
    assert idle_export(TINY_ARGS + ["img_size=64", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "pass --img-size instead" in capsys.readouterr().err


def test_parity_cli_passes_on_a_gtp_file(tmp_path, capsys):
    path = _export(tmp_path, "gtp.onnx", ["num_prop=2", "num_neighbours=3"])
    capsys.readouterr()
    assert idle_runtime(["parity", "--onnx", path, "-n", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gtp"]["num_prop"] == [2] * 4 and out["max_abs_diff"] <= 1e-4


def test_macs_cli_counts_deit_s(capsys):
    rows = {}
    for p in (8, 4):
        assert idle_runtime(["macs", "--model", "gtp_deit_small_patch16_224", "--model-kwargs", f"num_prop={p}",
                             "--json"]) == 0
        rows[p] = json.loads(capsys.readouterr().out)
    for p, gmacs in ((8, 3.437), (4, 4.019)):
        assert rows[p]["method"] == "gtp"
        assert rows[p]["gmacs_executed"] == pytest.approx(gmacs, abs=1e-3)
        assert rows[p]["gmacs_formula"] == pytest.approx(rows[p]["gmacs_executed"], rel=1e-6)
        assert 0.015 < rows[p]["gmacs_graph"] < 0.025         # n^2 C of the semantic graph + the propagation
    assert rows[8]["tokens_per_block"] == list(range(197, 108, -8))


def test_show_draws_where_each_block_propagated(tmp_path, capsys):
    out = tmp_path / "gtp.png"
    assert idle_runtime(["show"] + TINY_ARGS + ["num_prop=[0,3,2,4]", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.stat().st_size > 1000
    assert [b["block"] for b in report["blocks"]] == [1, 2, 3]
    assert [len(b["propagated"]) for b in report["blocks"]] == [3, 2, 4]
    removed = [i for b in report["blocks"] for i in b["propagated"]]
    assert len(set(removed)) == 9                     # a patch is propagated once, then gone
    for b in report["blocks"]:
        assert b["receivers"] and not set(b["receivers"]) & set(removed[:0] + b["propagated"])


def test_fp16_conversion_loads_and_stays_close(tmp_path, capsys):
    from idlevit.cli.fp16 import main as idle_fp16
    path = _export(tmp_path, "gtp.onnx", ["num_prop=2", "num_neighbours=3"])
    fp16 = str(tmp_path / "gtp_fp16.onnx")
    assert idle_fp16(["--onnx", path, "-o", fp16]) == 0
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    with OrtRunner(path) as full, OrtRunner(fp16) as half:
        a, b = full.infer(x)["logits"], half.infer(x)["logits"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.995
