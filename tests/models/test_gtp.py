"""GTP-ViT: the eval forward equals a plain reference written here from the paper's definition (Xu et al.,
WACV 2024, arXiv 2311.03035: token graph, MixedAttnMax selection, GraphProp), with loops and not from our
model code; settings are checked once; plain DeiT checkpoints load strictly."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

import idlevit.models.gtp_vit  # noqa: F401  (registers the gtp_* models)
from idlevit.errors import UserError
from idlevit.factory import create_idlevit, model_data_config
from idlevit.images import eval_transform
from idlevit.runtime.inputs import photos_array

TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, num_classes=10)


def _ln(x, state, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], state[prefix + "weight"], state[prefix + "bias"], eps)


def _reference_graph(tokens, graph_type, k, side):
    """Normalised adjacency as nested lists: K nearest cosine neighbours per row (directed), the
    8-neighbourhood on the grid, their union for "mixed", then A_ij / sqrt(d_i d_j) with row degrees."""
    n = tokens.shape[0]
    unit = tokens / tokens.norm(dim=-1, keepdim=True)
    sim = (unit @ unit.T).tolist()
    adj = [[0.0] * n for _ in range(n)]
    if graph_type in ("semantic", "mixed"):
        for i in range(n):
            others = sorted((j for j in range(n) if j != i), key=lambda j: -sim[i][j])
            for j in others[:k]:
                adj[i][j] = 1.0
    if graph_type in ("spatial", "mixed"):
        for i in range(n):
            for j in range(n):
                if i != j and abs(i // side - j // side) <= 1 and abs(i % side - j % side) <= 1:
                    adj[i][j] = 1.0
    degree = [sum(row) for row in adj]
    return [[adj[i][j] / math.sqrt(degree[i] * degree[j]) for j in range(n)] for i in range(n)]


def reference_gtp(state, image, heads, num_prop, k, alpha, graph_type, token_scale, eps=1e-6):
    """Logits of one image (3, H, W) and, per block, the (kept, propagated) image-token indices."""
    patch = state["patch_embed.proj.weight"].shape[-1]
    x = F.conv2d(image[None], state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch)
    side = x.shape[-1]
    x = x.flatten(2)[0].T                                                  # (n, C)
    x = torch.cat([state["cls_token"][0], x]) + state["pos_embed"][0]     # (N, C)
    graph = _reference_graph(x[1:], graph_type, k, side)
    scales = [1.0] * x.shape[0]
    depth = len(num_prop)
    chosen = []
    for b in range(depth):
        p = f"blocks.{b}."
        N, C = x.shape
        d = C // heads
        qkv = F.linear(_ln(x, state, p + "norm1.", eps), state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"])
        probs, out = [], []
        for h in range(heads):
            q, key, v = (qkv[:, (part * heads + h) * d:(part * heads + h + 1) * d] for part in range(3))
            logits = q @ key.T / math.sqrt(d)
            if token_scale:
                logits = logits + torch.tensor([math.log(s) for s in scales])
            probs.append(logits.softmax(-1))
            out.append(probs[-1] @ v)
        x = x + F.linear(torch.cat(out, -1), state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        if num_prop[b] > 0:
            n = N - 1
            score = []
            for i in range(1, N):
                self_attn = max(probs[h][i, i].item() for h in range(heads))
                received = max(probs[h][:, i].sum().item() for h in range(heads))
                score.append(self_attn * received)
            order = sorted(range(n), key=lambda i: -score[i])
            kept, prop = order[:n - num_prop[b]], order[n - num_prop[b]:]
            chosen.append((kept, prop))
            rows = [x[0]]
            new_scales = [scales[0]]
            for i in kept:
                row, s = x[i + 1].clone(), scales[i + 1]
                for j in prop:
                    row = row + alpha * graph[i][j] * x[j + 1]
                    s = s + alpha * graph[i][j] * scales[j + 1]
                rows.append(row)
                new_scales.append(s)
            x, scales = torch.stack(rows), new_scales
            graph = [[graph[i][j] for j in kept] for i in kept]
        else:
            chosen.append(None)
        hidden = F.gelu(F.linear(_ln(x, state, p + "norm2.", eps), state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
        x = x + F.linear(hidden, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    cls = _ln(x[:1], state, "norm.", eps)
    return F.linear(cls, state["head.weight"], state["head.bias"])[0], chosen


def _check_against_reference(model, images, heads):
    state = model.state_dict()
    g = model.gtp
    with torch.no_grad():
        got, indices = model.forward_with_propagation(images)
        dense = timm.create_model("deit_tiny_patch16_224", pretrained=False, **_shape_of(model))
        dense.load_state_dict(state, strict=True)
        plain = dense.eval()(images)
        for b in range(images.shape[0]):
            want, chosen = reference_gtp(state, images[b], heads, list(g.num_prop), g.num_neighbours, g.alpha,
                                         g.graph_type, g.token_scale)
            assert (got[b] - want).abs().max().item() <= 1e-4
            assert got[b].argmax().item() == want.argmax().item()
            for block, (ours, theirs) in enumerate(zip(indices, chosen)):
                if theirs is None:
                    assert ours is None
                    continue
                assert ours[0][b].tolist() == theirs[0], f"block {block} kept other tokens"
                assert sorted(ours[1][b].tolist()) == sorted(theirs[1]), f"block {block} propagated other tokens"
    assert (got - plain).abs().max().item() > 1e-3   # propagation changed the output: the test covers it


def _shape_of(model):
    return dict(img_size=model.patch_embed.img_size[0], patch_size=model.patch_embed.patch_size[0],
                embed_dim=model.embed_dim, depth=len(model.blocks), num_heads=model.blocks[0].attn.num_heads,
                num_classes=model.num_classes)


@pytest.mark.parametrize("settings", [
    dict(),                                                                  # the defaults, P = 2 below
    dict(graph_type="spatial", token_scale=False, alpha=0.4),
    dict(graph_type="semantic", num_neighbours=3, alpha=1.0),
    dict(num_prop_list=[0, 3, 2, 4], num_neighbours=5),
])
def test_tiny_forward_equals_the_plain_reference(settings):
    settings = dict(settings)
    num_prop = settings.pop("num_prop_list", 2)
    torch.manual_seed(1)
    model = timm.create_model("gtp_deit_tiny_patch16_224", num_prop=num_prop, **TINY, **settings).eval()
    with torch.no_grad():   # larger weights than timm's init, so that attention and selection are not flat
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    _check_against_reference(model, torch.randn(2, 3, 32, 32), heads=TINY["num_heads"])


@pytest.mark.parametrize("settings", [dict(), dict(num_prop=4, graph_type="spatial", token_scale=False)])
def test_deit_s_forward_equals_the_plain_reference_on_a_photo(settings):
    torch.manual_seed(0)
    model = timm.create_model("gtp_deit_small_patch16_224", **settings).eval()
    x = torch.from_numpy(photos_array(eval_transform(model_data_config(model)), ["astronaut"]))
    _check_against_reference(model, x, heads=6)


def test_defaults_and_strict_deit_checkpoint(tmp_path):
    torch.manual_seed(0)
    plain = timm.create_model("deit_tiny_patch16_224", **TINY)
    path = tmp_path / "deit_t.pth"
    torch.save({"model": plain.state_dict()}, path)
    model, source = create_idlevit("gtp_deit_tiny_patch16_224", ckpt=str(path), num_prop=3, **TINY)
    assert source.ckpt_sha256 is not None
    assert set(model.state_dict()) == set(plain.state_dict())
    assert model.tokens_per_block() == [17, 14, 11, 8]
    g = timm.create_model("gtp_deit_small_patch16_224").gtp
    assert (g.num_prop, g.num_neighbours, g.alpha, g.graph_type, g.token_scale, g.sparsity) == \
        ((8,) * 12, 8, 0.1, "mixed", True, 1.0)


def test_tokens_per_block_and_any_timm_vit_name():
    model, _ = create_idlevit("gtp_vit_tiny_patch16_224", num_prop=[4] * 6 + [8] * 6, warn_random=False)
    assert model.tokens_per_block() == [197, 193, 189, 185, 181, 177, 173, 165, 157, 149, 141, 133]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("kwargs, text", [
    (dict(num_prop=5), "removes 20 of 16 image tokens"),
    (dict(num_prop=[1, 2]), "one per block"),
    (dict(num_neighbours=16), "num_neighbours=16"),
    (dict(graph_type="knn"), "graph_type='knn' is unknown"),
    (dict(sparsity=0.0), "sparsity=0.0 is not in (0, 1]"),
    (dict(alpha=-1), "alpha=-1"),
])
def test_bad_settings_are_one_user_error(kwargs, text):
    with pytest.raises(UserError) as info:
        create_idlevit("gtp_deit_tiny_patch16_224", warn_random=False, **TINY, **{"num_prop": 2, **kwargs})
    assert text in str(info.value)


def test_sparsity_runs_eagerly_and_changes_the_output():
    torch.manual_seed(0)
    dense = timm.create_model("gtp_deit_tiny_patch16_224", num_prop=2, **TINY).eval()
    sparse = timm.create_model("gtp_deit_tiny_patch16_224", num_prop=2, sparsity=0.6, **TINY).eval()
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (dense(x) - sparse(x)).abs().max().item() > 1e-4


def test_keep_ratios_are_refused_for_gtp():
    with pytest.raises(UserError, match="no keep-ratio schedule"):
        create_idlevit("gtp_deit_tiny_patch16_224", keep_ratios=[0.5] * 4, **TINY)
