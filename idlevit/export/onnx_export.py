"""Export an IdleViT to ONNX: constant K per block, TopK, row Gather and row ScatterND, batch the only
dynamic axis."""
from __future__ import annotations

import io
import logging
import os
import sys
import time
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import torch

from ..errors import UserError
from ..fileio import atomic_output
from ..models.schedule import DEFAULT_KEEP_RATIO, IDLE_STAGES, KeepSchedule
from ..onnx_file.elastic import KEEP_INPUT_NAMES
from ..onnx_file.metadata import ExportMetadata, write_metadata
from ..onnx_file.selection_outputs import add_selection_outputs
from .graph_checks import MAX_TOPK, OPSET_RANGE, GraphCheckReport, check_tensorrt_compat
from .ort_fusable import make_ort_fusable
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
    keep_ratio: Optional[float] = None      # elastic files: the ratio both sides ran at (None: the default)


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


def check_exportable(model: torch.nn.Module, *, opset: int, batch: int, exporter: str, elastic: bool = False) -> None:
    """Refuse what TensorRT (or torch.export) cannot take, before spending time on the export."""
    if elastic:
        _check_elastic(model)
    _check_gtp(model)
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


def _check_gtp(model: torch.nn.Module) -> None:
    gtp = getattr(model, "gtp", None)
    if gtp is not None and gtp.sparsity < 1:
        raise UserError(f"GTP-ViT sparsity={gtp.sparsity:g} needs TopK over all N^2 attention entries, beyond "
                        f"TensorRT's K <= {MAX_TOPK}: it runs in PyTorch only; export with sparsity=1.0")


def _check_elastic(model: torch.nn.Module) -> None:
    ratios = getattr(model, "keep_ratios", None)
    if ratios is None or not hasattr(model, "num_image_tokens") or hasattr(model, "gtp"):
        raise UserError(f"{type(model).__name__} is not an IdleViT: --elastic needs one")
    base = KeepSchedule.of_block_ratios(ratios).staged_ratio
    if base is None or base >= 1.0:
        raise UserError("--elastic needs the four-stage schedule with a default keep ratio below 1 (the file's "
                        f"default): pass --keep-ratio {DEFAULT_KEEP_RATIO:g} instead of --keep-ratios or 1.0")
    if model.num_image_tokens > MAX_TOPK:
        raise UserError(f"{model.num_image_tokens} image tokens exceed TensorRT's TopK limit of {MAX_TOPK}, and "
                        "an elastic file sorts them all: lower the image size")


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


def _trace_inputs(model: torch.nn.Module, dummy: torch.Tensor, elastic: bool):
    """(module, example args, {input name: (dynamic dim symbol, min, max)}) to export.

    Elastic: the model is wrapped so each idle stage's K is the length of a `keep_tokens.<s>` input.
    The traced lengths differ from each other and from every model dim, so the exporter keeps each
    one a symbol of its own.
    """
    dims = {INPUT_NAME: (BATCH_DIM, 1, None)}
    if not elastic:
        return model, (dummy,), dims
    from ..models.elastic import ElasticIdleViT
    n = model.num_image_tokens
    keep = [torch.zeros(max(2, n - s)) for s in IDLE_STAGES]
    for name in KEEP_INPUT_NAMES:
        dims[name] = (name.replace(".", "_"), 1, n)
    return ElasticIdleViT(model), (dummy, *keep), dims


def _to_onnx_proto(model: torch.nn.Module, args, dims, opset: int, exporter: str) -> onnx.ModelProto:
    names = list(dims)
    with warnings.catch_warnings(), _quiet_exporter_logs():
        # the legacy exporter's deprecation note and tracer warnings about Python bools are expected;
        # the forward check below is what proves the graph right
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            shapes = tuple({0: torch.export.Dim(sym, min=low, max=high) if high else torch.export.Dim(sym, min=low)}
                           for sym, low, high in dims.values())
            program = torch.onnx.export(model, args, dynamo=True, input_names=names,
                                        output_names=[OUTPUT_NAME], dynamic_shapes=shapes,
                                        opset_version=opset, verbose=False, optimize=True)
            return program.model_proto
        buffer = io.BytesIO()
        axes = {name: {0: sym} for name, (sym, _, _) in dims.items()}
        torch.onnx.export(model, args, buffer, dynamo=False, input_names=names,
                          output_names=[OUTPUT_NAME], opset_version=opset, do_constant_folding=True,
                          dynamic_axes={**axes, OUTPUT_NAME: {0: BATCH_DIM}})
        return onnx.load_from_string(buffer.getvalue())


