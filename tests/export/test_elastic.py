"""Elastic files: one ONNX whose keep ratio is chosen per call equals the fixed-K export of the same weights,
the TensorRT op check allows exactly the keep-length dims, and bad ratios or K fail in one line."""
import numpy as np
import onnx
import pytest
import torch

from idlevit.errors import UserError
from idlevit.export import check_tensorrt_compat
from idlevit.factory import create_idlevit
from idlevit.onnx_file.elastic import KEEP_INPUT_NAMES
from idlevit.onnx_file.metadata import read_metadata
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.runtime.parity import Thresholds, compare_runners
from idlevit.runtime.torch_runner import TorchRunner
from idlevit.workflows.export import export_model
from tests.onnx_cache import TEST_VIT_05, TEST_VIT_ELASTIC, THREADS, export_config

EXACT = Thresholds(atol=1e-5, min_top1=1.0, min_selection=1.0)


@pytest.fixture(scope="module")
def elastic(tmp_path_factory):
    return export_config(tmp_path_factory, TEST_VIT_ELASTIC)


def _batches(n=2, batch=4, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 64, 64, generator=gen).numpy() for _ in range(n)]


@pytest.mark.parametrize("ratio", [0.9, 0.63, 0.5, 0.37])
def test_elastic_file_equals_the_fixed_export_at_each_ratio(tmp_path_factory, elastic, ratio):
    fixed = export_config(tmp_path_factory, TEST_VIT_05[:1] + (ratio,) + TEST_VIT_05[2:])
    with OrtRunner(elastic, selection=True, threads=THREADS) as flexible, \
            OrtRunner(fixed, selection=True, threads=THREADS) as reference:
        flexible.set_keep_ratio(ratio)
        report = compare_runners(flexible, reference, _batches(), EXACT)
    assert report.passed, report.rows()
    assert len(report.selection_per_block) == 4 and report.selection_agreement == 1.0


def test_elastic_file_matches_pytorch_at_per_stage_k(elastic):
    model, _ = create_idlevit("test_vit", 0.5, img_size=64, seed=0, warn_random=False)
    x = _batches(1)[0]
    with OrtRunner(elastic, selection=True, threads=THREADS) as onnx_file, \
            TorchRunner(model, selection=True, threads=THREADS) as reference:
        for ks in [(16, 16, 16), (11, 7, 3), (1, 1, 1)]:
            out, ref = onnx_file.infer(x, keep_tokens=ks), reference.infer(x, keep_tokens=ks)
            assert np.abs(out["logits"] - ref["logits"]).max() <= 1e-5
            assert [out[f"topk_indices.{i}"].shape[1] for i in range(4)] == [ks[0], ks[1], ks[2], ks[2]]
            for i in range(4):
                assert (np.sort(out[f"topk_indices.{i}"]) == np.sort(ref[f"topk_indices.{i}"])).all()


def test_metadata_and_inputs_describe_the_elastic_file(elastic):
    meta = read_metadata(elastic)
    assert meta.elastic and meta.keep_token_range == [1, 16] and meta.keep_ratio == 0.5
    graph = onnx.load(elastic).graph
    assert [i.name for i in graph.input] == ["input", *KEEP_INPUT_NAMES]
    report = check_tensorrt_compat(elastic, expected_topk=meta.num_topk)
    assert report.ok, report.summary()
    assert report.topk == [16] * 4  # TopK's K stays a constant: every image token, sorted
    assert set(report.dynamic_dims) == {"batch", "keep_tokens_1", "keep_tokens_2", "keep_tokens_3"}


def test_op_check_rejects_any_other_dynamic_dim(elastic):
    model = onnx.load(elastic)
    old, new = "keep_tokens.1", "extra_length"
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    model.graph.input[1].name = new
    report = check_tensorrt_compat(model)
    assert not report.ok and any(i.node == new and "dim 0 is dynamic" in i.problem for i in report.issues)


def test_runner_rejects_out_of_range_ratio_and_k_in_one_line(elastic, tmp_path_factory):
    x = _batches(1, batch=1)[0]
    with OrtRunner(elastic, threads=THREADS) as runner:
        for kwargs, message in [({"keep_ratio": 1.5}, "outside \\(0, 1\\]"), ({"keep_ratio": 0.0}, "outside"),
                                ({"keep_tokens": (17, 8, 4)}, "K = 17 for keep_tokens.1, outside 1..16"),
                                ({"keep_tokens": (8, 4)}, "2 K values given for 3 idle stages")]:
            with pytest.raises(UserError, match=message) as err:
                runner.infer(x, **kwargs)
            assert "\n" not in str(err.value)
        assert runner.elastic.default_ratio == 0.5
        default, half = runner.infer(x)["logits"], runner.infer(x, keep_ratio=0.5)["logits"]
        assert (default == half).all()
    with OrtRunner(export_config(tmp_path_factory, TEST_VIT_05), threads=THREADS) as fixed:
        assert fixed.elastic is None
        with pytest.raises(UserError, match="fixed keep ratio .* idle-export --elastic"):
            fixed.infer(x, keep_ratio=0.6)


def test_export_refuses_elastic_without_a_default_below_one(tmp_path):
    model, source = create_idlevit("test_vit", 1.0, img_size=64, seed=0, warn_random=False)
    path = tmp_path / "m.onnx"
    with pytest.raises(UserError, match="--elastic needs the four-stage schedule with a default keep ratio below 1"):
        export_model(model, "test_vit", source, str(path), elastic=True)
    assert not path.exists()


def test_torchscript_exporter_makes_the_same_elastic_file(tmp_path, elastic):
    model, source = create_idlevit("test_vit", 0.5, img_size=64, seed=0, warn_random=False)
    path = str(tmp_path / "ts.onnx")
    report = export_model(model, "test_vit", source, path, exporter="torchscript", elastic=True, threads=THREADS)
    assert {c.keep_ratio for c in report.forward_checks} == {None, 1.0, 0.5, 0.25}
    with OrtRunner(path, threads=THREADS) as ts, OrtRunner(elastic, threads=THREADS) as dyn:
        ts.set_keep_ratio(0.41)
        dyn.set_keep_ratio(0.41)
        assert compare_runners(ts, dyn, _batches(1), Thresholds(atol=1e-5, min_top1=1.0)).passed
