"""Where ONNX Runtime spends an inference: its built-in profiler, summed per op type."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Dict, Optional

import numpy as np

from ..fileio import scratch_dir
from .ort_runner import OrtRunner


def op_times(profile_file: str, skip_runs: int = 1) -> Dict[str, float]:
    """Milliseconds per run by op type from an ORT profile JSON, ignoring the first `skip_runs` runs."""
    with open(profile_file) as f:
        events = json.load(f)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    if len(runs) <= skip_runs:
        raise ValueError(f"profile has {len(runs)} runs, need more than {skip_runs}")
    start = runs[skip_runs][0]
    totals: Dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= start:
            totals[e.get("args", {}).get("op_name", "?")] += e["dur"] / 1e3
    n = len(runs) - skip_runs
    return dict(sorted(((op, ms / n) for op, ms in totals.items()), key=lambda kv: -kv[1]))


def profile_op_types(onnx_path: str, *, batch: int, img_size: int, calls: int = 5, provider: str = "cpu",
                     threads: Optional[int] = None, seed: int = 0) -> Dict[str, float]:
    """Run `calls` profiled inferences (after one unprofiled-in-the-sum warm-up) and sum kernel time per op type."""
    x = np.random.default_rng(seed).standard_normal((batch, 3, img_size, img_size), dtype=np.float32)
    with scratch_dir("ort_profile") as tmp:
        runner = OrtRunner(onnx_path, provider=provider, threads=threads, profile_prefix=os.path.join(tmp, "ort"))
        with runner:
            for _ in range(calls + 1):
                runner.infer(x)
        return op_times(runner.profile_file, skip_runs=1)