def export_onnx(model: torch.nn.Module, path: str, *, metadata: ExportMetadata, opset: int = 18, batch: int = 2,
                exporter: str = "dynamo", simplify: Union[bool, str] = True, check_trt: bool = True,
                selection_outputs: bool = False, seed: int = 0, elastic: bool = False) -> ExportReport:
    """Export `model` (eval mode, fp32) to `path`, check the graph, and rename it into place.

    The forward check (ONNX Runtime against PyTorch) runs on top of this, in
    `idlevit.workflows.export.export_model`: it needs the runtime package.

    Args:
        model: an IdleViT (or any timm ViT) in eval mode.
        path: output .onnx file; written to a temp file beside it first, so a failure leaves nothing.
        metadata: what built the model (see `metadata_for`); written to metadata_props.
        opset: ONNX opset, 17-20 (what TensorRT 10/11 parse).
        batch: export batch (>= 2: torch.export specialises size-1 dims). Batch is the only dynamic axis.
        exporter: "dynamo" (torch.export) or "torchscript" (legacy tracer).
        simplify: True (onnxslim), False, or a name from `SIMPLIFIERS` ("auto" measures both).
        check_trt: run `check_tensorrt_compat` (ops TensorRT parses, TopK rules, no data-dependent
            shape) and fail on any issue.
        selection_outputs: also expose each TopK's indices as `topk_indices.<i>` outputs.
        elastic: K of each idle stage is the length of an input `keep_tokens.<s>` (1..N), chosen per
            call; the model's own ratio is the file's default.

    Returns:
        ExportReport. Raises UserError on bad arguments, ExportCheckError when a check fails.
    """
    start = time.perf_counter()
    method = {True: DEFAULT_SIMPLIFIER, False: "none"}.get(simplify, simplify)
    if method not in SIMPLIFIERS:
        raise UserError(f"unknown simplifier {simplify!r}: use one of {', '.join(SIMPLIFIERS)}")
    check_exportable(model, opset=opset, batch=batch, exporter=exporter, elastic=elastic)
    img_size = metadata.img_size
    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    dummy = torch.randn(batch, 3, img_size, img_size, generator=gen)
    if elastic:
        metadata.elastic, metadata.keep_token_range = True, [1, model.num_image_tokens]
    with atomic_output(path, suffix=".onnx") as tmp:
        # onnxscript 0.6 print()s its rewrite counts (the exporter's and ours): stdout is kept for the tools'
        # tables and --json
        with torch.no_grad(), redirect_stdout(sys.stderr):
            module, args, dims = _trace_inputs(model, dummy, elastic)
            proto = _to_onnx_proto(module, args, dims, opset, exporter)
            proto, simplify_report = simplify_onnx(proto, method, probe=dummy.numpy() if method == "auto" else None)
            proto = make_ort_fusable(proto)
        metadata.exporter, metadata.opset, metadata.simplifier = exporter, opset, simplify_report.chosen
        write_metadata(proto, metadata)
        proto.producer_name, proto.producer_version = "idlevit", metadata.idlevit_version
        proto.doc_string = (f"GTP-ViT {metadata.model_name}, settings {metadata.gtp}" if metadata.method == "gtp" else
                            f"IdleViT {metadata.model_name}, keep ratios {metadata.keep_ratios}, "
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
    report.seconds = time.perf_counter() - start
    return report


def metadata_for(model: torch.nn.Module, model_name: str, *, ckpt_sha256: Optional[str] = None,
                 seed: Optional[int] = None, extra: Optional[Dict[str, str]] = None,
                 model_kwargs: Optional[Dict] = None) -> ExportMetadata:
    """ExportMetadata describing `model` (its schedule, image size, eval data config, versions)."""
    import timm

    from .. import __version__
    from ..factory import image_size, model_data_config
    img = image_size(model)
    cfg = model_data_config(model)
    ratios = [float(r) for r in getattr(model, "keep_ratios", [1.0] * len(model.blocks))]
    keep_ratio = KeepSchedule.of_block_ratios(ratios).staged_ratio
    gtp = getattr(model, "gtp", None)
    data_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return ExportMetadata(
        model_name=model_name, keep_ratios=ratios,
        keep_tokens=list(getattr(model, "keep_tokens", [None] * len(ratios))),
        img_size=img, num_classes=int(model.num_classes), mean=[float(m) for m in cfg["mean"]],
        std=[float(s) for s in cfg["std"]], data_config=data_config, exporter="", torch_version=torch.__version__,
        opset=0, idlevit_version=__version__, keep_ratio=None if gtp is not None else keep_ratio, ckpt_sha256=ckpt_sha256,
        seed=None if ckpt_sha256 else seed, timm_version=timm.__version__, extra=dict(extra or {}),
        method="gtp" if gtp is not None else "idlevit", gtp=gtp.to_json() if gtp is not None else None,
        model_kwargs=dict(model_kwargs) if model_kwargs else None)
