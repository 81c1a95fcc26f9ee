import pytest
import torch

from idlevit.models.selection import (check_keep_ratio, keep_ratio_schedule, select_tokens, selection_mask,
                                      tokens_to_keep)


def test_deit_schedule_four_stages():
    r = 0.7
    assert keep_ratio_schedule(12, r) == [1.0] * 3 + [r] * 3 + [r ** 2] * 3 + [r ** 3] * 3


def test_deit_small_k_values_at_0_7():
    ks = [tokens_to_keep(196, x) for x in keep_ratio_schedule(12, 0.7)]
    assert ks == [None] * 3 + [137] * 3 + [96] * 3 + [67] * 3


@pytest.mark.parametrize("depth,expected_plain", [(10, 2), (6, 2), (5, 1)])  # round(depth/4)
def test_schedule_depth_not_divisible_by_four(depth, expected_plain):
    sched = keep_ratio_schedule(depth, 0.5)
    assert len(sched) == depth
    assert sched[:expected_plain] == [1.0] * expected_plain
    assert sched[expected_plain] == 0.5
    assert sched == sorted(sched, reverse=True)


def test_explicit_ratios_and_errors():
    assert keep_ratio_schedule(3, keep_ratios=[1.0, 0.5, 0.25]) == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="one ratio per block"):
        keep_ratio_schedule(4, keep_ratios=[1.0, 0.5])
    for bad in (0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
            check_keep_ratio(bad)


def test_keep_ratio_one_is_plain():
    assert all(tokens_to_keep(196, x) is None for x in keep_ratio_schedule(12, 1.0))


def test_select_tokens_keeps_cls_and_top_scores_in_order():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [4.0, 3.0, 2.0, 1.0]])
    idx = select_tokens(scores, 2)
    assert idx.tolist() == [[0, 2, 4], [0, 1, 2]]
    mask = selection_mask(idx, 5)
    assert mask.tolist() == [[1, 0, 1, 0, 1], [1, 1, 1, 0, 0]]


def test_merge_rows_equals_a_row_scatter():
    """The export form of the scatter (row-map ScatterElements + one row Gather) copies exactly."""
    from idlevit.models.selection import merge_rows, take_rows, flat_rows
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 11, 5, generator=gen)
    idx = torch.stack([torch.randperm(11, generator=gen)[:4] for _ in range(3)])
    rows = torch.randn(3, 4, 5, generator=gen)
    want = x.clone()
    for b in range(3):
        want[b, idx[b]] = rows[b]
    assert torch.equal(merge_rows(x, idx, rows), want)
    assert torch.equal(take_rows(x, flat_rows(idx, 11), idx.shape[1]), torch.stack([x[b, idx[b]] for b in range(3)]))
