"""Keep-ratio sweep (IdleViT) or sweep over P (GTP-ViT): per point and backend, executed GMACs, speed, speed-up,
efficiency and parity."""
from __future__ import annotations

import copy
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..models.names import SWEEP_NUM_PROPS
from ..models.schedule import SWEEP_RATIOS
from ..onnx_file.metadata import read_metadata
from ..runtime.bench import bench_against_baseline, executed_gmacs
from ..runtime.parity import compare_runners, thresholds_for
from ..runtime.reference import baseline_of
from ..runtime.runner import make_runner

# backend -> (runtime of its keep-ratio-1.0 baseline, parity limits). "ort-int8" times each ratio's INT8 Q/DQ
# file against the fp32 baseline: its speed-up is what INT8 adds on top of idling.
BACKENDS = {"torch": ("torch", "fp32"), "ort": ("ort", "fp32"), "ort-int8": ("ort", "int8"),
            "openvino": ("openvino", "fp32"), "openvino-bf16": ("openvino-bf16", "bf16")}


@dataclass
class SweepConfig:
    backends: Sequence[str] = ("torch", "ort")
    ratios: Sequence[float] = SWEEP_RATIOS
    num_props: Sequence[int] = SWEEP_NUM_PROPS   # GTP-ViT: tokens propagated per block; 0 = the plain backbone
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
    baseline_onnx: Optional[str] = None   # a checked plain-ViT file to time as the ORT baseline (default: export)
    parity_inputs: Optional[np.ndarray] = None
    calib: Optional[str] = None           # calib.npz for "ort-int8" (idle-calibrate)
    exact_int8: Optional[bool] = None     # ORT int8 kernels: None = exact only on x86 CPUs without VNNI


def _cached_export(model, model_name, source, folder: str, name: str, exporter: str = "dynamo") -> str:
    """Export `model` once into `folder`; reuse a file whose metadata shows the same weights, schedule (GTP-ViT
    settings) and exporter."""
    from .export import export_model, metadata_for
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        meta, want = read_metadata(path), metadata_for(model, model_name)
        if (meta.keep_ratios == want.keep_ratios and meta.gtp == want.gtp and meta.seed == source.seed
                and meta.ckpt_sha256 == source.ckpt_sha256 and meta.exporter == exporter):
            return path
    export_model(model, model_name, source, path, exporter=exporter, check_forward=False)
    return path


def _idle_at(model, point, elastic: bool):
    """A fresh copy of `model` as a run at `point` executes it (per backend: runners may move it): IdleViT at keep
    ratio `point`, GTP-ViT propagating `point` tokens per block."""
    if is_gtp_model(model):
        from ..models.gtp_vit import with_num_prop
        return with_num_prop(model, point)
    from ..models.elastic import set_elastic_keep_ratio
    idle = copy.deepcopy(model)
    return set_elastic_keep_ratio(idle, point) if elastic else idle.set_keep_ratio(point)


def is_gtp_model(model) -> bool:
    return hasattr(model, "gtp")


def sweep_axis(model) -> str:
    """The record field a sweep of `model` varies: "num_prop" (GTP-ViT) or "keep_ratio" (IdleViT)."""
    return "num_prop" if is_gtp_model(model) else "keep_ratio"


def check_num_props(model, num_props: Sequence[int]) -> List[int]:
    """The P values of a GTP-ViT sweep, ascending, with 0 (the plain backbone) added; UserError for a P that is
    negative or leaves no image token after the last block."""
    from ..errors import UserError
    from ..models.gtp_vit import max_uniform_num_prop
    top = max_uniform_num_prop(model)
    for p in num_props:
        if not 0 <= p <= top:
            n, depth = model.patch_embed.num_patches, len(model.blocks)
            raise UserError(f"--num-props {p} is outside 0..{top}: {depth} blocks propagating P tokens each must "
                            f"leave at least one of the {n} image tokens, pass P values in 0..{top}")
    return sorted(set(num_props) | {0})


def _export_name(model_name: str, model, point) -> str:
    return f"{model_name}_p{point}.onnx" if is_gtp_model(model) else f"{model_name}_r{point:g}.onnx"


def _cached_qdq(onnx_path: str, calib: str) -> str:
    """The INT8 Q/DQ file of `onnx_path`, quantized once (again when the ONNX or calib.npz is newer)."""
    from ..calibration.quantize import quantize_int8
    path = onnx_path[:-len(".onnx")] + ".qdq.onnx"
    if not (os.path.isfile(path) and os.path.getmtime(path) >= max(os.path.getmtime(onnx_path),
                                                                    os.path.getmtime(calib))):
        quantize_int8(onnx_path, calib, path)
    return path


def _baseline_file(baseline, model_name, source, cfg: SweepConfig):
    """The ORT baseline: cfg.baseline_onnx as given (checked by the caller), or the fastest form, exported once."""
    from .baseline_onnx import BASELINE_EXPORTER, describe_baseline
    if cfg.baseline_onnx:
        return describe_baseline(cfg.baseline_onnx)
    return describe_baseline(_cached_export(baseline, model_name, source, cfg.onnx_dir,
                                            f"{model_name}_baseline_{BASELINE_EXPORTER}.onnx", BASELINE_EXPORTER))


