"""Parity metrics on known arrays, and CI parity: DeiT-T and DeiT-S at two keep ratios on ONNX Runtime CPU,
batch 1, 2 and 7, real photographs plus random inputs (the fp32 limits of docs/design.md §3.3)."""
import numpy as np
import pytest

from idlevit.onnx_file.metadata import read_metadata
from idlevit.images import eval_transform
from idlevit.runtime.inputs import batched, image_files, parity_inputs
from idlevit.runtime.ort_runner import OrtRunner
from idlevit.runtime.parity import ParityAccumulator, compare_runners, set_overlap, thresholds_for, top1_margin
from idlevit.runtime.reference import reference_from_metadata
from idlevit.runtime.torch_runner import TorchRunner
from tests.onnx_cache import DEIT_S_05, DEIT_S_07, DEIT_T_05, DEIT_T_07, THREADS, export_config, photos_dir


def _logits(seed=0, n=6, c=10):
    return np.random.default_rng(seed).standard_normal((n, c)).astype(np.float32)


def test_identical_outputs_pass_every_precision():
    ref = {"logits": _logits(), "topk_indices.0": np.array([[1, 2, 3]] * 6)}
    for precision in ("fp32", "fp16", "int8"):
        acc = ParityAccumulator(thresholds_for(precision))
        acc.update(dict(ref), ref)
        rep = acc.report()
        assert rep.passed and rep.max_abs_diff == 0 and rep.cosine_min == pytest.approx(1.0)
        assert rep.top1_agreement == 1.0 and rep.top5_overlap == 1.0 and rep.selection_per_block == [1.0]


def test_fp32_limit_catches_a_small_error_that_fp16_limits_accept():
    ref = _logits()
    out = ref.copy()
    out[0, 0] += 3e-4                                     # above 1e-4, far from any argmax change
    acc32, acc16 = ParityAccumulator(thresholds_for("fp32")), ParityAccumulator(thresholds_for("fp16"))
    for acc in (acc32, acc16):
        acc.update({"logits": out}, {"logits": ref})
    r32, r16 = acc32.report(), acc16.report()
    assert not r32.passed and [c.name for c in r32.checks if not c.passed] == ["max abs diff"]
    assert r32.max_abs_diff == pytest.approx(3e-4, rel=1e-3)
    assert r16.passed
    acc = ParityAccumulator(thresholds_for("fp32", atol=1e-3))
    acc.update({"logits": out}, {"logits": ref})
    assert acc.report().passed


def test_top1_and_cosine_failures():
    ref = _logits(n=4)
    out = ref.copy()
    out[1] = -out[1]                                      # one sample flipped: argmax and cosine change
    acc = ParityAccumulator(thresholds_for("int8"))
    acc.update({"logits": out}, {"logits": ref})
    rep = acc.report()
    assert rep.top1_agreement == pytest.approx(0.75) and rep.cosine_min == pytest.approx(-1.0, abs=1e-6)
    assert {c.name for c in rep.checks if not c.passed} == {"cosine (mean)", "top-1 agreement"}


def test_flips_report_how_near_a_tie_the_reference_was():
    ref = np.array([[0.0, 1.0, 0.99, -1.0], [3.0, 0.0, 0.0, -3.0], [0.0, 2.0, 0.0, -2.0]], np.float32)
    out = ref.copy()
    out[0, 2] += 0.02                                     # a near-tie flips
    assert top1_margin(ref) == pytest.approx([0.01 / ref[0].std(), 3 / ref[1].std(), 2 / ref[2].std()], rel=1e-4)
    acc = ParityAccumulator(thresholds_for("int8"))
    acc.update({"logits": out}, {"logits": ref})
    rep = acc.report()
    assert rep.flip_margins == pytest.approx([0.01 / ref[0].std()], rel=1e-4) and rep.margin_median == pytest.approx(2 / ref[2].std())
    assert any(r[0].startswith("top-1 flips") and r[1].startswith("1 flip at <= 0.012") for r in rep.rows())


def test_selection_overlap_ignores_order_and_gates_when_asked():
    assert set_overlap(np.array([[3, 1, 2], [1, 2, 9]]), np.array([[1, 2, 3], [1, 2, 3]])).tolist() == [1.0, 2 / 3]
    acc = ParityAccumulator(thresholds_for("fp32", min_selection=0.9))
    ref = {"logits": _logits(n=2), "topk_indices.0": np.array([[1, 2, 3], [1, 2, 3]]),
           "topk_indices.1": np.array([[4, 5], [4, 5]])}
    out = dict(ref, **{"topk_indices.1": np.array([[5, 4], [4, 7]])})
    acc.update(out, ref)
    rep = acc.report()
    assert rep.selection_per_block == [1.0, 0.75] and rep.selection_agreement == 0.75
    assert [c.name for c in rep.checks if not c.passed] == ["selection agreement (worst block)"]


def test_thresholds_follow_spec():
    assert thresholds_for("fp32").atol == 1e-4 and thresholds_for("fp32").min_top1 == 1.0
    assert (thresholds_for("fp16").min_cosine, thresholds_for("fp16").min_top1) == (0.999, 0.99)
    assert (thresholds_for("int8").min_cosine, thresholds_for("int8").min_top1) == (0.99, 0.97)
    assert thresholds_for("fp16", min_top1=0.5, atol=None).min_top1 == 0.5
    with pytest.raises(ValueError):
        thresholds_for("fp8")


@pytest.mark.parametrize("config", [DEIT_T_07, DEIT_T_05, DEIT_S_07, DEIT_S_05],
                         ids=["deit_t-r0.7", "deit_t-r0.5", "deit_s-r0.7", "deit_s-r0.5"])
def test_ci_parity_on_ort_cpu(tmp_path_factory, config):
    path = export_config(tmp_path_factory, config)
    meta = read_metadata(path)
    model, _ = reference_from_metadata(meta, path, warn_random=False)
    photos = image_files(photos_dir(tmp_path_factory))
    x = parity_inputs(meta.img_size, eval_transform(meta.data_config), photos, num_random=6, seed=0)
    assert len(x) == 14
    with OrtRunner(path, selection=True, threads=THREADS) as ort_runner, \
            TorchRunner(model, selection=True, threads=THREADS) as torch_runner:
        for batch in (1, 2, 7):
            rep = compare_runners(ort_runner, torch_runner, batched(x, batch), thresholds_for("fp32"))
            print(f"{config[0]} r={config[1]} batch {batch}: max abs {rep.max_abs_diff:.2e}, top-1 "
                  f"{rep.top1_agreement}, selection {rep.selection_per_block}")
            assert rep.samples == 14
            assert rep.max_abs_diff <= 1e-4, (batch, rep.max_abs_diff)
            assert rep.top1_agreement == 1.0, batch
            assert rep.passed
            assert len(rep.selection_per_block) == 9
            assert rep.selection_agreement >= 0.99, (batch, rep.selection_per_block)
