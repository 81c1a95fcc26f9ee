"""Graph-based token propagation (GTP-ViT), training-free token reduction in pure torch.

Paper: "GTP-ViT: Efficient Vision Transformers via Graph-based Token Propagation", Xu et al., WACV 2024,
https://arxiv.org/abs/2311.03035

Every block removes its P least important image tokens after attention and adds each one's features
(weighted by a token graph built once from the embedded image) into its graph neighbours. Written for
export: constant-K TopK, whole-row Gathers and broadcasts only (no NonZero, no scatter, no kthvalue).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from timm.models.vision_transformer import Block

from .idle_block import _finish_attention
from .selection import flat_rows, take_rows

GRAPH_TYPES = ("spatial", "semantic", "mixed")


def spatial_graph(side: int) -> torch.Tensor:
    """0/1 adjacency (side^2, side^2) of the 8-neighbourhood on a side x side grid, self excluded."""
    rows = torch.arange(side * side) // side
    cols = torch.arange(side * side) % side
    near = ((rows[:, None] - rows[None, :]).abs() <= 1) & ((cols[:, None] - cols[None, :]).abs() <= 1)
    return near.float() - torch.eye(side * side)


def semantic_graph(tokens: torch.Tensor, num_neighbours: int) -> torch.Tensor:
    """0/1 adjacency (B, n, n): each token's `num_neighbours` most cosine-similar tokens (directed).

    Each row keeps the entries at or above its (K+1)-th largest similarity (itself included), then the
    diagonal is subtracted, as the authors' kthvalue threshold does. The norm is written as sqrt(sum(x^2)):
    ReduceL2 trips ONNX Runtime's symbolic shape inference.
    """
    unit = tokens / torch.sqrt((tokens * tokens).sum(-1, keepdim=True))
    sim = unit @ unit.transpose(1, 2)
    threshold = torch.topk(sim, num_neighbours + 1, dim=-1, largest=True, sorted=True).values[..., num_neighbours:]
    eye = torch.eye(sim.shape[-1], dtype=sim.dtype, device=sim.device)
    # a Where of constants, not a Cast of the mask: fp16 converters retype a Cast's output but not its `to`
    return torch.where(sim >= threshold, 1.0, 0.0).to(sim.dtype) - eye


def token_graph(tokens: torch.Tensor, graph_type: str, num_neighbours: int,
                spatial: Optional[torch.Tensor]) -> torch.Tensor:
    """Normalised graph G (B, n, n) over the image tokens: G_ij = A_ij / sqrt(d_i d_j), d the row degrees.

    "mixed" is the elementwise OR (max) of the semantic and spatial adjacencies.
    """
    B = tokens.shape[0]
    if graph_type == "spatial":
        adj = spatial.to(tokens.dtype).unsqueeze(0).expand(B, -1, -1)
    else:
        adj = semantic_graph(tokens, num_neighbours)
        if graph_type == "mixed":
            adj = torch.maximum(adj, spatial.to(adj.dtype).unsqueeze(0))
    inv_sqrt = adj.sum(-1) ** -0.5
    return adj * inv_sqrt.unsqueeze(-1) * inv_sqrt.unsqueeze(-2)


def attention_with_scales(block: Block, xn: torch.Tensor, token_scales: Optional[torch.Tensor],
                          sparsity: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """timm's attention with `log(scale)` added to every key's logit (proportional attention).

    Returns the attention output (B, N, C) after the projection and the probabilities (B, H, N, N)
    used for selection. `sparsity` < 1 zeroes each map's entries below its int(N^2 (1 - sparsity))-th
    smallest (no renormalisation): eager only, TopK over N^2 entries exceeds what TensorRT takes.
    """
    attn = block.attn
    B, N, _ = xn.shape
    H = attn.num_heads
    q, k, v = attn.qkv(xn).reshape(B, N, 3, H, -1).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    if token_scales is not None:
        logits = logits + token_scales.log().reshape(B, 1, 1, N)
    probs = logits.softmax(-1)
    drop = int(N * N * (1 - sparsity))
    if drop > 0:
        threshold = torch.kthvalue(probs.reshape(B, H, -1), drop, dim=-1, keepdim=True).values.unsqueeze(-1)
        probs = torch.where(probs < threshold, torch.zeros_like(probs), probs)
    out = _finish_attention(attn, attn.attn_drop(probs) @ v, xn)
    return out, probs


def mixed_attn_max_scores(probs: torch.Tensor) -> torch.Tensor:
    """Importance (B, n) of each image token ("MixedAttnMax"): the head-max of its self-attention times the
    head-max of the attention it receives (column sum over every query, [CLS] included).

    The diagonal is a strided slice of the flattened map, which exports as one Slice.
    """
    N = probs.shape[-1]
    diag = probs.flatten(-2)[..., ::N + 1][..., 1:]
    received = probs[..., 1:].sum(-2)
    return diag.max(1).values * received.max(1).values


def rank_tokens(scores: torch.Tensor, num_prop: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(kept, propagated) image-token indices (0-based, without [CLS]): the n-P highest scores in descending
    order, and the P lowest. One TopK over all n tokens (a constant K), sliced."""
    n = int(scores.shape[-1])       # a Python int, so the TorchScript exporter writes a constant K
    order = torch.topk(scores, n, dim=-1, largest=True, sorted=True).indices
    return order[:, :n - num_prop], order[:, n - num_prop:]


