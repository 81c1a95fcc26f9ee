"""Export + forward check: the written file must compute what the PyTorch model computes.

The check runs ONNX Runtime (CPU) against PyTorch through the runtime's runners and parity
comparator, so it lives above both the export and the runtime packages.
"""
from __future__ import annotations

import time
from typing import List, Optional, Sequence

import torch

from ..export.onnx_export import ExportCheckError, ExportReport, ForwardCheck, export_onnx, metadata_for
from ..fileio import atomic_output
from ..runtime.parity import Thresholds, compare_runners

ELASTIC_CHECK_RATIOS = (None, 1.0, 0.5, 0.25)   # the default, every token, and low ratios


def forward_check(model: torch.nn.Module, onnx_path: str, img_size: int, batches: Sequence[int],
                  seed: int = 0, threads: Optional[int] = None,
                  keep_ratios: Sequence[Optional[float]] = (None,)) -> List[ForwardCheck]:
    """ONNX Runtime (CPU) vs PyTorch on seeded random inputs, one batch size (and keep ratio) at a time.

    `keep_ratios` other than None need an elastic file: both sides then run at that ratio.
    """
    from ..runtime.runner import make_runner
    checks = []
    gen = torch.Generator().manual_seed(seed + 1)
    with make_runner("ort", onnx=onnx_path, provider="cpu", threads=threads) as runner, \
            make_runner("torch", model=model, threads=threads) as reference:
        for b in batches:
            x = torch.randn(b, 3, img_size, img_size, generator=gen).numpy()
            for ratio in keep_ratios:
                parity = compare_runners(runner, reference, [x], Thresholds(), keep_ratio=ratio)
                checks.append(ForwardCheck(b, parity.max_abs_diff, parity.top1_agreement, ratio))
    return checks


def export_model(model: torch.nn.Module, model_name: str, source, path: str, *, check_forward: bool = True,
                 check_batches: Sequence[int] = (1, 3), atol: float = 1e-4, batch: int = 2, seed: int = 0,
                 threads: Optional[int] = None, elastic: bool = False, **kwargs) -> ExportReport:
    """`export_onnx` with metadata from `model` and its `ModelSource` (checkpoint sha256 or seed), then the
    forward check on the written file before it is renamed into place.

    check_forward: run ONNX Runtime against PyTorch on seeded inputs of `check_batches` and the export
        batch (elastic files also at keep ratio 1.0 and low ones); ExportCheckError when max abs diff
        > atol or top-1 differs, and nothing is left at `path`.
    threads: CPU threads of the forward check (default: all this process may use for ORT, torch as set).
    Other keyword arguments go to `export_onnx`.
    """
    meta = metadata_for(model, model_name, ckpt_sha256=source.ckpt_sha256, seed=source.seed,
                        model_kwargs=getattr(source, "model_kwargs", None))
    options = dict(kwargs, batch=batch, seed=seed, elastic=elastic)
    if not check_forward:
        return export_onnx(model, path, metadata=meta, **options)
    with atomic_output(path, suffix=".onnx") as tmp:
        report = export_onnx(model, tmp, metadata=meta, **options)
        batches = sorted(set(check_batches) | {batch})
        ratios = ELASTIC_CHECK_RATIOS if elastic else (None,)
        start = time.perf_counter()
        report.forward_checks = forward_check(model, tmp, meta.img_size, batches, seed=seed, threads=threads,
                                              keep_ratios=ratios)
        worst = max(report.forward_checks, key=lambda c: c.max_abs_diff)
        if worst.max_abs_diff > atol or any(c.top1_agreement < 1.0 for c in report.forward_checks):
            raise ExportCheckError(f"ONNX Runtime disagrees with PyTorch at batch {worst.batch}: max abs diff "
                                   f"{worst.max_abs_diff:.2e} (limit {atol:g}), top-1 agreement "
                                   f"{min(c.top1_agreement for c in report.forward_checks):.3f}")
        report.seconds += time.perf_counter() - start
    report.path = path
    return report

