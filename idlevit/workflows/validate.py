"""End-to-end check of one model: export, TensorRT op rules, ORT CPU parity on photos + random inputs, short bench."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..factory import image_size
from ..fileio import scratch_dir
from ..images import eval_transform, load_images
from ..runtime.bench import BenchResult, bench_against_baseline, executed_gmacs
from ..runtime.inputs import BUNDLED_PHOTOS, batched, photos_array, random_inputs
from ..runtime.parity import ParityReport, compare_runners, thresholds_for
from ..runtime.reference import baseline_of


@dataclass
class ValidateReport:
    export: object                     # idlevit.export.ExportReport
    parity: ParityReport
    bench: BenchResult
    inputs: str
    seconds: Dict[str, float] = field(default_factory=dict)
    backend: str = "ort"               # the runtime of the parity check and the bench
    precision: str = "fp32"            # its precision: fp32, or OpenVINO's bf16 when --backend auto picked it
    auto: Optional[object] = None      # runtime.auto_backend.Choice under --backend auto

    @property
    def passed(self) -> bool:
        graph_ok = self.export.graph_check is None or self.export.graph_check.ok
        return graph_ok and self.parity.passed

    def to_json(self) -> dict:
        return {"passed": self.passed, "backend": self.backend, "precision": self.precision,
                "export": self.export.to_json(), "parity": self.parity.to_json(),
                "bench": self.bench.to_json(), "inputs": self.inputs,
                **({"backend_auto": self.auto.to_json()} if self.auto is not None else {}),
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def validate(model, source, model_name: str, out_path: str, *, image_paths: Optional[Sequence[str]] = None,
             num_random: int = 8, batch: int = 4, bench_batch: int = 8, warmup: int = 1, iters: int = 6,
             rounds: int = 2, threads: Optional[int] = None, exporter: str = "dynamo", opset: int = 18,
             simplify="onnxslim", backend: str = "ort", elastic: bool = False,
             log: Callable[[str], None] = lambda s: None, auto_refresh: bool = False) -> ValidateReport:
    """Export `model` to `out_path`, check it, run CPU parity ("ort" or "openvino", fp32) and a short bench
    against the baseline on the same runtime.

    Raises ExportCheckError when the export's own checks fail (checker, TensorRT rules, forward).
    With `elastic` the file takes K per call; parity and bench run it at its default, `model`'s ratio.
    `backend="auto"` picks the CPU backend and precision for the exported file (runtime.auto_backend) first.
    """
    from .export import export_model
    from ..runtime.runner import make_runner

    seconds = {}
    img = image_size(model)
    t0 = time.perf_counter()
    log(f"[1/4] exporting {model_name} to {out_path} ({exporter} exporter)")
    export = export_model(model, model_name, source, out_path, exporter=exporter, opset=opset, simplify=simplify,
                          elastic=elastic)
    seconds["export"] = time.perf_counter() - t0
    auto, precision = None, "fp32"
    if backend == "auto":
        from ..runtime.auto_backend import pick_backend
        auto = pick_backend(out_path, threads=threads, batch=bench_batch, refresh=auto_refresh, log=log)
        log(auto.describe())
        backend, precision = auto.picked.backend, auto.picked.precision
    options = {"precision": "bf16"} if precision == "bf16" else {}

    t0 = time.perf_counter()
    if image_paths:
        photos = load_images(image_paths, eval_transform(export.metadata.data_config))
        what = f"{len(image_paths)} images"
    else:
        photos = photos_array(eval_transform(export.metadata.data_config))
        what = f"{len(BUNDLED_PHOTOS)} scikit-image photographs"
    x = np.concatenate([photos, random_inputs(num_random, img, seed=0)]) if num_random else photos
    inputs = f"{what} + {num_random} random inputs, batches of {batch}"
    log(f"[2/4] parity on {backend} (CPU) vs PyTorch: {inputs}")
    selection = export.metadata.reports_selection
    with make_runner(backend, onnx=out_path, threads=threads, selection=selection, **options) as cand, \
            make_runner("torch", model=model, threads=threads, selection=selection) as ref:
        parity = compare_runners(cand, ref, batched(x, batch), thresholds_for(precision))
    seconds["parity"] = time.perf_counter() - t0

    with scratch_dir("validate") as tmp:
        t0 = time.perf_counter()
        log("[3/4] exporting the keep-ratio-1.0 baseline (same weights) for the bench")
        base_model = baseline_of(model)
        base_path = os.path.join(tmp, "baseline.onnx")
        export_model(base_model, model_name, source, base_path, exporter=exporter, opset=opset, simplify=simplify,
                     check_forward=False)
        seconds["baseline export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        log(f"[4/4] bench on {backend} (CPU), batch {bench_batch}: {warmup} warmup + {iters} timed calls each")
        bench = bench_against_baseline(
            make_runner(backend, onnx=out_path, threads=threads, **options),
            make_runner(backend, onnx=base_path, threads=threads, **options),
            img_size=img,
            gmacs_idle=executed_gmacs(model, img), gmacs_baseline=executed_gmacs(base_model, img),
            batch=bench_batch, warmup=warmup, iters=iters, rounds=rounds)
        bench.setup.update({"model": model_name, "keep_ratios": list(model.keep_ratios), "img_size": img})
        seconds["bench"] = time.perf_counter() - t0
    return ValidateReport(export, parity, bench, inputs, seconds, backend, precision, auto)
