"""LV-ViT backbone: release checkpoint layouts load strictly, and the eval output equals a plain
reference forward written here from the Token Labeling / IdleViT papers (not from our model code)."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from idlevit.factory import create_idlevit, model_data_config
from idlevit.images import eval_transform
from idlevit.runtime.inputs import photos_array

LVVIT_S = dict(dim=384, depth=16, heads=6, mlp=1152, classes=1000)


def _release_layout(dim, depth, heads, mlp, classes, stem=64, patch=16):
    """Key -> shape of a state dict saved from LV-ViT as released (Token Labeling `lvvit_s`, and the
    IdleViT authors' `IdleLVViT(p_emb='4_2', return_dense=True)`, which has the same modules)."""
    grid = 224 // patch
    shapes = {"cls_token": (1, 1, dim), "pos_embed": (1, grid * grid + 1, dim)}
    for i, (cin, k) in enumerate([(3, 7), (stem, 3), (stem, 3)], start=1):
        shapes[f"patch_embed.conv{i}.weight"] = (stem, cin, k, k)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"patch_embed.bn{i}.{stat}"] = (stem,)
        shapes[f"patch_embed.bn{i}.num_batches_tracked"] = ()
    shapes["patch_embed.proj.weight"] = (dim, stem, patch // 2, patch // 2)
    shapes["patch_embed.proj.bias"] = (dim,)
    for b in range(depth):
        p = f"blocks.{b}."
        shapes.update({
            p + "norm1.weight": (dim,), p + "norm1.bias": (dim,),
            p + "attn.qkv.weight": (3 * dim, dim),                       # no qkv bias
            p + "attn.proj.weight": (dim, dim), p + "attn.proj.bias": (dim,),
            p + "norm2.weight": (dim,), p + "norm2.bias": (dim,),
            p + "mlp.fc1.weight": (mlp, dim), p + "mlp.fc1.bias": (mlp,),
            p + "mlp.fc2.weight": (dim, mlp), p + "mlp.fc2.bias": (dim,),
        })
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,),
                   "head.weight": (classes, dim), "head.bias": (classes,),
                   "aux_head.weight": (classes, dim), "aux_head.bias": (classes,)})
    return shapes


def _seeded_state(shapes, seed=0):
    """Seeded tensors with release-like scales (BN variances positive, norms near 1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif ".bn" in key and key.endswith("weight") or "norm" in key and key.endswith("weight"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(".weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=g)
    return state


def _reference_lvvit(state, x, depth, heads, keep_tokens, skip_lam=2.0):
    """LV-ViT eval forward from the papers, one image at a time, with IdleViT's idling:
    an idle block ranks image tokens by the head-mean [CLS] attention logit, runs [CLS] + the
    top-K tokens through the block as a sequence of their own, and leaves the rest untouched."""
    def bn(h, i):
        p = f"patch_embed.bn{i}."
        return F.batch_norm(h, state[p + "running_mean"], state[p + "running_var"], state[p + "weight"],
                            state[p + "bias"], training=False, eps=1e-5)

    def ln(h, p):
        return F.layer_norm(h, h.shape[-1:], state[p + "weight"], state[p + "bias"], eps=1e-5)

    def attention(h, p):                                     # h: (S, C), one image
        S, C = h.shape
        q, k, v = (h @ state[p + "attn.qkv.weight"].T).reshape(S, 3, heads, C // heads).permute(1, 2, 0, 3)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // heads), dim=-1)
        out = (w @ v).transpose(0, 1).reshape(S, C)
        return out @ state[p + "attn.proj.weight"].T + state[p + "attn.proj.bias"]

    def mlp(h, p):
        h = F.gelu(h @ state[p + "mlp.fc1.weight"].T + state[p + "mlp.fc1.bias"])
        return h @ state[p + "mlp.fc2.weight"].T + state[p + "mlp.fc2.bias"]

    h = F.relu(bn(F.conv2d(x, state["patch_embed.conv1.weight"], stride=2, padding=3), 1))
    h = F.relu(bn(F.conv2d(h, state["patch_embed.conv2.weight"], padding=1), 2))
    h = F.relu(bn(F.conv2d(h, state["patch_embed.conv3.weight"], padding=1), 3))
    h = F.conv2d(h, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=8)
    tokens = h.flatten(2).transpose(1, 2)
    tokens = torch.cat([state["cls_token"].expand(len(x), -1, -1), tokens], 1) + state["pos_embed"]
    outs = []
    for t in tokens:                                         # (N, C)
        for b in range(depth):
            p = f"blocks.{b}."
            sel = torch.arange(t.shape[0])
            if keep_tokens[b] is not None:
                n = ln(t, p + "norm1.")
                C = n.shape[-1]
                wq, wk = state[p + "attn.qkv.weight"][:C], state[p + "attn.qkv.weight"][C:2 * C]
                q_cls = (n[0] @ wq.T).reshape(heads, -1)
                keys = (n[1:] @ wk.T).reshape(-1, heads, C // heads)
                scores = (keys * q_cls).sum(-1).mean(-1)
                sel = torch.cat([torch.zeros(1, dtype=torch.long), scores.topk(keep_tokens[b]).indices + 1])
            s = t[sel]
            s = s + attention(ln(s, p + "norm1."), p) / skip_lam
            s = s + mlp(ln(s, p + "norm2."), p) / skip_lam
            t = t.clone()
            t[sel] = s
        t = ln(t, "norm.")
        dense = t[1:] @ state["aux_head.weight"].T + state["aux_head.bias"]
        outs.append(t[0] @ state["head.weight"].T + state["head.bias"] + 0.5 * dense.max(0).values)
    return torch.stack(outs)


@pytest.fixture(scope="module")
def lvvit_s_state():
    return _seeded_state(_release_layout(**LVVIT_S))


@pytest.mark.parametrize("keep_ratio", [0.7, 1.0])
def test_authors_release_loads_strictly_and_matches_reference_on_photos(tmp_path, lvvit_s_state, keep_ratio):
    """IdleViT authors' release format: {'model': state_dict of IdleLVViT}."""
    path = tmp_path / "idlevit_lvvit_small_ratio0.7.pth"
    torch.save({"model": lvvit_s_state}, path)
    model, source = create_idlevit("idlevit_lvvit_s", keep_ratio=keep_ratio, ckpt=str(path))
    assert source.ckpt_sha256 is not None
    x = torch.from_numpy(photos_array(eval_transform(model_data_config(model)),
                                      ["astronaut", "coffee", "chelsea", "rocket"]))
    with torch.no_grad():
        got = model(x)
        want = _reference_lvvit(lvvit_s_state, x, LVVIT_S["depth"], LVVIT_S["heads"], model.keep_tokens)
    assert (got - want).abs().max().item() <= 1e-4
    assert torch.equal(got.argmax(1), want.argmax(1))
    if keep_ratio < 1.0:   # idling changed the output, so the comparison above covered the idle path
        with torch.no_grad():
            full = _reference_lvvit(lvvit_s_state, x, LVVIT_S["depth"], LVVIT_S["heads"], [None] * 16)
        assert (got - full).abs().max().item() > 1e-3


