"""[CLS]-attention token selection and token-row gather/scatter for IdleViT (pure torch).

Paper: "No Token Left Behind: Efficient Vision Transformer via Dynamic Token Idling",
Xu et al., https://arxiv.org/abs/2310.05654
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def cls_attention_scores(xn: torch.Tensor, qkv_weight: torch.Tensor, qkv_bias: Optional[torch.Tensor],
                         num_heads: int, q_norm=None, k_norm=None, ranking_only: bool = False) -> torch.Tensor:
    """Head-mean pre-softmax [CLS]-query logits (B, N-1) for every image token.

    Args:
        xn: normalised block input (B, N, C).
        qkv_weight, qkv_bias: the block's fused qkv projection.
        num_heads: attention heads.
        q_norm, k_norm: per-head q/k norms (timm qk_norm), or None / Identity.
        ranking_only: leave out what cannot change the order of an image's tokens (the [CLS]-key bias term,
            one constant per image, and the 1/H scale): three fewer graph nodes per idle block for TopK.

    The mean over heads of per-head dot products is the full dot product over heads, and
    q . (W_k x + b_k) = (q W_k) . x + q . b_k, so the logits need the token rows and one
    C-vector per image: N*C MACs instead of the N*C^2 of every token's key. Keys are then
    computed for the selected tokens only. Softmax and the 1/sqrt(d) scale do not change
    the ranking, so they are skipped. With q/k norms (nonlinear per head) every key is needed.
    """
    attn_dim = qkv_weight.shape[0] // 3
    head_dim = attn_dim // num_heads
    w_k = qkv_weight[attn_dim:2 * attn_dim]
    b_q = qkv_bias[:attn_dim] if qkv_bias is not None else None
    b_k = qkv_bias[attn_dim:2 * attn_dim] if qkv_bias is not None else None
    # the [CLS] row as a (B, C) matrix: projecting the (B, 1, C) slice makes torch 2.9's dynamo export
    # guard batch != 1 (torch 2.10 does not)
    q_cls = F.linear(xn[:, 0], qkv_weight[:attn_dim], b_q)            # (B, A)
    if query_folds_through_keys(q_norm, k_norm):
        u = torch.matmul(q_cls, w_k)                                    # (B, C)
        logits = torch.matmul(xn, u.unsqueeze(-1))[:, 1:, 0]            # (B, N-1), no copy of the rows
        if ranking_only:    # adding one constant or scaling by 1/H is monotonic in floating point too
            return logits
        if b_k is not None:
            logits = logits + torch.matmul(q_cls, b_k[:, None])         # (B, 1): the same for every token
        return logits / num_heads
    B, N, _ = xn.shape
    qh = q_norm(q_cls.reshape(B, 1, num_heads, head_dim))
    kh = k_norm(F.linear(xn, w_k, b_k).reshape(B, N, num_heads, head_dim))
    return (kh[:, 1:] * qh).sum(-1).mean(-1)


def query_folds_through_keys(q_norm=None, k_norm=None) -> bool:
    """True when `cls_attention_scores` scores from the token rows (no per-head q/k norm): no key per token."""
    return _is_identity(q_norm) and _is_identity(k_norm)


def top_image_tokens(scores: torch.Tensor, k) -> torch.Tensor:
    """Indices (B, K) of the top-K image tokens (0 = the first image token, not [CLS]), in score order.

    `k` is an int K, or a 1-D tensor whose *length* is K (its values are never read). The
    tensor form is the elastic export ("sort, then slice"): TopK keeps its constant K = all
    image tokens and a Slice takes the first K, so K comes from an input's shape and every
    shape in the graph still depends on input dims only.
    """
    if isinstance(k, torch.Tensor):
        # a Python int: torch 2.9's torchscript exporter would trace shape[-1] into a computed TopK K
        ranked = torch.topk(scores, int(scores.shape[-1]), dim=-1, largest=True, sorted=True).indices
        return ranked[:, :k.shape[0]]
    return torch.topk(scores, k, dim=-1, largest=True, sorted=True).indices


def with_cls(top: torch.Tensor) -> torch.Tensor:
    """Image-token indices (B, K) -> token indices (B, K+1): [CLS] (0) first, then each image token + 1."""
    return torch.cat([torch.zeros_like(top[:, :1]), top + 1], dim=1)


def select_tokens(scores: torch.Tensor, k) -> torch.Tensor:
    """Indices (B, K+1) of [CLS] (always 0) and the top-K image tokens, in score order (k: see
    `top_image_tokens`)."""
    return with_cls(top_image_tokens(scores, k))


def selection_mask(idx: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Float mask (B, N): 1 for selected tokens and [CLS], 0 for idle ones."""
    mask = torch.zeros(idx.shape[0], num_tokens, device=idx.device)
    return mask.scatter(1, idx, 1.0)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `idx` (B, S) of x (B, N, C) -> (B, S, C); exports as GatherElements."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def row_offsets(idx: torch.Tensor, rows_per_item: int) -> torch.Tensor:
    """(B, 1): the first row of each item of `idx` (B, S) in the (B*rows_per_item, C) flattened batch."""
    return torch.arange(idx.shape[0], device=idx.device).unsqueeze(1) * rows_per_item


