"""Executed MACs (measured with torch's FlopCounterMode), the paper's Table 1 convention and Token Labeling's hand count."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List

import torch
from torch.utils import flop_counter

from ..models.selection import query_folds_through_keys


@dataclass
class MacReport:
    model: str
    keep_ratio: float
    img_size: int
    gmacs_executed: float          # measured on the real eval forward, per image
    gmacs_formula: float           # analytic executed cost (2*s^2*C attention), for cross-checking
    gmacs_paper: float             # paper convention (2*s*n*C attention)
    tokens_per_block: List[int]    # tokens that run through each block, [CLS] included
    gmacs_token_labeling: float = 0.0  # Token Labeling's hand count (LV-ViT's published figures), s = K+1
    gmacs_reference: float = 0.0   # the method as published: keys of all tokens for the scores (analytic)
    method: str = "idlevit"        # "gtp": formula = everything executed, graph = its graph and propagation part
    gmacs_graph: float = 0.0       # GTP-ViT: token graph (n^2 C) and propagation matmuls, inside the formula

    def to_json(self) -> dict:
        return asdict(self)


# Every fused scaled-dot-product-attention kernel, each taking (B, H, L, E) query, key, value first. Not every
# torch registers all of them with its flop counter: on CPU, torch <= 2.14 runs SDPA as the unregistered
# `_scaled_dot_product_flash_attention_for_cpu`, whose attention would then count as zero MACs. The math
# variant needs no entry: it decomposes into matmuls, which are counted.
SDPA_FORWARD_OPS = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
                    "_scaled_dot_product_fused_attention_overrideable")
SDPA_BACKWARD_OPS = tuple(f"{name}_backward" for name in SDPA_FORWARD_OPS)


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def sdpa_flop_formulas() -> dict:
    """torch's own SDPA flop formulas for every SDPA kernel this torch has, registered or not."""
    aten = torch.ops.aten
    formulas = {getattr(aten, name): _sdpa_flops for name in SDPA_FORWARD_OPS if hasattr(aten, name)}
    formulas.update({getattr(aten, name): _sdpa_backward_flops for name in SDPA_BACKWARD_OPS if hasattr(aten, name)})
    return formulas


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """A quiet FlopCounterMode that counts attention whichever SDPA kernel torch picks."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=sdpa_flop_formulas())


def count_executed_macs(model: torch.nn.Module, img_size: int, batch: int = 1) -> float:
    """MACs per image of one eval forward, counted op by op (matmuls, convs, attention)."""
    x = torch.randn(batch, 3, img_size, img_size)
    with torch.no_grad(), flop_counter_mode() as counter:
        model(x)
    return counter.get_total_flops() / 2 / batch


def embed_macs(patch_embed: torch.nn.Module, img_size: int) -> int:
    """MACs of every convolution in the patch embedding for one image (one conv for DeiT, four for LV-ViT)."""
    total = 0

    def count(conv, _inputs, out):
        nonlocal total
        k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total += out.shape[1] * out.shape[2] * out.shape[3] * k

    convs = [m for m in patch_embed.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [conv.register_forward_hook(count) for conv in convs]
    try:
        with torch.no_grad():
            patch_embed(torch.zeros(1, 3, img_size, img_size))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def _dims(model):
    c = model.embed_dim
    n = model.patch_embed.num_patches + model.num_prefix_tokens
    hidden = model.blocks[0].mlp.fc1.out_features
    embed = embed_macs(model.patch_embed, int(model.patch_embed.img_size[0]))
    head = c * model.num_classes if model.num_classes else 0
    if isinstance(getattr(model, "aux_head", None), torch.nn.Linear):  # LV-ViT's dense head: every image token
        head += model.patch_embed.num_patches * c * model.num_classes
    return c, n, hidden, embed, head


def analytic_macs(model, convention: str = "executed") -> float:
    """MACs per image from the cost model.

    Plain block: 4NC^2 + 2NCh + 2N^2C. Idle block with s = K+1 selected of n tokens, by convention:
    - "executed" (what this implementation runs): scoring 2C^2 + nC (the [CLS] query folded through
      the key weights, see `cls_attention_scores`; nC^2 + C^2 with per-head q/k norms) + 4sC^2
      (q, k, v, proj) + 2sCh (MLP) + 2s^2C (attention);
    - "reference" (the method as published: keys of all n tokens for the [CLS] scores, reused by
      the attention): nC^2 + 3sC^2 + 2sCh + 2s^2C;
    - "paper" (Table 1's count): "reference" with 2snC attention instead of 2s^2C.
    """
    if convention not in ("executed", "reference", "paper"):
        raise ValueError(f"unknown MAC convention {convention!r}: use 'executed', 'reference' or 'paper'")
    c, n, hidden, embed, head = _dims(model)
    total = embed + head
    for blk, k in zip(model.blocks, model.keep_tokens):
        if k is None:
            total += 4 * n * c * c + 2 * n * c * hidden + 2 * n * n * c
            continue
        s = k + 1
        attn = 2 * s * s * c if convention != "paper" else 2 * s * n * c
        if convention == "executed":
            total += _scoring_macs(blk, n, c) + 4 * s * c * c + 2 * s * c * hidden + attn
        else:
            total += n * c * c + 3 * s * c * c + 2 * s * c * hidden + attn
    return total


def _scoring_macs(block, n: int, c: int) -> int:
    """[CLS] query (C^2), then either the query folded through the key weights (C^2) and one dot per token
    (nC), or, with per-head q/k norms, every token's key (nC^2)."""
    if query_folds_through_keys(getattr(block.attn, "q_norm", None), getattr(block.attn, "k_norm", None)):
        return 2 * c * c + n * c
    return c * c + n * c * c


def token_labeling_macs(model) -> float:
    """MACs per image as Token Labeling counts them for LV-ViT (their published GFLOPs, which the IdleViT
    paper quotes for LV-ViT-S at r = 1.0): stem convolutions plus, per block of s tokens, s * (4C^2 + 2Ch)
    for the linear layers, 2s^2C for attention and fixed per-element charges for biases, residuals,
    dropout (4), layer norm (5), GELU (8) and softmax (5 + 1 scale); classifier heads are not counted.
    An idle block is charged as a block of s = K+1 tokens (selection cost left out)."""
    c, n, hidden, embed, _ = _dims(model)
    heads = model.blocks[0].attn.num_heads
    per_token = 4 * c * c + 2 * c * hidden + 22 * c + 9 * hidden
    per_token_pair = 2 * c + 10 * heads
    return embed + sum(s * per_token + s * s * per_token_pair for s in tokens_per_block(model))


def tokens_per_block(model) -> List[int]:
    n = model.patch_embed.num_patches + model.num_prefix_tokens
    return [n if k is None else k + 1 for k in model.keep_tokens]


def gtp_analytic_macs(model, graph_work: bool = True) -> float:
    """MACs per image of GTP-ViT's eval forward: per block of N = n + 1 tokens, 4NC^2 (q, k, v, proj) + 2N^2C
    (attention) + 2(N - P)Ch (MLP on the tokens left); with `graph_work` also the semantic graph (n^2 C once,
    not for a spatial graph) and the propagation (n - P) P C (+ (n - P) P for the token scales)."""
    c, _, hidden, embed, head = _dims(model)
    g = model.gtp
    n = model.num_image_tokens
    total = embed + head + (n * n * c if graph_work and g.graph_type != "spatial" else 0)
    for tokens, p in zip(model.tokens_per_block(), g.num_prop):
        total += 4 * tokens * c * c + 2 * tokens * tokens * c + 2 * (tokens - p) * c * hidden
        if graph_work and p:
            total += (tokens - 1 - p) * p * (c + (1 if g.token_scale else 0))
    return total


def mac_report(model, model_name: str, keep_ratio: float, img_size: int) -> MacReport:
    if hasattr(model, "gtp"):
        formula = gtp_analytic_macs(model) / 1e9
        return MacReport(model=model_name, keep_ratio=1.0, img_size=img_size,
                         gmacs_executed=count_executed_macs(model, img_size) / 1e9, gmacs_formula=formula,
                         gmacs_paper=gtp_analytic_macs(model, graph_work=False) / 1e9, gmacs_reference=formula,
                         tokens_per_block=model.tokens_per_block(), method="gtp",
                         gmacs_graph=formula - gtp_analytic_macs(model, graph_work=False) / 1e9)
    return MacReport(
        model=model_name, keep_ratio=keep_ratio, img_size=img_size,
        gmacs_executed=count_executed_macs(model, img_size) / 1e9,
        gmacs_formula=analytic_macs(model, "executed") / 1e9,
        gmacs_paper=analytic_macs(model, "paper") / 1e9,
        gmacs_reference=analytic_macs(model, "reference") / 1e9,
        tokens_per_block=tokens_per_block(model),
        gmacs_token_labeling=token_labeling_macs(model) / 1e9,
    )
