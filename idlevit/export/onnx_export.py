"""Export an IdleViT to ONNX: constant K per block, TopK, row Gather and a row-map ScatterElements, batch the only
dynamic axis."""
from __future__ import annotations

import io
import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import torch

from ..errors import UserError
from ..fileio import atomic_output
from .graph_checks import MAX_TOPK, OPSET_RANGE, GraphCheckReport, check_tensorrt_compat
from .metadata import ExportMetadata, write_metadata
from .ort_fusable import make_ort_fusable
from .selection_outputs import add_selection_outputs
from .simplify import DEFAULT_SIMPLIFIER, SIMPLIFIERS, SimplifyReport, simplify_onnx

EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "input", "logits", "batch"


class ExportCheckError(RuntimeError):
    """The exported graph failed a check (checker, forward parity, TensorRT op rules)."""


@dataclass
class ForwardCheck:
    batch: int
    max_abs_diff: float
    top1_agreement: float


@dataclass
class ExportReport:
    path: str
    exporter: str
    opset: int
    nodes: int
    bytes: int
    seconds: float
    metadata: ExportMetadata
    simplify: SimplifyReport
    graph_check: Optional[GraphCheckReport] = None
    forward_checks: List[ForwardCheck] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": self.path, "exporter": self.exporter, "opset": self.opset, "nodes": self.nodes,
                "bytes": self.bytes, "seconds": round(self.seconds, 2), "metadata": self.metadata.to_props(),
                "simplify": self.simplify.to_json(),
                "graph_check": self.graph_check.to_json() if self.graph_check else None,
                "forward_checks": [vars(c) for c in self.forward_checks]}


def check_exportable(model: torch.nn.Module, *, opset: int, batch: int, exporter: str) -> None:
    """Refuse what TensorRT (or torch.export) cannot take, before spending time on the export."""
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r}: use one of {', '.join(EXPORTERS)}")
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise UserError(f"opset {opset} is outside {OPSET_RANGE[0]}-{OPSET_RANGE[1]}, the range TensorRT 10 and 11 "
                        "parse: pass --opset 18")
    if batch < 2:
        raise UserError(f"export batch {batch} < 2: torch.export specialises size-1 dims, pass a batch of 2 or more")
    for i, k in enumerate(getattr(model, "keep_tokens", [])):
        if k is not None and k > MAX_TOPK:
            raise UserError(f"block {i} selects K = {k} tokens, above TensorRT's TopK limit of {MAX_TOPK}: "
                            "lower the keep ratio or the image size")


