import pytest
import torch

from idlevit.models.selection import select_tokens, selection_mask


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
