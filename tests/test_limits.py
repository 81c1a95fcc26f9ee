"""Shared checks of user-given sizes and numbers: one wording for every tool, refused before allocation."""
import math

import pytest

from idlevit import limits
from idlevit.errors import UserError


@pytest.mark.parametrize("value", [0, -1, 2.0, True])
def test_batch_size_is_a_whole_positive_number(value):
    with pytest.raises(UserError, match=r"-b/--batch-size .* must be at least 1"):
        limits.check_batch_size(value)
    assert limits.check_batch_size(3) == 3


def test_count_names_flag_and_minimum():
    with pytest.raises(UserError, match=r"--iters 0 must be >= 1"):
        limits.check_count(0, "--iters")
    assert limits.check_count(0, "--warmup", minimum=0) == 0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(UserError, match="--lr .* is not a finite number"):
        limits.check_finite(value, "--lr", positive=True)


def test_finite_bounds():
    with pytest.raises(UserError, match="--lr 0 must be > 0"):
        limits.check_finite(0.0, "--lr", positive=True)
    with pytest.raises(UserError, match="--alpha -1 must be >= 0"):
        limits.check_finite(-1.0, "--alpha", minimum=0.0)
    assert limits.check_finite(None, "--clip-grad", positive=True) is None


@pytest.mark.parametrize("size,words", [(0, "not a positive image size"), (-16, "not a positive image size"),
                                         (17, "not a multiple of the patch size 16 .*pass 16 or 32"),
                                         (100, "pass 96 or 112")])
def test_image_size_is_a_positive_multiple_of_the_patch(size, words):
    with pytest.raises(UserError, match=words) as e:
        limits.check_image_size(size, 16)
    assert "\n" not in str(e.value) and "pass" in str(e.value)
    assert limits.check_image_size(224, 16) == 224


def test_forward_estimate_grows_with_tokens_and_batch():
    deit_s = dict(patch_size=16, embed_dim=384, depth=12, num_heads=6)
    base = limits.vit_forward_bytes(224, **deit_s)
    assert 80e6 < base < 150e6                         # 22 M weights plus one block's activations, fp32
    per_image = limits.vit_forward_bytes(224, batch=2, **deit_s) - base
    assert per_image > 3 * 224 * 224 * 4                # the input and at least the attention maps
    assert limits.vit_forward_bytes(224, batch=32, **deit_s) == base + 31 * per_image
    assert limits.vit_forward_bytes(100_000, **deit_s) > 2 ** 40   # ~39 M tokens: the (N x N) maps alone


def test_fits_memory_compares_with_what_is_available(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 2 ** 30)
    limits.check_fits_memory(2 ** 29, "half a GiB", "pass less")
    with pytest.raises(UserError, match=r"big needs about 2.0 GiB of memory, more than the 1.0 GiB available: pass less"):
        limits.check_fits_memory(2 ** 31, "big", "pass less")
    monkeypatch.setattr(limits, "available_memory", lambda: None)   # unknown: no refusal
    limits.check_fits_memory(2 ** 50, "huge", "pass less")


def test_available_memory_is_positive_here():
    free = limits.available_memory()
    assert free is None or free > 0