def test_token_labeling_release_loads_strictly(tmp_path, lvvit_s_state):
    """Token Labeling's lvvit_s-26M-224-83.3.pth.tar is a raw state dict of the same modules."""
    path = tmp_path / "lvvit_s-26M-224-83.3.pth.tar"
    torch.save(lvvit_s_state, path)
    model, _ = create_idlevit("idlevit_lvvit_s", keep_ratio=0.7, ckpt=str(path))
    assert set(model.state_dict()) == set(lvvit_s_state)


def test_lvvit_m_layout_matches():
    model = timm.create_model("idlevit_lvvit_m", keep_ratio=0.7)
    want = _release_layout(dim=512, depth=20, heads=8, mlp=1536, classes=1000)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == want
    assert model.keep_tokens == [None] * 5 + [137] * 5 + [96] * 5 + [67] * 5
    assert model_data_config(model)["crop_pct"] == 1.0          # Token Labeling evaluates M uncropped


def test_lvvit_s_schedule_and_size():
    model = timm.create_model("idlevit_lvvit_s", keep_ratio=0.7)
    assert model.keep_tokens == [None] * 4 + [137] * 4 + [96] * 4 + [67] * 4
    assert sum(p.numel() for p in model.parameters()) == 26_151_824   # Token Labeling's 26.15 M
    cfg = model_data_config(model)
    assert cfg["crop_pct"] == 0.9 and cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)


def _authors_deit_layout(dim, depth, mlp, classes=1000, patch=16):
    """Keys of the IdleViT authors' IdleVisionTransformer (their DeiT releases, {'model': ...})."""
    keys = {"cls_token": (1, 1, dim), "pos_embed": (1, 197, dim),
            "patch_embed.proj.weight": (dim, 3, patch, patch), "patch_embed.proj.bias": (dim,)}
    for b in range(depth):
        p = f"blocks.{b}."
        keys.update({p + "norm1.weight": (dim,), p + "norm1.bias": (dim,),
                     p + "attn.qkv.weight": (3 * dim, dim), p + "attn.qkv.bias": (3 * dim,),
                     p + "attn.proj.weight": (dim, dim), p + "attn.proj.bias": (dim,),
                     p + "norm2.weight": (dim,), p + "norm2.bias": (dim,),
                     p + "mlp.fc1.weight": (mlp, dim), p + "mlp.fc1.bias": (mlp,),
                     p + "mlp.fc2.weight": (dim, mlp), p + "mlp.fc2.bias": (dim,)})
    keys.update({"norm.weight": (dim,), "norm.bias": (dim,),
                 "head.weight": (classes, dim), "head.bias": (classes,)})
    return keys


def test_authors_deit_releases_are_timm_deit_layout(tmp_path):
    layout = _authors_deit_layout(dim=384, depth=12, mlp=1536)
    path = tmp_path / "idlevit_deit_small_ratio0.7.pth"
    torch.save({"model": _seeded_state(layout)}, path)
    model, _ = create_idlevit("idlevit_deit_small_patch16_224", keep_ratio=0.7, ckpt=str(path))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == layout


@pytest.mark.parametrize("ratio", [0.7, 0.5])
def test_masked_training_path_equals_eval_path(ratio):
    torch.manual_seed(1)
    model = timm.create_model("idlevit_lvvit_s", keep_ratio=ratio).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = model.forward_masked(x)
        torch.testing.assert_close(out.logits, model(x), atol=1e-4, rtol=1e-4)
    last = model.keep_tokens[-1] + 1
    assert len(out.masks) == 12 and out.masks[-1].sum(1).tolist() == [float(last)] * 2


def test_residual_scaling_adds_no_parameters():
    plain = timm.create_model("deit_small_patch16_224").blocks[0]
    lv = timm.create_model("lvvit_s").blocks[0]
    assert type(lv) is type(plain)
    assert [n for n, _ in lv.named_parameters() if "ls" in n] == []