@contextmanager
def _quiet_exporter_logs():
    """The exporter's passes log every deduplicated initializer at INFO; keep CLIs readable."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _to_onnx_proto(model: torch.nn.Module, dummy: torch.Tensor, opset: int, exporter: str) -> onnx.ModelProto:
    with warnings.catch_warnings(), _quiet_exporter_logs():
        # the legacy exporter's deprecation note and tracer warnings about Python bools are expected;
        # the forward check below is what proves the graph right
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim(BATCH_DIM, min=1)
            program = torch.onnx.export(model, (dummy,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                                        opset_version=opset, verbose=False, optimize=True)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (dummy,), buffer, dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset, do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}})
        return onnx.load_from_string(buffer.getvalue())


def export_onnx(model: torch.nn.Module, path: str, *, metadata: ExportMetadata, opset: int = 18, batch: int = 2,
                exporter: str = "dynamo", simplify: Union[bool, str] = True, check_forward: bool = True,
                check_batches: Sequence[int] = (1, 3), atol: float = 1e-4, check_trt: bool = True,
                selection_outputs: bool = False, seed: int = 0, threads: Optional[int] = None) -> ExportReport:
    """Export `model` (eval mode, fp32) to `path`, check it, and rename it into place.

    Args:
        model: an IdleViT (or any timm ViT) in eval mode.
        path: output .onnx file; written to a temp file beside it first, so a failure leaves nothing.
        metadata: what built the model (see `metadata_for`); written to metadata_props.
        opset: ONNX opset, 17-20 (what TensorRT 10/11 parse).
        batch: export batch (>= 2: torch.export specialises size-1 dims). Batch is the only dynamic axis.
        exporter: "dynamo" (torch.export) or "torchscript" (legacy tracer).
        simplify: True (onnxslim), False, or a name from `SIMPLIFIERS` ("auto" measures both).
        check_forward: run ONNX Runtime against PyTorch on seeded inputs of `check_batches` and the
            export batch; fail when max abs diff > atol or top-1 differs.
        check_trt: run `check_tensorrt_compat` (ops TensorRT parses, TopK rules, no data-dependent
            shape) and fail on any issue.
        selection_outputs: also expose each TopK's indices as `topk_indices.<i>` outputs.
        threads: CPU threads of the forward check (default: all this process may use for ORT, torch as set).

    Returns:
        ExportReport. Raises UserError on bad arguments, ExportCheckError when a check fails.
    """
    start = time.perf_counter()
    method = {True: DEFAULT_SIMPLIFIER, False: "none"}.get(simplify, simplify)
    if method not in SIMPLIFIERS:
        raise UserError(f"unknown simplifier {simplify!r}: use one of {', '.join(SIMPLIFIERS)}")
    check_exportable(model, opset=opset, batch=batch, exporter=exporter)
    img_size = metadata.img_size
    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    dummy = torch.randn(batch, 3, img_size, img_size, generator=gen)
    with atomic_output(path, suffix=".onnx") as tmp:
        with torch.no_grad():
            proto = _to_onnx_proto(model, dummy, opset, exporter)
        proto, simplify_report = simplify_onnx(proto, method, probe=dummy.numpy() if method == "auto" else None)
        proto = make_ort_fusable(proto)
        metadata.exporter, metadata.opset, metadata.simplifier = exporter, opset, simplify_report.chosen
        write_metadata(proto, metadata)
        proto.producer_name, proto.producer_version = "idlevit", metadata.idlevit_version
        proto.doc_string = (f"IdleViT {metadata.model_name}, keep ratios {metadata.keep_ratios}, "
                            f"K per block {metadata.keep_tokens}")
        if selection_outputs:
            proto, _ = add_selection_outputs(proto)
        onnx.save(proto, tmp)
        try:
            onnx.checker.check_model(tmp, full_check=True)
        except onnx.checker.ValidationError as e:
            raise ExportCheckError(f"onnx.checker rejected the graph: {str(e).splitlines()[0][:200]}") from None
        report = ExportReport(path, exporter, opset, len(proto.graph.node), os.path.getsize(tmp), 0.0, metadata,
                              simplify_report)
        if check_trt:
            report.graph_check = check_tensorrt_compat(proto, expected_topk=metadata.num_topk)
            if not report.graph_check.ok:
                raise ExportCheckError(f"graph breaks the TensorRT rules: {report.graph_check.issues[0]} "
                                       f"(+{len(report.graph_check.issues) - 1} more)")
        if check_forward:
            batches = sorted(set(check_batches) | {batch})
            report.forward_checks = forward_check(model, tmp, img_size, batches, seed=seed, threads=threads)
            worst = max(report.forward_checks, key=lambda c: c.max_abs_diff)
            if worst.max_abs_diff > atol or any(c.top1_agreement < 1.0 for c in report.forward_checks):
                raise ExportCheckError(f"ONNX Runtime disagrees with PyTorch at batch {worst.batch}: max abs diff "
                                       f"{worst.max_abs_diff:.2e} (limit {atol:g}), top-1 agreement "
                                       f"{min(c.top1_agreement for c in report.forward_checks):.3f}")
    report.seconds = time.perf_counter() - start
    return report


def forward_check(model: torch.nn.Module, onnx_path: str, img_size: int, batches: Sequence[int],
                  seed: int = 0, threads: Optional[int] = None) -> List[ForwardCheck]:
    """ONNX Runtime (CPU) vs PyTorch on seeded random inputs, one batch size at a time."""
    from ..runtime.ort_runner import OrtRunner
    from ..runtime.torch_runner import TorchRunner
    checks = []
    gen = torch.Generator().manual_seed(seed + 1)
    with OrtRunner(onnx_path, provider="cpu", threads=threads) as runner, \
            TorchRunner(model, threads=threads) as reference:
        for b in batches:
            x = torch.randn(b, 3, img_size, img_size, generator=gen).numpy()
            ref = reference.infer(x)[OUTPUT_NAME]
            out = runner.infer(x)[OUTPUT_NAME]
            checks.append(ForwardCheck(b, float(np.abs(out - ref).max()),
                                       float((out.argmax(-1) == ref.argmax(-1)).mean())))
    return checks


def metadata_for(model: torch.nn.Module, model_name: str, *, ckpt_sha256: Optional[str] = None,
                 seed: Optional[int] = None, extra: Optional[Dict[str, str]] = None) -> ExportMetadata:
    """ExportMetadata describing `model` (its schedule, image size, eval data config, versions)."""
    import timm

    from .. import __version__
    from ..factory import image_size, model_data_config
    from ..models import keep_ratio_schedule
    img = image_size(model)
    cfg = model_data_config(model)
    ratios = [float(r) for r in getattr(model, "keep_ratios", [1.0] * len(model.blocks))]
    base = ratios[[round(len(ratios) * s / 4) for s in range(4)][1]] if ratios else 1.0
    keep_ratio = base if keep_ratio_schedule(len(ratios), base) == ratios else None
    data_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return ExportMetadata(
        model_name=model_name, keep_ratios=ratios,
        keep_tokens=list(getattr(model, "keep_tokens", [None] * len(ratios))),
        img_size=img, num_classes=int(model.num_classes), mean=[float(m) for m in cfg["mean"]],
        std=[float(s) for s in cfg["std"]], data_config=data_config, exporter="", torch_version=torch.__version__,
        opset=0, idlevit_version=__version__, keep_ratio=keep_ratio, ckpt_sha256=ckpt_sha256,
        seed=None if ckpt_sha256 else seed, timm_version=timm.__version__, extra=dict(extra or {}))


def export_model(model: torch.nn.Module, model_name: str, source, path: str, **kwargs) -> ExportReport:
    """`export_onnx` with metadata built from `model` and its `ModelSource` (checkpoint sha256 or seed)."""
    meta = metadata_for(model, model_name, ckpt_sha256=source.ckpt_sha256, seed=source.seed)
    return export_onnx(model, path, metadata=meta, **kwargs)
