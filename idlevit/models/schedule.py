"""The keep-ratio schedule: which blocks idle and how many image tokens K each one keeps (pure Python).

One base ratio r splits the blocks into four equal stages; stage s keeps r**s of the image tokens,
so stage 0 runs every token and stages 1-3 idle (docs/design.md §1.2). Every part of the toolkit
(models, export metadata, MACs, the reference, engines, training, sweep) takes the schedule from here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

DEFAULT_KEEP_RATIO = 0.7
SWEEP_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)   # what a keep-ratio sweep runs unless told
NUM_STAGES = 4
IDLE_STAGES = tuple(range(1, NUM_STAGES))   # stage 0 keeps every token at any ratio (r**0 == 1)
KEEP_INPUT_PREFIX = "keep_tokens."            # an elastic file's per-stage K inputs: keep_tokens.1, .2, .3


def keep_input_name(stage: int) -> str:
    """Name of an elastic file's input whose length is stage `stage`'s K."""
    return f"{KEEP_INPUT_PREFIX}{stage}"


def check_keep_ratio(ratio, what: str = "keep ratio") -> float:
    """`ratio` as a float in (0, 1], or ValueError naming the fix (the one keep-ratio check)."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"{ratio!r} is not a number: pass a keep ratio in (0, 1] such as "
                         f"{DEFAULT_KEEP_RATIO:g}") from None
    if not 0.0 < value <= 1.0:   # NaN fails every comparison, so it lands here too
        raise ValueError(f"{what} {value:g} is outside (0, 1]: pick a value such as {DEFAULT_KEEP_RATIO:g}")
    return value


def stage_bounds(depth: int) -> List[int]:
    """First block of each of the four stages, plus `depth`: round(depth * s / 4), so any depth splits in four."""
    return [round(depth * s / NUM_STAGES) for s in range(NUM_STAGES + 1)]


def tokens_to_keep(num_image_tokens: int, ratio: float) -> Optional[int]:
    """Image tokens K an idle block selects, floor(ratio * total); None for a plain block.

    K is always counted from the image-token total, never from the previous block.
    A small epsilon absorbs float error in r**s (0.7**2 * 196 must give 96, not 95).
    """
    if ratio >= 1.0:
        return None
    return max(1, min(num_image_tokens, int(math.floor(num_image_tokens * ratio + 1e-6))))


def block_keep_tokens(depth: int, stage_k: Sequence) -> List[Optional[object]]:
    """Per block: None in stage 0, else its idle stage's K (an int, or a tensor whose length is K)."""
    if len(stage_k) != len(IDLE_STAGES):
        raise ValueError(f"{len(stage_k)} stage K values given, the schedule has {len(IDLE_STAGES)} "
                         "idle stages: give one K per stage")
    bounds = stage_bounds(depth)
    per_block: List[Optional[object]] = [None] * depth
    for stage, k in zip(IDLE_STAGES, stage_k):
        for i in range(bounds[stage], bounds[stage + 1]):
            per_block[i] = k
    return per_block


@dataclass(frozen=True)
class KeepSchedule:
    """A keep-ratio schedule, validated when made.

    Attributes:
        keep_ratio: base ratio r of the four-stage schedule (with `keep_ratios`, the ratio of the first
            stage-1 block: what an elastic run defaults to).
        keep_ratios: explicit ratio per block (1.0 = plain block); replaces the stages when given.
    """
    keep_ratio: float = DEFAULT_KEEP_RATIO
    keep_ratios: Optional[Tuple[float, ...]] = None

    def __post_init__(self):
        object.__setattr__(self, "keep_ratio", check_keep_ratio(self.keep_ratio))
        if self.keep_ratios is not None:
            object.__setattr__(self, "keep_ratios",
                               tuple(check_keep_ratio(r, "per-block keep ratio") for r in self.keep_ratios))

    @classmethod
    def of_block_ratios(cls, ratios: Sequence[float]) -> "KeepSchedule":
        """The schedule behind per-block ratios: the four-stage one when they are exactly that, else explicit."""
        ratios = tuple(float(r) for r in ratios)
        base = ratios[stage_bounds(len(ratios))[1]] if ratios else 1.0
        staged = cls(base)
        return staged if tuple(staged.block_ratios(len(ratios))) == ratios else cls(base, ratios)

    @property
    def staged_ratio(self) -> Optional[float]:
        """r when this is the four-stage schedule, None for explicit per-block ratios."""
        return self.keep_ratio if self.keep_ratios is None else None

    def block_ratios(self, depth: int) -> List[float]:
        """Keep ratio per block: r**s in stage s, or the explicit list (which must have one per block)."""
        if self.keep_ratios is not None:
            if len(self.keep_ratios) != depth:
                raise ValueError(f"keep_ratios has {len(self.keep_ratios)} entries but the model has {depth} "
                                 f"blocks: give one ratio per block")
            return list(self.keep_ratios)
        bounds = stage_bounds(depth)
        return [self.keep_ratio ** s for s in range(NUM_STAGES) for _ in range(bounds[s], bounds[s + 1])]

    def block_tokens(self, depth: int, num_image_tokens: int) -> List[Optional[int]]:
        """K per block of a model with `depth` blocks and N image tokens (None = plain block)."""
        return [tokens_to_keep(num_image_tokens, r) for r in self.block_ratios(depth)]

    def stage_tokens(self, num_image_tokens: int) -> List[int]:
        """K of each idle stage at r (what an elastic file is fed): a fixed export's K, or all N at r = 1."""
        return [tokens_to_keep(num_image_tokens, self.keep_ratio ** s) or num_image_tokens for s in IDLE_STAGES]
