"""Idle block forward passes: the gathered eval path, the masked training path and `IdleBlock` itself."""
import pytest
import timm
import torch
from timm.models.vision_transformer import Block

from idlevit.models import IdleBlock, idle_block_forward, masked_block_forward
from tests.conftest import tiny_vit


def test_idle_tokens_pass_through_unchanged():
    model = tiny_vit(keep_ratio=0.5)
    blk = model.blocks[1]
    assert blk.keep_tokens == 8
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        out, idx = blk.forward_masked(x)[0], None
        out, idx = idle_block_forward(blk, x, blk.keep_tokens, return_indices=True)
    assert idx.shape == (2, 9) and (idx[:, 0] == 0).all()
    sel = torch.zeros(2, 17, dtype=torch.bool).scatter(1, idx, True)
    assert torch.equal(out[~sel], x[~sel])
    assert not torch.allclose(out[sel], x[sel])


def test_idle_block_equals_reference_on_selected_subset():
    """Selected tokens attend only to selected tokens: compare with timm's block on the subset."""
    model = tiny_vit(keep_ratio=0.5)
    blk = model.blocks[2]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        out, idx = idle_block_forward(blk, x, blk.keep_tokens, return_indices=True)
        for b in range(2):
            sub = x[b:b + 1, idx[b]]
            ref = timm.models.vision_transformer.Block.forward(blk, sub)
            torch.testing.assert_close(out[b, idx[b]], ref[0], atol=1e-5, rtol=1e-5)


def test_block_without_k_is_timm_block():
    blk = tiny_vit(keep_ratio=0.5).blocks[0]
    assert isinstance(blk, IdleBlock) and blk.keep_tokens is None
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        assert torch.equal(blk(x), Block.forward(blk, x))


def test_attention_mask_falls_back_to_the_full_block():
    blk = tiny_vit(keep_ratio=0.5).blocks[1]
    x = torch.randn(2, 17, 32)
    mask = torch.zeros(2, 1, 17, 17, dtype=torch.bool)
    mask[..., :9] = True
    with torch.no_grad():
        assert torch.equal(blk(x, attn_mask=mask), Block.forward(blk, x, attn_mask=mask))
        assert not torch.allclose(blk(x), blk(x, attn_mask=mask))


def test_masked_path_equals_gathered_path_in_one_block():
    blk = tiny_vit(keep_ratio=0.5).blocks[2]
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        out, idx = idle_block_forward(blk, x, blk.keep_tokens, return_indices=True)
        masked, w_map, mask = masked_block_forward(blk, x, blk.keep_tokens)
    torch.testing.assert_close(masked, out, atol=1e-5, rtol=1e-5)
    assert w_map.shape == (3, 17, 17) and mask.shape == (3, 17)
    assert mask.sum(1).tolist() == [blk.keep_tokens + 1] * 3
    assert torch.equal(mask.bool(), torch.zeros(3, 17, dtype=torch.bool).scatter(1, idx, True))


def test_masked_path_without_k_is_the_full_block():
    blk = tiny_vit(keep_ratio=0.5).blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        out, w_map, mask = masked_block_forward(blk, x, None)
        torch.testing.assert_close(out, Block.forward(blk, x), atol=1e-5, rtol=1e-5)
    assert torch.equal(mask, torch.ones(2, 17))
    torch.testing.assert_close(w_map.sum(-1), torch.ones(2, 17))


def test_attention_map_conventions_differ_and_unknown_is_refused():
    blk = tiny_vit(keep_ratio=0.5).blocks[1]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        _, paper, _ = masked_block_forward(blk, x, blk.keep_tokens, "mean_softmax")
        _, authors, _ = masked_block_forward(blk, x, blk.keep_tokens, "softmax_mean_logits")
    torch.testing.assert_close(paper.sum(-1), torch.ones(2, 17))
    torch.testing.assert_close(authors.sum(-1), torch.ones(2, 17))
    assert not torch.allclose(paper, authors)
    with pytest.raises(ValueError, match="unknown attn_map 'max'"):
        masked_block_forward(blk, x, blk.keep_tokens, "max")
