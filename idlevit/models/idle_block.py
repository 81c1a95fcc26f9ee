"""Idle block forward passes: gathered inference path and masked training path (pure torch)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from .selection import TokenRows, cls_attention_scores, select_tokens, selection_mask


def _qkv_slices(attn):
    w, b = attn.qkv.weight, attn.qkv.bias
    a = w.shape[0] // 3
    return w, b, a


def _finish_attention(attn, out: torch.Tensor, gate_in: torch.Tensor) -> torch.Tensor:
    """Everything timm's Attention does after softmax(qk)v: head merge, norm, gate, proj."""
    B, H, S, D = out.shape
    out = out.transpose(1, 2).reshape(B, S, H * D)
    out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:
        out = out * attn.gate(gate_in).sigmoid()
    out = attn.proj(out)
    return attn.proj_drop(out)


def select_for_block(block: Block, xn: torch.Tensor, keep_tokens: int):
    """Scores -> indices (B, K+1) for one idle block, plus keys of all tokens for reuse."""
    attn = block.attn
    scores, keys = cls_attention_scores(xn, attn.qkv.weight, attn.qkv.bias, attn.num_heads,
                                        attn.q_norm, attn.k_norm)
    return select_tokens(scores, keep_tokens), keys


def idle_block_forward(block: Block, x: torch.Tensor, keep_tokens: int,
                       return_indices: bool = False):
    """Eval path: only [CLS] + top-K tokens run through the block; the rest are copied.

    The selected tokens attend to selected tokens only, their keys reused from scoring.
    Results are scattered back to the original positions, so idle rows equal the input.
    """
    attn = block.attn
    B, N, C = x.shape
    H, D = attn.num_heads, attn.head_dim
    xn = block.norm1(x)
    idx, keys = select_for_block(block, xn, keep_tokens)
    S = idx.shape[1]
    rows = TokenRows(idx, N)
    x_sel = rows.gather(x)
    xn_sel = rows.gather(xn)
    k = rows.gather(keys).reshape(B, S, H, D).transpose(1, 2)

    # q and v of the selected tokens only
    w, b, a = _qkv_slices(attn)
    if rows.exporting:
        # one [q; v] GEMM: the Concat of weight slices folds into one constant, and the q slice stays a
        # tensor of its own, apart from the fp32 [CLS]-query slice of the selection path (fp16/int8 ONNX)
        qv_b = torch.cat([b[:a], b[2 * a:]]) if b is not None else None
        qv = F.linear(xn_sel, torch.cat([w[:a], w[2 * a:]]), qv_b)
        q, v = qv.reshape(B, S, 2, H, D).permute(2, 0, 3, 1, 4).unbind(0)
    else:  # weight slices are views: no per-call copy of the weights
        q = F.linear(xn_sel, w[:a], b[:a] if b is not None else None).reshape(B, S, H, D).transpose(1, 2)
        v = F.linear(xn_sel, w[2 * a:], b[2 * a:] if b is not None else None).reshape(B, S, H, D).transpose(1, 2)
    q = attn.q_norm(q)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    x_sel = x_sel + block.drop_path1(block.ls1(_finish_attention(attn, out, xn_sel)))
    x_sel = x_sel + block.drop_path2(block.ls2(block.mlp(block.norm2(x_sel))))
    out = rows.scatter(x, x_sel)
    return (out, idx) if return_indices else out


def masked_block_forward(block: Block, x: torch.Tensor, keep_tokens: Optional[int],
                         attn_map: str = "mean_softmax") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training path: full attention with idle key columns masked and idle rows frozen.

    Returns the block output, the unmasked attention map W (B, N, N) for the cut loss and the
    selection mask (B, N). With dropout and drop-path off this equals `idle_block_forward`.

    `attn_map` picks W: "mean_softmax" averages the per-head softmax maps (the paper's A);
    "softmax_mean_logits" takes the softmax of the head-mean logits (the authors' code).
    """
    attn = block.attn
    B, N, C = x.shape
    H, D = attn.num_heads, attn.head_dim
    xn = block.norm1(x)
    if keep_tokens is None:
        mask = x.new_ones(B, N)
    else:
        idx, _ = select_for_block(block, xn, keep_tokens)
        mask = selection_mask(idx, N).to(x.dtype)
    q, k, v = attn.qkv(xn).reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q * attn.scale) @ k.transpose(-2, -1)                        # (B, H, N, N)
    if attn_map == "mean_softmax":
        w_map = logits.softmax(-1).mean(1)
    elif attn_map == "softmax_mean_logits":
        w_map = logits.mean(1).softmax(-1)
    else:
        raise ValueError(f"unknown attn_map {attn_map!r}: use 'mean_softmax' or 'softmax_mean_logits'")
    idle_keys = (mask == 0)[:, None, None, :]
    probs = logits.masked_fill(idle_keys, float("-inf")).softmax(-1)
    probs = attn.attn_drop(probs)
    out = _finish_attention(attn, probs @ v, xn)
    m = mask.unsqueeze(-1)
    x = x + m * block.drop_path1(block.ls1(out))
    x = x + m * block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
    return x, w_map, mask


class IdleBlock(Block):
    """timm `Block` that can idle tokens.

    Modifications:
    - `keep_tokens` (int or None): with an int, forward runs the idle path (docs/design.md §1.4);
      with None it is exactly timm's Block.forward.
    - adds `forward_masked` for the training path (docs/design.md §1.5).
    No parameters are added or renamed, so checkpoints load unchanged.
    """
    keep_tokens: Optional[int] = None

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                is_causal: bool = False) -> torch.Tensor:
        if self.keep_tokens is None or attn_mask is not None or is_causal:
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        return idle_block_forward(self, x, self.keep_tokens)

    def forward_masked(self, x: torch.Tensor, attn_map: str = "mean_softmax"):
        return masked_block_forward(self, x, self.keep_tokens, attn_map)
