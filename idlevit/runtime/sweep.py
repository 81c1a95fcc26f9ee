"""Keep-ratio sweep: per ratio and backend, executed GMACs, speed, speed-up, efficiency and parity."""
from __future__ import annotations

import copy
import os
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
    baseline_onnx: Optional[str] = None   # a checked plain-ViT file to time as the ORT baseline (default: export)
    parity_inputs: Optional[np.ndarray] = None


def _cached_export(model, model_name, source, folder: str, ratio: float, exporter: str = "dynamo",
                   name: Optional[str] = None) -> str:
    """Export `model` once into `folder`; reuse a file whose metadata shows the same weights, schedule and exporter."""
    from ..export import export_model
    path = os.path.join(folder, name or f"{model_name}_r{ratio:g}.onnx")
    if os.path.isfile(path):
        meta = read_metadata(path)
        if (meta.keep_ratios == list(model.keep_ratios) and meta.seed == source.seed
                and meta.ckpt_sha256 == source.ckpt_sha256 and meta.exporter == exporter):
            return path
    export_model(model, model_name, source, path, exporter=exporter, check_forward=False)
    return path


def _baseline_file(baseline, model_name, source, cfg: SweepConfig):
    """The ORT baseline: cfg.baseline_onnx as given (checked by the caller), or the fastest form, exported once."""
    from .baseline_onnx import BASELINE_EXPORTER, describe_baseline
    if cfg.baseline_onnx:
        return describe_baseline(cfg.baseline_onnx)
    return describe_baseline(_cached_export(baseline, model_name, source, cfg.onnx_dir, 1.0, BASELINE_EXPORTER,
                                            f"{model_name}_baseline_{BASELINE_EXPORTER}.onnx"))


def _runner(backend: str, model, path: Optional[str], cfg: SweepConfig):
    if backend == "torch":
        from .torch_runner import TorchRunner
        return TorchRunner(model, device=cfg.device, compile=cfg.compile, fp16=cfg.fp16, threads=cfg.threads)
    from .ort_runner import OrtRunner
    return OrtRunner(path, threads=cfg.threads)


def run_sweep(model, model_name: str, source, cfg: SweepConfig, progress=None) -> List[Dict]:
    """One record per (backend, ratio); `model` supplies the weights, its schedule is replaced per ratio.

    Each ratio is timed against the keep-ratio-1.0 runner of the same backend in alternating rounds,
    so the speed-up of every row comes from one interleaved measurement.
    """
    from ..factory import image_size
    from .torch_runner import TorchRunner
    img = image_size(model)
    baseline = copy.deepcopy(model).set_keep_ratio(1.0)
    gmacs_base = executed_gmacs(baseline, img)
    gmacs: Dict[float, float] = {}  # per ratio; the same for every backend
    records = []
    for backend in cfg.backends:
        base_file = _baseline_file(baseline, model_name, source, cfg) if backend == "ort" else None
        with _runner(backend, baseline, base_file.path if base_file else None, cfg) as base_runner:
            for ratio in cfg.ratios:
                idle = copy.deepcopy(model).set_keep_ratio(ratio)  # fresh per backend: runners may move it
                if ratio not in gmacs:
                    gmacs[ratio] = executed_gmacs(idle, img)
                path = _cached_export(idle, model_name, source, cfg.onnx_dir, ratio) if backend == "ort" else None
                with _runner(backend, idle, path, cfg) as runner:
                    result = bench_against_baseline(runner, base_runner, img_size=img,
                                                    gmacs_idle=gmacs[ratio], gmacs_baseline=gmacs_base,
                                                    batch=cfg.batch, warmup=cfg.warmup, iters=cfg.iters,
                                                    rounds=cfg.rounds)
                    record = {"backend": backend, "keep_ratio": ratio, "gmacs_executed": result.gmacs_idle,
                              "throughput": result.idle.throughput, "latency_p50_ms": result.idle.percentile(50),
                              "latency_p90_ms": result.idle.percentile(90), "speedup": result.speedup,
                              "mac_ratio": result.mac_ratio, "efficiency": result.efficiency,
                              "baseline_throughput": result.baseline.throughput, "setup": result.setup}
                    if base_file:
                        record["baseline_file"] = base_file.to_json()
                    if backend != "torch" and cfg.parity_inputs is not None:
                        with TorchRunner(idle, threads=cfg.threads) as ref:
                            rep = compare_runners(runner, ref, [cfg.parity_inputs], thresholds_for("fp32"))
                        record.update(max_abs_diff=rep.max_abs_diff, top1_agreement=rep.top1_agreement,
                                      parity_passed=rep.passed)
                records.append(record)
                if progress:
                    progress(record)
    return records