def propagate(x: torch.Tensor, graph: torch.Tensor, token_scales: Optional[torch.Tensor], kept: torch.Tensor,
              prop: torch.Tensor, alpha: float):
    """Drop the propagated tokens, adding `alpha * G[kept, prop] @ x_prop` into the kept ones ("GraphProp").

    Args:
        x: tokens (B, N, C), [CLS] first; graph: G (B, n, n) over the n = N - 1 image tokens;
        token_scales: (B, N) or None; kept (B, n-P), prop (B, P): image-token indices from `rank_tokens`.

    Returns:
        x (B, N-P, C) as [CLS] + kept tokens in rank order, the graph among the kept tokens (not
        renormalised) and the scales (the kept ones plus alpha times their propagated share).
    """
    B, N, C = x.shape
    n, n_kept, n_prop = N - 1, int(kept.shape[1]), int(prop.shape[1])
    x_kept = take_rows(x, flat_rows(kept + 1, N), n_kept)
    x_prop = take_rows(x, flat_rows(prop + 1, N), n_prop)
    columns = take_rows(graph, flat_rows(kept, n), n_kept).transpose(1, 2)      # (B, n, n-P): G[kept]^T
    weight = take_rows(columns, flat_rows(prop, n), n_prop).transpose(1, 2)     # (B, n-P, P)
    graph = take_rows(columns, flat_rows(kept, n), n_kept).transpose(1, 2)      # (B, n-P, n-P)
    x = torch.cat([x[:, :1], x_kept + alpha * (weight @ x_prop)], dim=1)
    if token_scales is not None:
        s = token_scales.unsqueeze(-1)
        s_kept = take_rows(s, flat_rows(kept + 1, N), n_kept)
        s_prop = take_rows(s, flat_rows(prop + 1, N), n_prop)
        token_scales = torch.cat([s[:, :1], s_kept + alpha * (weight @ s_prop)], dim=1).squeeze(-1)
    return x, graph, token_scales


def gtp_block_forward(block: Block, x: torch.Tensor, graph: torch.Tensor, token_scales: Optional[torch.Tensor],
                      num_prop: int, alpha: float, sparsity: float = 1.0, return_indices: bool = False):
    """One timm block with token propagation between its attention and its MLP half.

    Returns (x, graph, token_scales), plus (kept, prop) image-token indices when `return_indices`
    (None for a block with P = 0, which runs timm's block with proportional attention only).
    """
    out, probs = attention_with_scales(block, block.norm1(x), token_scales, sparsity)
    x = x + block.drop_path1(block.ls1(out))
    indices = None
    if num_prop > 0:
        indices = rank_tokens(mixed_attn_max_scores(probs), num_prop)
        x, graph, token_scales = propagate(x, graph, token_scales, *indices, alpha)
    x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
    return (x, graph, token_scales, indices) if return_indices else (x, graph, token_scales)
