import pytest
import timm
import torch

from idlevit.models import IdleBlock, make_idle
from idlevit.models.selection import cls_attention_scores
from tests.conftest import tiny_vit


def _reference_scores(block, x):
    """Per-head [CLS] logits averaged over heads, straight from timm's qkv (docs/design.md §1.3)."""
    attn = block.attn
    B, N, C = x.shape
    qkv = attn.qkv(block.norm1(x)).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    return (q[:, :, :1] @ k.transpose(-2, -1)).squeeze(2).mean(1)[:, 1:]


def test_scores_match_head_mean_definition():
    model = tiny_vit()
    x = torch.randn(3, 17, 32)
    blk = model.blocks[1]
    scores = cls_attention_scores(blk.norm1(x), blk.attn.qkv.weight, blk.attn.qkv.bias, blk.attn.num_heads)
    torch.testing.assert_close(scores, _reference_scores(blk, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["idlevit_deit_tiny_patch16_224", "idlevit_deit_small_patch16_224"])
@pytest.mark.parametrize("ratio", [0.9, 0.7, 0.5, 0.3])
def test_masked_path_equals_eval_path(name, ratio):
    torch.manual_seed(1)
    model = timm.create_model(name, keep_ratio=ratio).eval()
    for batch in (1, 3):
        x = torch.randn(batch, 3, 224, 224)
        with torch.no_grad():
            ref = model(x)
            out = model.forward_masked(x)
        assert (out.logits - ref).abs().max().item() <= 1e-4
        assert len(out.attn_maps) == 9 and len(out.masks) == 9
        assert out.features.shape == (batch, model.embed_dim)
        assert out.attn_maps[0].shape == (batch, 197, 197)
        torch.testing.assert_close(out.attn_maps[0].sum(-1), torch.ones(batch, 197), atol=1e-5, rtol=0)
        ks = [k for k in model.keep_tokens if k is not None]
        assert [int(m[0].sum()) for m in out.masks] == [k + 1 for k in ks]


def test_masked_path_equals_eval_path_with_layerscale_and_qk_norm():
    model = tiny_vit(keep_ratio=0.6, init_values=0.1, qk_norm=True)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        assert (model.forward_masked(x).logits - model(x)).abs().max() <= 1e-4


def test_keep_ratio_one_is_bit_identical_to_backbone():
    torch.manual_seed(0)
    base = timm.create_model("deit_small_patch16_224").eval()
    idle = timm.create_model("idlevit_deit_small_patch16_224", keep_ratio=1.0).eval()
    idle.load_state_dict(base.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(base(x), idle(x))
    assert idle.keep_tokens == [None] * 12


def test_plain_timm_state_dict_loads_strict_and_keys_identical():
    base = timm.create_model("deit_tiny_patch16_224")
    idle = timm.create_model("idlevit_deit_tiny_patch16_224", keep_ratio=0.7)
    assert list(base.state_dict()) == list(idle.state_dict())
    idle.load_state_dict(base.state_dict(), strict=True)


def test_registered_names_and_kwargs():
    for name in ("idlevit_deit_tiny_patch16_224", "idlevit_deit_small_patch16_224",
                 "idlevit_deit_base_patch16_224", "idlevit_deit_base_patch16_384"):
        assert timm.is_model(name)
    m = timm.create_model("idlevit_deit_tiny_patch16_224", keep_ratios=[1.0] * 6 + [0.5] * 6)
    assert m.keep_tokens == [None] * 6 + [98] * 6
    assert m.pretrained_cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))


def test_make_idle_on_deit3_in_place_and_set_keep_ratio():
    model = timm.create_model("deit3_small_patch16_224", img_size=224)
    params_before = {k: v.clone() for k, v in model.state_dict().items()}
    out = make_idle(model, 0.7)
    assert out is model and isinstance(model.blocks[5], IdleBlock)
    assert model.keep_tokens[3:6] == [137] * 3
    assert all(torch.equal(params_before[k], v) for k, v in model.state_dict().items())
    model.set_keep_ratio(0.5)
    assert model.keep_tokens[3] == 98


def test_make_idle_rejects_unsupported_models():
    with pytest.raises(ValueError, match="one \\[CLS\\] token"):
        make_idle(timm.create_model("vit_small_patch16_224", class_token=False, global_pool="avg"), 0.7)
    with pytest.raises(ValueError, match="not a timm VisionTransformer"):
        make_idle(torch.nn.Linear(2, 2), 0.7)


def test_forward_with_selection_matches_forward():
    model = tiny_vit(keep_ratio=0.5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, selected = model.forward_with_selection(x)
        torch.testing.assert_close(logits, model(x))
    assert [s.shape[1] for s in selected] == [9, 5, 3]


def test_no_python_loop_over_batch_and_no_item(monkeypatch):
    """The hot path must not sync with the host: .item() / .tolist() would fail here."""
    model = tiny_vit(keep_ratio=0.5)

    def boom(*a, **k):
        raise AssertionError("host sync on the hot path")
    monkeypatch.setattr(torch.Tensor, "item", boom)
    monkeypatch.setattr(torch.Tensor, "tolist", boom)
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
