"""A keep ratio that follows the load: step the ratio down while the p99 latency is over its target,
back up once it is well under. Pure Python, so it is tested without a server."""
from __future__ import annotations

import collections
import time
from typing import Deque, List, Optional, Sequence

import numpy as np

from ..errors import UserError


class KeepRatioController:
    """Chooses the keep ratio for the next batch from the latencies of the last requests.

    The ratios form a ladder (1.0, 0.9, ... down to the lowest allowed). After each batch the server
    reports its requests' latencies; once `window` of them are in (and at least `hold` batches since the
    last step), their p99 is compared with the target: above it, one step down (fewer tokens, less work
    per image); below `raise_below * target`, one step up. The window restarts after each step, so every
    decision is about the current ratio. The gap between `raise_below * target` and the target keeps it
    from flapping between two neighbours. A queue that fills every batch is growing faster than it is
    served, and latencies measured inside the server cannot see how long it is: `hold` full batches in a
    row also step down, before the backlog shows up as latency, and it only steps up when none of the
    last `window` batches was full.

    Args:
        target_p99_ms: the p99 latency to stay under.
        ratios: the keep ratios it may use (any order; the highest is where it starts).
        window: latencies per decision.
        raise_below: step up when p99 < raise_below * target.
        hold: at least this many batches between two steps.
    """

    def __init__(self, target_p99_ms: float, ratios: Sequence[float], window: int = 32,
                 raise_below: float = 0.6, hold: int = 2):
        if target_p99_ms <= 0:
            raise UserError(f"p99 target {target_p99_ms} ms must be positive")
        from ..models.schedule import check_keep_ratio
        if not ratios:
            raise UserError("no keep ratios given: the controller needs at least one")
        try:
            ratios = [check_keep_ratio(r) for r in ratios]
        except ValueError as e:
            raise UserError(str(e)) from None
        if not 0 < raise_below < 1:
            raise UserError(f"raise_below {raise_below} must be in (0, 1)")
        self.target_ms, self.window, self.raise_below, self.hold = float(target_p99_ms), window, raise_below, hold
        self.ratios: List[float] = sorted(set(float(r) for r in ratios), reverse=True)
        self.level = 0
        self._latencies: Deque[float] = collections.deque(maxlen=window)
        self._recent_full: Deque[bool] = collections.deque(maxlen=window)   # per batch
        self._batches_since_step = self._full_streak = 0

    @property
    def ratio(self) -> float:
        return self.ratios[self.level]

    def p99(self) -> Optional[float]:
        return float(np.percentile(self._latencies, 99)) if self._latencies else None

    def record(self, latencies_ms: Sequence[float], full: bool = False) -> float:
        """Add one batch's request latencies (`full`: the batch was at the model's max batch size);
        returns the ratio for the next batch."""
        self._latencies.extend(float(v) for v in latencies_ms)
        self._batches_since_step += 1
        self._full_streak = self._full_streak + 1 if full else 0
        self._recent_full.append(bool(full))
        if self._batches_since_step < self.hold:
            return self.ratio
        saturated = self._full_streak >= self.hold
        if len(self._latencies) < self.window and not saturated:
            return self.ratio
        p99 = self.p99()
        if (saturated or p99 > self.target_ms) and self.level + 1 < len(self.ratios):
            self._step(+1)
        elif not any(self._recent_full) and p99 < self.raise_below * self.target_ms and self.level > 0:
            self._step(-1)
        return self.ratio

    def _step(self, direction: int) -> None:
        self.level += direction
        self._latencies.clear()
        self._batches_since_step = self._full_streak = 0


class ServiceClock:
    """Per-request latency bounds (queue + compute) from the start and end times of each execution.

    A backend sees when each batch starts and ends but not when its requests arrived. With a dynamic
    batcher that sends whatever is queued as soon as the model is free: if the model was idle before
    this batch, its requests waited about nothing; if the batch started right after the previous one
    ended, its requests arrived during the previous execution, so each waited at most that long (the
    time since the previous batch started, which this charges in full: an upper bound).
    """

    def __init__(self, idle_gap_ms: float = 1.0, clock=time.perf_counter):
        self.idle_gap_ms, self._clock = idle_gap_ms, clock
        self._prev_start: Optional[float] = None
        self._prev_end: Optional[float] = None

    def now(self) -> float:
        return self._clock()

    def latencies(self, start: float, end: float, count: int) -> List[float]:
        """Latency bounds (ms) of the `count` requests of the batch that ran from `start` to `end`."""
        wait = 0.0
        if self._prev_end is not None and (start - self._prev_end) * 1e3 < self.idle_gap_ms:
            wait = start - self._prev_start
        self._prev_start, self._prev_end = start, end
        return [(wait + end - start) * 1e3] * count
