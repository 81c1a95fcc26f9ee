import pytest
import torch

from idlevit.models.selection import select_tokens, selection_mask


def test_select_tokens_keeps_cls_and_top_scores_in_order():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [4.0, 3.0, 2.0, 1.0]])
    idx = select_tokens(scores, 2)
    assert idx.tolist() == [[0, 2, 4], [0, 1, 2]]
    mask = selection_mask(idx, 5)
    assert mask.tolist() == [[1, 0, 1, 0, 1], [1, 1, 1, 0, 0]]


def test_token_rows_take_and_put_back_whole_rows():
    from idlevit.models.selection import TokenRows
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 11, 5, generator=gen)
    idx = torch.stack([torch.randperm(11, generator=gen)[:4] for _ in range(3)])
    rows = torch.randn(3, 4, 5, generator=gen)
    want = x.clone()
    for b in range(3):
        want[b, idx[b]] = rows[b]
    token_rows = TokenRows(idx, 11)
    assert torch.equal(token_rows.scatter(x, rows), want)
    assert torch.equal(token_rows.gather(x), torch.stack([x[b, idx[b]] for b in range(3)]))
