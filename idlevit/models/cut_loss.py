"""Token cut loss (IdleViT paper eq. 9-11): keeps selected and idle tokens from mixing."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

PARTS = ("paper", "inter", "intra", "none")


def token_cut_loss(w_map: torch.Tensor, mask: torch.Tensor, part: str = "paper") -> torch.Tensor:
    """Cut loss of one idle block, averaged over the batch.

    Args:
        w_map: attention map (B, N, N), rows summing to 1 (the paper's A).
        mask: selection mask (B, N), 1 for [CLS] and selected tokens, 0 for idle tokens.
        part: "paper" (inter + intra), "inter", "intra" or "none".

    Returns:
        scalar loss. A block with no idle token contributes 0.
    """
    if part not in PARTS:
        raise ValueError(f"unknown cut-loss part {part!r}: use one of {', '.join(PARTS)}")
    if part == "none":
        return w_map.new_zeros(())
    sel = mask.to(w_map.dtype)                              # S, [CLS] included
    idle = 1.0 - sel                                        # I
    sel_img = sel.clone()
    sel_img[:, 0] = 0.0                                     # S \ {CLS}
    n_sel = sel.sum(1).clamp_min(1.0)
    n_idle = idle.sum(1)
    to_idle = w_map @ idle.unsqueeze(-1)                    # sum_{j in I} W_ij, (B, N, 1)
    to_sel = w_map @ sel.unsqueeze(-1)                      # sum_{j in S} W_ij
    to_sel_img = w_map @ sel_img.unsqueeze(-1)              # sum_{j in S\CLS} W_ij
    to_idle, to_sel, to_sel_img = to_idle.squeeze(-1), to_sel.squeeze(-1), to_sel_img.squeeze(-1)

    loss = w_map.new_zeros(w_map.shape[0])
    if part in ("paper", "inter"):
        loss = loss + (sel * to_idle ** 2).sum(1) / n_sel
        loss = loss + torch.where(n_idle > 0, (idle * to_sel_img ** 2).sum(1) / n_idle.clamp_min(1.0),
                                  torch.zeros_like(n_idle))
    if part in ("paper", "intra"):
        loss = loss + (sel * (1.0 - to_sel) ** 2).sum(1) / n_sel
    return loss.mean()


class TokenCutLoss(nn.Module):
    """Mean of `token_cut_loss` over the idle blocks of one masked forward."""

    def __init__(self, part: str = "paper"):
        super().__init__()
        if part not in PARTS:
            raise ValueError(f"unknown cut-loss part {part!r}: use one of {', '.join(PARTS)}")
        self.part = part

    def forward(self, attn_maps: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.part == "none" or not attn_maps:
            ref = attn_maps[0] if attn_maps else torch.zeros(())
            return ref.new_zeros(())
        losses = [token_cut_loss(w, m, self.part) for w, m in zip(attn_maps, masks)]
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"part={self.part!r}"
