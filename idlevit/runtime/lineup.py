"""What a user gets on this CPU: several deployments of one model timed against one fp32 baseline, with parity.

Every entry (the plain-backbone baseline, a second copy of it for the noise floor, IdleViT in
fp32, INT8, on other backends) is timed in the same process with the calls interleaved, so
drift from other jobs on the machine hits all of them alike; speed-ups are ratios of median
per-call latency. Each entry is also checked against the PyTorch fp32 model it was made from,
with the parity limits of its precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .bench import Timing, time_rounds
from .parity import ParityReport, Thresholds, compare_runners
from .runner import Runner

NOISE_SUFFIX = " (again: noise floor)"


@dataclass
class Entry:
    """One deployment: how to build its runner, the reference it must match, and the limits that apply."""
    label: str
    make: Callable[[bool], Runner]       # selection outputs on/off -> a runner, not loaded
    reference: Optional[Callable[[bool], Runner]]  # the PyTorch fp32 model it was made from (None: unknown)
    thresholds: Thresholds
    selection: bool = False              # compare the selected tokens too (IdleViT files)


@dataclass
class LineupResult:
    baseline: str
    timings: Dict[int, Dict[str, Timing]]          # batch -> label -> timing
    parity: Dict[str, ParityReport]
    described: Dict[str, Dict]

    @property
    def labels(self) -> List[str]:
        return list(next(iter(self.timings.values())))

    def speedup(self, batch: int, label: str) -> float:
        """Median latency of the baseline over that of `label` (> 1: faster)."""
        t = self.timings[batch]
        return t[self.baseline].percentile(50) / t[label].percentile(50)

    def paired_speedup(self, batch: int, label: str) -> float:
        """Median over calls of the baseline's call / this entry's call of the same round (call by call, so drift
        between rounds cancels)."""
        t = self.timings[batch]
        return float(np.median(np.asarray(t[self.baseline].latencies_ms) / np.asarray(t[label].latencies_ms)))

    def to_json(self) -> dict:
        return {"baseline": self.baseline, "speedup": "median latency of the baseline / median latency",
                "paired_speedup": "median over rounds of the baseline's call / this entry's call in the same round",
                "entries": [{"label": label, "runner": self.described.get(label),
                             "parity": self.parity[label].to_json() if label in self.parity else None,
                             "timings": {str(b): t[label].to_json() for b, t in self.timings.items()},
                             "speedup": {str(b): self.speedup(b, label) for b in self.timings},
                             "paired_speedup": {str(b): self.paired_speedup(b, label) for b in self.timings}}
                            for label in self.labels]}


def run_lineup(entries: Sequence[Entry], parity_batches: Sequence[np.ndarray], *, batches: Sequence[int],
               img_size: int, warmup: int = 2, iters: int = 20, seed: int = 0, progress: bool = False,
               log: Callable[[str], None] = lambda s: None) -> LineupResult:
    """Parity of every entry, then per batch size all entries timed call by call in alternating order.

    The first entry is the baseline; a second runner of it is timed as well, so the baseline's
    ratio to itself shows the noise floor of the same run.
    """
    parity, described = {}, {}
    for e in entries:
        if e.reference is None:
            continue
        log(f"parity: {e.label}")
        with e.make(e.selection) as cand, e.reference(e.selection) as ref:
            parity[e.label] = compare_runners(cand, ref, parity_batches, e.thresholds, progress=progress)
            described[e.label] = cand.describe()
    base = entries[0]
    order = [(base.label, base), (base.label + NOISE_SUFFIX, base)] + [(e.label, e) for e in entries[1:]]
    runners: Dict[str, Runner] = {}
    timings: Dict[int, Dict[str, Timing]] = {}
    try:
        for label, e in order:
            runners[label] = e.make(False).load()
        for batch in batches:
            log(f"timing batch {batch}: {len(runners)} runners x {iters} calls, interleaved call by call")
            feed = np.random.default_rng(seed).standard_normal((batch, 3, img_size, img_size), dtype=np.float32)
            timings[batch] = time_rounds(runners, feed, warmup=warmup, iters=iters, rounds=iters, progress=progress)
    finally:
        for r in runners.values():
            r.close()
    return LineupResult(base.label, timings, parity, described)
