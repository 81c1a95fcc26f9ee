"""Idle block forward passes: gathered inference path and masked training path (pure torch)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from timm.models.vision_transformer import Block

from .selection import TokenRows, cls_attention_scores, selection_mask, top_image_tokens, with_cls


def _finish_attention(attn, out: torch.Tensor, gate_in: torch.Tensor) -> torch.Tensor:
    """Everything timm's Attention does after softmax(qk)v: head merge, norm, gate, proj."""
    B, H, S, D = out.shape
    out = out.transpose(1, 2).reshape(B, S, H * D)
    out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:
        out = out * attn.gate(gate_in).sigmoid()
    out = attn.proj(out)
    return attn.proj_drop(out)


def select_image_tokens(block: Block, xn: torch.Tensor, keep_tokens) -> torch.Tensor:
    """Indices (B, K) of the top-K image tokens by [CLS] attention in one idle block (0 = first image token)."""
    attn = block.attn
    scores = cls_attention_scores(xn, attn.qkv.weight, attn.qkv.bias, attn.num_heads, attn.q_norm, attn.k_norm,
                                  ranking_only=True)
    return top_image_tokens(scores, keep_tokens)


def select_for_block(block: Block, xn: torch.Tensor, keep_tokens) -> torch.Tensor:
    """Indices (B, K+1) of [CLS] and the top-K image tokens for one idle block."""
    return with_cls(select_image_tokens(block, xn, keep_tokens))


def idle_block_forward(block: Block, x: torch.Tensor, keep_tokens,
                       return_indices: bool = False):
    """Eval path: [CLS] + the top-K tokens run through the block itself; the rest are copied.

    The selected rows go through timm's own `Block.forward`, so they attend to selected
    tokens only and every backbone detail (LayerScale, gates, LV-ViT's residual scale)
    comes with it. Results are scattered back to the original positions, so idle rows
    equal the input.
    """
    top = select_image_tokens(block, block.norm1(x), keep_tokens)
    rows = TokenRows.of_cls_and_image_tokens(top, x.shape[1])
    out = rows.scatter(x, Block.forward(block, rows.gather(x)))
    return (out, with_cls(top)) if return_indices else out


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
        idx = select_for_block(block, xn, keep_tokens)
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
            # only the arguments given: older timm (1.0.22) has no is_causal in Block.forward
            extra = {"is_causal": True} if is_causal else {}
            return super().forward(x, attn_mask=attn_mask, **extra)
        return idle_block_forward(self, x, self.keep_tokens)

    def forward_masked(self, x: torch.Tensor, attn_map: str = "mean_softmax"):
        return masked_block_forward(self, x, self.keep_tokens, attn_map)
