"""A token-merging DeiT (bipartite soft matching between attention and MLP), the comparison model of
benchmarks/cpu_efficiency.py. Written here from the method's description, not taken from another code base.

Each block merges `r` image tokens: image tokens alternate into sets A and B, every A token finds its most
similar B token (cosine of the head-mean keys), the `r` A tokens with the best matches are averaged into
their B partners, the rest pass on. [CLS] never merges. Plain averaging (no size-weighted attention).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Whole rows idx (B, S) of x (B, M, C) as one row Gather on the flattened batch."""
    B, M, C = x.shape
    flat = (idx + torch.arange(B, device=idx.device).unsqueeze(1) * M).reshape(-1)
    return x.reshape(-1, C).index_select(0, flat).reshape(B, -1, C)


def merge_tokens(x: torch.Tensor, keys: torch.Tensor, r: int) -> torch.Tensor:
    """x, keys (B, N, C) with [CLS] first -> (B, N - r, C)."""
    cls, img, metric = x[:, :1], x[:, 1:], F.normalize(keys[:, 1:], dim=-1)
    a, b = img[:, 0::2], img[:, 1::2]
    similarity = metric[:, 0::2] @ metric[:, 1::2].transpose(1, 2)          # (B, Na, Nb)
    best, partner = similarity.max(dim=-1)                                  # (B, Na)
    order = torch.topk(best, a.shape[1], dim=-1).indices                    # most similar first
    merged, kept = order[:, :r], order[:, r:]
    dst = partner.gather(1, merged)                                         # (B, r)
    src = _rows(a, merged)
    index = dst.unsqueeze(-1).expand(-1, -1, x.shape[-1])
    total = b.scatter_add(1, index, src)
    count = torch.ones_like(b[..., :1]).scatter_add(1, dst.unsqueeze(-1), torch.ones_like(src[..., :1]))
    return torch.cat([cls, _rows(a, kept), total / count], dim=1)


class MergingBlock(torch.nn.Module):
    """A timm ViT block that merges `r` tokens after its attention."""

    def __init__(self, block, r: int):
        super().__init__()
        self.block, self.r = block, r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blk, attn = self.block, self.block.attn
        B, N, C = x.shape
        qkv = attn.qkv(blk.norm1(x)).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)
        x = x + blk.ls1(attn.proj(out))
        if self.r > 0:
            x = merge_tokens(x, k.mean(1), self.r)
        return x + blk.ls2(blk.mlp(blk.norm2(x)))


def tokens_per_block(num_tokens: int, depth: int, r: int):
    """Tokens entering each block's attention and its MLP."""
    out, n = [], num_tokens
    for _ in range(depth):
        m = n - min(r, (n - 1) // 2)
        out.append((n, m))
        n = m
    return out


def merging_macs(model, r: int) -> float:
    """Executed MACs per image: patch embed + head + per block qkv/attention/proj on n tokens, matching on
    the A x B similarity, MLP on the merged n - r tokens."""
    c, hidden = model.embed_dim, model.blocks[0].block.mlp.fc1.out_features
    patch = model.patch_embed.proj
    total = model.patch_embed.num_patches * patch.in_channels * patch.kernel_size[0] * patch.kernel_size[1] * c
    total += c * model.num_classes
    for n, m in tokens_per_block(model.patch_embed.num_patches + 1, len(model.blocks), r):
        na = (n - 1 + 1) // 2
        total += 4 * n * c * c + 2 * n * n * c + (na * (n - 1 - na) * c if m < n else 0) + 2 * m * c * hidden
    return float(total)


def make_merging(model, r: int):
    """Wrap every block of a timm ViT (in place) so it merges `r` tokens; returns the model."""
    model.blocks = torch.nn.Sequential(*[MergingBlock(b, r) for b in model.blocks])
    return model