def _elastic_runner(backend: str, cfg: SweepConfig):
    """One runner of the elastic file for every ratio (its INT8 Q/DQ version, calibrated at the default ratio,
    for "ort-int8")."""
    path = cfg.elastic_onnx
    if backend == "ort-int8":
        path = _cached_qdq(path, cfg.calib)
    return _runner(backend, None, path, cfg)


def _runner(backend: str, model, path: Optional[str], cfg: SweepConfig):
    if backend == "torch":
        return make_runner("torch", model=model, device=cfg.device, compile=cfg.compile, fp16=cfg.fp16,
                           threads=cfg.threads)
    if backend.startswith("openvino"):
        return make_runner("openvino", onnx=path, precision="bf16" if backend == "openvino-bf16" else "f32",
                           threads=cfg.threads)
    return make_runner("ort", onnx=path, threads=cfg.threads, exact_int8=cfg.exact_int8)


def elastic_reference(onnx_path: str, ratios: Sequence[float], ckpt: Optional[str] = None):
    """(model, source) the elastic file `onnx_path` was exported from; every ratio of the sweep must fit its K range."""
    from ..errors import UserError
    from ..onnx_file.elastic import ElasticKeep
    from ..runtime.reference import reference_from_metadata
    meta = read_metadata(onnx_path)
    if not meta.elastic:
        raise UserError(f"--onnx {onnx_path} has a fixed keep ratio: sweep needs an elastic file (idle-export "
                        "--elastic), or drop --onnx to export one file per ratio")
    spec = ElasticKeep.from_metadata(meta, onnx_path)
    for ratio in ratios:
        spec.stage_tokens(ratio)
    return reference_from_metadata(meta, onnx_path, ckpt=ckpt, warn_random=False)


def run_sweep(model, model_name: str, source, cfg: SweepConfig, progress=None) -> List[Dict]:
    """One record per (backend, point); `model` supplies the weights, its schedule is replaced per point: keep
    ratios `cfg.ratios` for IdleViT, P per block `cfg.num_props` for GTP-ViT (the record's "num_prop").

    Each point is timed against the plain runner (keep ratio 1.0; for GTP-ViT the backbone without its graph)
    of the same backend in alternating rounds, so the speed-up of every row comes from one interleaved
    measurement. With `cfg.elastic_onnx` every ONNX backend runs that one file at every ratio (one session,
    K set per ratio) and nothing is exported but the plain baseline.
    """
    from ..factory import image_size
    img = image_size(model)
    baseline = baseline_of(model)
    gmacs_base = executed_gmacs(baseline, img)
    axis = sweep_axis(model)
    points = cfg.num_props if axis == "num_prop" else cfg.ratios
    gmacs: Dict[float, float] = {}  # per point; the same for every backend
    records = []
    elastic = cfg.elastic_onnx is not None
    for backend in cfg.backends:
        base_backend, precision = BACKENDS[backend]
        on_onnx = backend != "torch"
        base_file = _baseline_file(baseline, model_name, source, cfg) if on_onnx else None
        shared = _elastic_runner(backend, cfg) if elastic and on_onnx else None
        with _runner(base_backend, baseline, base_file.path if base_file else None, cfg) as base_runner, \
                shared or nullcontext():
            for point in points:
                idle = _idle_at(model, point, elastic)
                if point not in gmacs:
                    gmacs[point] = executed_gmacs(idle, img)
                if shared is not None:
                    opened = nullcontext(shared.set_keep_ratio(point))
                else:
                    path = (_cached_export(idle, model_name, source, cfg.onnx_dir,
                                           _export_name(model_name, model, point)) if on_onnx else None)
                    if backend == "ort-int8":
                        path = _cached_qdq(path, cfg.calib)
                    opened = _runner(backend, idle, path, cfg)
                with opened as runner:
                    result = bench_against_baseline(runner, base_runner, img_size=img,
                                                    gmacs_idle=gmacs[point], gmacs_baseline=gmacs_base,
                                                    batch=cfg.batch, warmup=cfg.warmup, iters=cfg.iters,
                                                    rounds=cfg.rounds)
                    record = {"backend": backend, axis: point, "elastic": elastic,
                              "gmacs_executed": result.gmacs_idle,
                              "throughput": result.idle.throughput, "latency_p50_ms": result.idle.percentile(50),
                              "latency_p90_ms": result.idle.percentile(90), "speedup": result.speedup,
                              "mac_ratio": result.mac_ratio, "efficiency": result.efficiency,
                              "baseline_throughput": result.baseline.throughput, "setup": result.setup}
                    if base_file:
                        record["baseline_file"] = base_file.to_json()
                    if backend != "torch" and cfg.parity_inputs is not None:
                        with make_runner("torch", model=idle, threads=cfg.threads) as ref:
                            rep = compare_runners(runner, ref, [cfg.parity_inputs], thresholds_for(precision))
                        record.update(max_abs_diff=rep.max_abs_diff, top1_agreement=rep.top1_agreement,
                                      cosine=rep.cosine_mean, parity_passed=rep.passed)
                records.append(record)
                if progress:
                    progress(record)
    return records
