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
    token_rows = TokenRows.of_tokens(idx, 11)
    assert torch.equal(token_rows.scatter(x, rows), want)
    assert torch.equal(token_rows.gather(x), torch.stack([x[b, idx[b]] for b in range(3)]))


def test_cls_and_image_token_rows_are_the_rows_of_with_cls():
    from idlevit.models.selection import TokenRows, with_cls
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 9, 4, generator=gen)
    top = torch.stack([torch.randperm(8, generator=gen)[:5] for _ in range(3)])
    short = TokenRows.of_cls_and_image_tokens(top, 9)
    full = TokenRows.of_tokens(with_cls(top), 9)
    assert torch.equal(short.flat, full.flat) and short.rows_per_item == 6
    assert torch.equal(short.gather(x)[:, 0], x[:, 0])
    rows = torch.randn(3, 6, 4, generator=gen)
    assert torch.equal(short.scatter(x, rows), full.scatter(x, rows))


def test_ranking_only_scores_differ_from_the_logits_by_one_constant_and_scale_per_image():
    from tests.conftest import tiny_vit
    from idlevit.models.selection import cls_attention_scores
    blk = tiny_vit().blocks[1]
    torch.nn.init.normal_(blk.attn.qkv.bias)          # a [CLS]-key bias term that is not zero
    xn = blk.norm1(torch.randn(2, 17, 32))
    args = (xn, blk.attn.qkv.weight, blk.attn.qkv.bias, blk.attn.num_heads)
    with torch.no_grad():
        full, rank = cls_attention_scores(*args), cls_attention_scores(*args, ranking_only=True)
    shift = full * blk.attn.num_heads - rank                # (B, N-1): one value per image
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(shift, torch.zeros_like(shift))
    assert torch.equal(full.argsort(dim=1, descending=True), rank.argsort(dim=1, descending=True))
