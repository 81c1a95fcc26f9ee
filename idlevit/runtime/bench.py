"""Throughput and latency of runners, idle model against its keep-ratio-1.0 baseline, measured in alternating rounds.

Efficiency = speedup / executed-MAC ratio: 1.0 means the backend turns every MAC saved into
time saved; what is missing is the cost of scoring, TopK, gather and scatter and of smaller GEMMs.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from .runner import Runner


@dataclass
class Timing:
    """Latencies of one runner at one batch size."""
    name: str
    batch: int
    latencies_ms: List[float]

    @property
    def throughput(self) -> float:
        """Images per second over all timed calls."""
        return self.batch * len(self.latencies_ms) / (sum(self.latencies_ms) / 1e3)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    def to_json(self) -> dict:
        return {"name": self.name, "batch": self.batch, "iters": len(self.latencies_ms),
                "throughput_img_s": self.throughput, "latency_ms": {"mean": float(np.mean(self.latencies_ms)),
                "p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99)}}


@dataclass
class BenchResult:
    """Idle vs baseline, with how it was measured."""
    idle: Timing
    baseline: Timing
    gmacs_idle: float              # executed GMACs per image (FlopCounterMode)
    gmacs_baseline: float
    setup: Dict = field(default_factory=dict)
    # other forms of the idle model (e.g. its INT8 Q/DQ file), timed in the same rounds
    extras: Dict[str, Timing] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.idle.throughput / self.baseline.throughput

    @property
    def mac_ratio(self) -> float:
        return self.gmacs_baseline / self.gmacs_idle

    @property
    def efficiency(self) -> float:
        return self.speedup / self.mac_ratio

    def speedup_of(self, extra: str) -> float:
        """Throughput of extra `extra` over the baseline's."""
        return self.extras[extra].throughput / self.baseline.throughput

    def to_json(self) -> dict:
        return {"idle": self.idle.to_json(), "baseline": self.baseline.to_json(),
                "gmacs_idle": self.gmacs_idle, "gmacs_baseline": self.gmacs_baseline, "mac_ratio": self.mac_ratio,
                "speedup": self.speedup, "efficiency": self.efficiency, "setup": self.setup,
                **({"extras": {name: {**t.to_json(), "speedup": self.speedup_of(name)}
                               for name, t in self.extras.items()}} if self.extras else {})}


def time_rounds(runners: Dict[str, Runner], feed: np.ndarray, *, warmup: int = 3, iters: int = 20, rounds: int = 4,
                progress: bool = False) -> Dict[str, Timing]:
    """Time each loaded runner on `feed` for `iters` calls, split into `rounds` that alternate the order
    (A B, B A, A B, ...), so drift (thermal, other processes) hits every runner alike.

    Each runner first gets `warmup` untimed calls. Returns a Timing per runner name.
    """
    if iters < 1 or rounds < 1 or warmup < 0:
        raise ValueError("iters and rounds must be >= 1 and warmup >= 0")
    rounds = min(rounds, iters)
    batch = int(feed.shape[0])
    prepared = {name: r.prepare(feed) for name, r in runners.items()}
    for name, r in runners.items():
        for _ in range(warmup):
            r.infer(prepared[name])
    lat: Dict[str, List[float]] = {name: [] for name in runners}
    names = list(runners)
    per_round = [iters // rounds + (1 if i < iters % rounds else 0) for i in range(rounds)]
    bar = tqdm(total=iters * len(names), desc="bench", unit="call", disable=not progress, leave=False)
    for i, n in enumerate(per_round):
        for name in (names if i % 2 == 0 else names[::-1]):
            r, p = runners[name], prepared[name]
            for _ in range(n):
                start = time.perf_counter()
                r.infer(p)
                lat[name].append((time.perf_counter() - start) * 1e3)
                bar.update()
    bar.close()
    return {name: Timing(name, batch, lat[name]) for name in names}


def measure_setup(runner: Runner, *, batch: int, warmup: int, iters: int, rounds: int) -> Dict:
    """What a benchmark printout must say about how it was measured."""
    import torch
    info = {"batch": batch, "warmup": warmup, "iters": iters, "rounds": rounds, "order": "alternating rounds",
            "python": platform.python_version(), "torch": torch.__version__, "cpu": _cpu_name(),
            "machine": platform.machine()}
    info.update(runner.describe())
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_against_baseline(idle: Runner, baseline: Runner, *, img_size: int, gmacs_idle: float,
                           gmacs_baseline: float, batch: int = 32, warmup: int = 3, iters: int = 20, rounds: int = 4,
                           seed: int = 0, progress: bool = False,
                           extras: Optional[Dict[str, Runner]] = None) -> BenchResult:
    """Load both runners, time them in alternating rounds on the same seeded batch, and compare.

    Runners that are already loaded stay loaded (and are not closed), so a sweep can reuse them.
    `extras` (name -> runner, other forms of the idle model such as its INT8 file) join the same rounds.
    """
    if not (math.isfinite(gmacs_idle) and gmacs_idle > 0):
        raise ValueError(f"gmacs_idle must be positive, got {gmacs_idle}")
    feed = np.random.default_rng(seed).standard_normal((batch, 3, img_size, img_size), dtype=np.float32)
    extras = dict(extras or {})
    opened = [r for r in (idle, baseline, *extras.values()) if not r.is_loaded]
    try:
        for r in opened:
            r.load()
        timings = time_rounds({"idle": idle, "baseline": baseline, **extras}, feed, warmup=warmup, iters=iters,
                              rounds=rounds, progress=progress)
        setup = measure_setup(idle, batch=batch, warmup=warmup, iters=iters, rounds=rounds)
    finally:
        for r in opened:
            r.close()
    return BenchResult(timings["idle"], timings["baseline"], gmacs_idle, gmacs_baseline, setup,
                       {name: timings[name] for name in extras})


def executed_gmacs(model, img_size: int) -> float:
    """Executed GMACs per image of `model`'s eval forward (FlopCounterMode, idlevit.runtime.macs)."""
    from .macs import count_executed_macs
    return count_executed_macs(model, img_size) / 1e9


def result_rows(result: BenchResult) -> List[List[str]]:
    rows = []
    pairs = [(result.idle, result.gmacs_idle), (result.baseline, result.gmacs_baseline)]
    for t, g in pairs + [(t, result.gmacs_idle) for t in result.extras.values()]:
        rows.append([t.name, f"{g:.3f}", f"{t.throughput:.1f}", f"{t.percentile(50):.2f}",
                     f"{t.percentile(90):.2f}", f"{t.percentile(99):.2f}"])
    return rows


BENCH_HEADERS = ["model", "GMACs/img", "img/s", "p50 ms", "p90 ms", "p99 ms"]


def summary_line(result: BenchResult) -> str:
    line = (f"speedup {result.speedup:.3f}x  MAC ratio {result.mac_ratio:.3f}x  "
            f"efficiency {result.efficiency:.3f} (speedup / MAC ratio)")
    for name in result.extras:
        line += f"\n{name}: speedup {result.speedup_of(name):.3f}x over the baseline"
    return line


__all__ = ["BENCH_HEADERS", "BenchResult", "Timing", "bench_against_baseline", "executed_gmacs", "measure_setup",
           "result_rows", "summary_line", "time_rounds"]
