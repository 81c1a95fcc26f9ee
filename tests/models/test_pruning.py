"""Token-pruning baseline: same selection as IdleViT, unselected tokens dropped."""
import torch

from idlevit.models.idle_block import idle_block_forward
from idlevit.models.pruning import make_prune, prune_tokens
from idlevit.models.selection import gather_tokens
from tests.conftest import tiny_vit
from tests.training.conftest import _one_thread  # noqa: F401  (autouse: one torch thread)


def _tokens_per_block(model, x):
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1])) for b in model.blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_keep_ratio_one_is_the_backbone():
    x = torch.randn(2, 3, 32, 32)
    plain = tiny_vit(keep_ratio=1.0)
    pruned = make_prune(tiny_vit(keep_ratio=0.5), keep_ratio=1.0)
    with torch.no_grad():
        assert torch.equal(pruned(x), plain(x))


def test_tokens_are_dropped_stage_by_stage():
    model = make_prune(tiny_vit(keep_ratio=1.0), keep_ratio=0.5)       # 16 image tokens, K = 8, 4, 2
    assert all(blk.keep_tokens is None for blk in model.blocks)          # no idling underneath
    assert _tokens_per_block(model, torch.randn(2, 3, 32, 32)) == [17, 9, 5, 3]
    deeper = make_prune(tiny_vit(keep_ratio=1.0, depth=8), keep_ratio=0.5)
    assert _tokens_per_block(deeper, torch.randn(1, 3, 32, 32)) == [17, 17, 9, 9, 5, 5, 3, 3]


def test_first_pruned_block_equals_the_idle_block_on_the_selected_tokens():
    idle = tiny_vit(keep_ratio=0.5)
    x = torch.randn(2, 17, 32)
    blk = idle.blocks[1]
    with torch.no_grad():
        out, idx = idle_block_forward(blk, x, blk.keep_tokens, return_indices=True)
        kept = blk.__class__.__mro__[1].forward(blk, prune_tokens(blk, x, blk.keep_tokens))  # timm Block.forward
    assert torch.allclose(gather_tokens(out, idx), kept, atol=1e-5)


def test_masked_forward_is_the_eval_forward_and_trains():
    model = make_prune(tiny_vit(keep_ratio=1.0), keep_ratio=0.7)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.forward_masked(x).logits, model(x))
    out = model.forward_masked(x)
    assert out.attn_maps == [] and out.features.shape == (2, 32)
    out.logits.sum().backward()
    assert model.blocks[3].mlp.fc1.weight.grad.abs().sum() > 0
    assert set(model.state_dict()) == set(tiny_vit().state_dict())     # same keys: checkpoints load unchanged
