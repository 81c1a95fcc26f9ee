"""Keep-ratio sweep: per ratio and backend, executed GMACs, speed, speed-up, efficiency and parity."""
from __future__ import annotations

import copy
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..export.metadata import read_metadata
from .bench import bench_against_baseline, executed_gmacs
from .parity import compare_runners, thresholds_for

DEFAULT_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


@dataclass
class SweepConfig:
    backends: Sequence[str] = ("torch", "ort")
    ratios: Sequence[float] = DEFAULT_RATIOS
    batch: int = 32
    warmup: int = 2
    iters: int = 10
    rounds: int = 2
    threads: Optional[int] = None
    device: str = "cpu"
    compile: bool = False
    fp16: bool = False
    onnx_dir: Optional[str] = None        # exports are cached here, one file per ratio
    elastic_onnx: Optional[str] = None    # one elastic file (idle-export --elastic) serves every ratio instead
    parity_inputs: Optional[np.ndarray] = None


def _cached_export(model, model_name, source, folder: str, ratio: float) -> str:
    """Export `model` once into `folder`; reuse a file whose metadata shows the same weights and schedule."""
    from ..export import export_model
    path = os.path.join(folder, f"{model_name}_r{ratio:g}.onnx")
    if os.path.isfile(path):
        meta = read_metadata(path)
        if (meta.keep_ratios == list(model.keep_ratios) and meta.seed == source.seed
                and meta.ckpt_sha256 == source.ckpt_sha256):
            return path
    export_model(model, model_name, source, path, check_forward=False)
    return path


def _idle_at(model, ratio: float, elastic: bool):
    """A fresh copy of `model` with the schedule a run at `ratio` executes (per backend: runners may move it)."""
    from ..models.elastic import set_elastic_keep_ratio
    idle = copy.deepcopy(model)
    return set_elastic_keep_ratio(idle, ratio) if elastic else idle.set_keep_ratio(ratio)


def _runner(backend: str, model, path: Optional[str], cfg: SweepConfig):
    if backend == "torch":
        from .torch_runner import TorchRunner
        return TorchRunner(model, device=cfg.device, compile=cfg.compile, fp16=cfg.fp16, threads=cfg.threads)
    from .ort_runner import OrtRunner
    return OrtRunner(path, threads=cfg.threads)


def run_sweep(model, model_name: str, source, cfg: SweepConfig, progress=None) -> List[Dict]:
    """One record per (backend, ratio); `model` supplies the weights, its schedule is replaced per ratio.

    Each ratio is timed against the keep-ratio-1.0 runner of the same backend in alternating rounds,
    so the speed-up of every row comes from one interleaved measurement. With `cfg.elastic_onnx` ONNX
    Runtime runs that one file at every ratio (one session, K set per ratio) and nothing is exported
    but the plain baseline.
    """
    from ..factory import image_size
    from .torch_runner import TorchRunner
    img = image_size(model)
    baseline = copy.deepcopy(model).set_keep_ratio(1.0)
    gmacs_base = executed_gmacs(baseline, img)
    gmacs: Dict[float, float] = {}  # per ratio; the same for every backend
    records = []
    for backend in cfg.backends:
        base_path = _cached_export(baseline, model_name, source, cfg.onnx_dir, 1.0) if backend == "ort" else None
        elastic = cfg.elastic_onnx is not None
        shared = _runner(backend, None, cfg.elastic_onnx, cfg) if elastic and backend == "ort" else None
        with _runner(backend, baseline, base_path, cfg) as base_runner, shared or nullcontext():
            for ratio in cfg.ratios:
                idle = _idle_at(model, ratio, elastic)
                if ratio not in gmacs:
                    gmacs[ratio] = executed_gmacs(idle, img)
                if shared is not None:
                    opened = nullcontext(shared.set_keep_ratio(ratio))
                else:
                    path = _cached_export(idle, model_name, source, cfg.onnx_dir, ratio) if backend == "ort" else None
                    opened = _runner(backend, idle, path, cfg)
                with opened as runner:
                    result = bench_against_baseline(runner, base_runner, img_size=img,
                                                    gmacs_idle=gmacs[ratio], gmacs_baseline=gmacs_base,
                                                    batch=cfg.batch, warmup=cfg.warmup, iters=cfg.iters,
                                                    rounds=cfg.rounds)
                    record = {"backend": backend, "keep_ratio": ratio, "elastic": elastic,
                              "gmacs_executed": result.gmacs_idle,
                              "throughput": result.idle.throughput, "latency_p50_ms": result.idle.percentile(50),
                              "latency_p90_ms": result.idle.percentile(90), "speedup": result.speedup,
                              "mac_ratio": result.mac_ratio, "efficiency": result.efficiency,
                              "baseline_throughput": result.baseline.throughput, "setup": result.setup}
                    if backend != "torch" and cfg.parity_inputs is not None:
                        with TorchRunner(idle, threads=cfg.threads) as ref:
                            rep = compare_runners(runner, ref, [cfg.parity_inputs], thresholds_for("fp32"))
                        record.update(max_abs_diff=rep.max_abs_diff, top1_agreement=rep.top1_agreement,
                                      parity_passed=rep.passed)
                records.append(record)
                if progress:
                    progress(record)
    return records
