"""The keep inputs of an elastic ONNX file: names, K range per stage, default ratio, and the feed a call needs.

An elastic file (`idle-export --elastic`) takes `keep_tokens.<s>` for each idle stage s; only the
input's length (stage s's K) is used. `ElasticKeep` turns a keep ratio or per-stage K into those
inputs and rejects out-of-range values in one line before anything runs (ONNX Runtime would fail
deep inside TopK/Reshape, TensorRT may crash).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..models.schedule import IDLE_STAGES, KEEP_INPUT_PREFIX, KeepSchedule, keep_input_name
from .metadata import ExportMetadata

KEEP_INPUT_DTYPE = np.float32            # contents never read; float32 is an I/O type every backend takes
KEEP_INPUT_NAMES = tuple(keep_input_name(s) for s in IDLE_STAGES)
_KEEP_INPUT = re.compile(re.escape(KEEP_INPUT_PREFIX) + r"(\d+)$")


def is_keep_input(name: str) -> bool:
    return bool(_KEEP_INPUT.match(name))


def dynamic_dim_name(tensor: str) -> str:
    """How runners name an input's dynamic dim: the batch, or the length of an elastic keep input."""
    return tensor.replace(".", "_") if is_keep_input(tensor) else "batch"


@dataclass(frozen=True)
class ElasticKeep:
    """What K each call of an elastic model may use, and the keep inputs for a chosen ratio.

    Attributes:
        num_image_tokens: N; K = floor(N * r**s) for stage s (r = 1 keeps all N).
        default_ratio: the ratio used when a call names none (the export's --keep-ratio).
        ranges: (min K, max K) per idle stage; 1..N for an ONNX file, the profile's bounds for an engine.
    """
    num_image_tokens: int
    default_ratio: float
    ranges: Tuple[Tuple[int, int], ...]

    @classmethod
    def full(cls, num_image_tokens: int, default_ratio: float) -> "ElasticKeep":
        return cls(num_image_tokens, default_ratio, ((1, num_image_tokens),) * len(IDLE_STAGES))

    @classmethod
    def from_metadata(cls, meta: ExportMetadata, where: str = "the model") -> "ElasticKeep":
        if not meta.elastic or not meta.keep_token_range or meta.keep_ratio is None:
            raise UserError(f"{where} has keep_tokens inputs but no elastic metadata: re-export it with "
                            "idle-export --elastic")
        low, high = meta.keep_token_range
        return cls(int(high), float(meta.keep_ratio), ((int(low), int(high)),) * len(IDLE_STAGES))

    def narrowed(self, ranges: Mapping[str, Tuple[int, int]]) -> "ElasticKeep":
        """The same spec with per-input K bounds (e.g. a TensorRT profile's min/max lengths)."""
        return replace(self, ranges=tuple(tuple(ranges.get(n, r)) for n, r in zip(KEEP_INPUT_NAMES, self.ranges)))

    @property
    def names(self) -> Tuple[str, ...]:
        return KEEP_INPUT_NAMES

    def stage_tokens(self, keep_ratio: Optional[float] = None,
                     keep_tokens: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
        """K per idle stage for a ratio (default: `default_ratio`) or per-stage K; UserError when out of range."""
        if keep_ratio is not None and keep_tokens is not None:
            raise UserError("give a keep ratio or per-stage K, not both")
        if keep_tokens is not None:
            ks = tuple(int(k) for k in keep_tokens)
            if len(ks) != len(self.ranges):
                raise UserError(f"{len(ks)} K values given for {len(self.ranges)} idle stages: "
                                f"give one K per stage ({', '.join(self.names)})")
            what = "K"
        else:
            ratio = self.default_ratio if keep_ratio is None else keep_ratio
            try:
                ks = tuple(KeepSchedule(ratio).stage_tokens(self.num_image_tokens))
            except (TypeError, ValueError) as e:
                raise UserError(str(e)) from None
            what = f"keep ratio {ratio:g} gives K"
        for name, k, (low, high) in zip(self.names, ks, self.ranges):
            if not low <= k <= high:
                raise UserError(f"{what} = {k} for {name}, outside {low}..{high} that this model accepts: "
                                f"{self.hint()}")
        return ks

    def hint(self) -> str:
        low = self.lowest_ratio()
        return (f"pick a keep ratio in [{low:g}, 1]" if low is not None else "no keep ratio fits every stage's range"
                ) + f" or per-stage K within {', '.join(f'{a}..{b}' for a, b in self.ranges)}"

    def lowest_ratio(self, step: float = 0.01) -> Optional[float]:
        """Smallest ratio on a `step` grid whose K all fit the ranges (None when none does)."""
        fits = [r / 100 for r in range(100, 0, -max(1, round(step * 100)))
                if all(lo <= k <= hi for k, (lo, hi) in
                       zip(KeepSchedule(r / 100).stage_tokens(self.num_image_tokens), self.ranges))]
        return min(fits) if fits else None

    def feed(self, keep_ratio: Optional[float] = None,
             keep_tokens: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """The keep inputs for one call: `keep_tokens.<s>` of length K_s (zeros; only the length counts)."""
        return {name: np.zeros(k, KEEP_INPUT_DTYPE)
                for name, k in zip(self.names, self.stage_tokens(keep_ratio, keep_tokens))}


def stage_tokens_of(feed: Mapping[str, object]) -> Optional[Tuple[int, ...]]:
    """Per-stage K carried by a feed's keep inputs (their lengths), or None when it has none."""
    if not any(name in feed for name in KEEP_INPUT_NAMES):
        return None
    missing = [n for n in KEEP_INPUT_NAMES if n not in feed]
    if missing:
        raise UserError(f"feed lacks {', '.join(missing)}: give every keep input or use keep_ratio=")
    return tuple(int(np.shape(feed[name])[0]) for name in KEEP_INPUT_NAMES)
