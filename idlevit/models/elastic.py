"""Elastic keep ratio: one model (and one exported file) whose K per idle stage is chosen per call.

Stage s (1..3) of the four-stage schedule keeps K_s = floor(N * r**s) image tokens; stage 0 runs
every token. Under export the K of each stage is the length of an extra input `keep_tokens.<s>`
(see `select_tokens`; the input names are in `schedule`), so one ONNX file serves every keep ratio.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from .schedule import KeepSchedule, block_keep_tokens


def set_elastic_keep_ratio(model: torch.nn.Module, keep_ratio: float) -> torch.nn.Module:
    """Give an IdleViT the schedule an elastic file runs at ratio r: stage 1-3 blocks idle, K = N at r = 1."""
    model.set_keep_ratio(keep_ratio)
    ks = KeepSchedule(keep_ratio).stage_tokens(model.num_image_tokens)
    for blk, k in zip(model.blocks, block_keep_tokens(len(model.blocks), ks)):
        blk.keep_tokens = k
    return model


@contextmanager
def stage_keep_tokens_applied(model: torch.nn.Module, stage_k: Sequence) -> Iterator[torch.nn.Module]:
    """Run `model` (an IdleViT) with K per stage for the duration of the block; its schedule is restored after."""
    saved = [blk.keep_tokens for blk in model.blocks]
    try:
        for blk, k in zip(model.blocks, block_keep_tokens(len(model.blocks), stage_k)):
            blk.keep_tokens = k
        yield model
    finally:
        for blk, k in zip(model.blocks, saved):
            blk.keep_tokens = k


class ElasticIdleViT(torch.nn.Module):
    """Export view of an IdleViT: inputs (image, keep_tokens.1, .2, .3), K of stage s = len(keep_tokens.<s>).

    The keep inputs' values are never read; only their lengths reach the graph (as Slice ends).
    Weights are the wrapped model's own.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, keep_1: torch.Tensor, keep_2: torch.Tensor,
                keep_3: torch.Tensor) -> torch.Tensor:
        with stage_keep_tokens_applied(self.model, (keep_1, keep_2, keep_3)):
            return self.model(x)