def flat_rows(idx: torch.Tensor, rows_per_item: int) -> torch.Tensor:
    """Indices (B, S) into each item's rows -> indices (B*S,) into the (B*rows_per_item, C) flattened batch."""
    return (idx + row_offsets(idx, rows_per_item)).reshape(-1)


def take_rows(x: torch.Tensor, flat: torch.Tensor, rows_per_item: int) -> torch.Tensor:
    """Whole rows `flat` of x (B, R, C) flattened to (B*R, C) -> (B, rows_per_item, C); exports as Gather.

    The row count is given, not inferred (-1): exported graphs then keep it static, and the TorchScript
    exporter's shape conditions fold away instead of staying as If nodes.
    """
    B, _, C = x.shape
    return x.reshape(-1, C).index_select(0, flat).reshape(B, rows_per_item, C)


class TokenRows:
    """Gather/scatter of whole token rows for one selection.

    Both copy whole rows of the flattened (B*N, C) tensor: index_select (Gather in ONNX) and
    index_put (ScatterND without a reduction from both exporters, which TensorRT parses as a
    scatter layer and ONNX Runtime runs as one row copy per index; the TorchScript exporter's
    index_copy leaves shapes symbolic shape inference cannot follow). Element-wise
    GatherElements/ScatterElements of C-wide rows walk every element with its own index (3-4x
    slower in ONNX Runtime).
    """

    def __init__(self, flat: torch.Tensor, rows_per_item):
        self.flat, self.rows_per_item = flat, rows_per_item

    @classmethod
    def of_tokens(cls, idx: torch.Tensor, num_tokens: int) -> "TokenRows":
        """Rows `idx` (B, S) of each item's `num_tokens` rows."""
        return cls(flat_rows(idx, num_tokens), idx.shape[1])

    @classmethod
    def of_cls_and_image_tokens(cls, top: torch.Tensor, num_tokens: int) -> "TokenRows":
        """[CLS] and the image tokens `top` (B, K): the rows of `with_cls(top)`, built with 2 graph nodes
        after TopK instead of 6 (the [CLS] row of item b is b*N, image token t is row b*N + t + 1)."""
        offsets = row_offsets(top, num_tokens)
        flat = torch.cat([offsets, top + (offsets + 1)], dim=1).reshape(-1)
        return cls(flat, top.shape[1] + 1)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        return take_rows(x, self.flat, self.rows_per_item)

    def scatter(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        out = x.reshape(B * N, C).index_put((self.flat,), rows.reshape(-1, C).to(x.dtype))
        return out.reshape(B, N, C)


def _is_identity(m) -> bool:
    return m is None or isinstance(m, torch.nn.Identity)
