"""`idle-export`: IdleViT to a checked ONNX file (TopK, row Gather/ScatterND, batch the only dynamic axis)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .common import ArgumentParser, add_json_flag, add_model_args, check_output_path, model_from_args, run_cli, write_json

EXIT_CHECK_FAILED = 1


def add_export_args(parser: argparse.ArgumentParser) -> None:
    """Exporter flags shared by idle-export and idle-runtime validate."""
    from ..export.simplify import DEFAULT_SIMPLIFIER, SIMPLIFIERS
    g = parser.add_argument_group("export")
    g.add_argument("--opset", type=int, default=18, help="ONNX opset, 17-20 for TensorRT 10/11 (default: 18)")
    g.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="torch.export-based exporter or the legacy TorchScript tracer (default: dynamo)")
    g.add_argument("--simplify", choices=SIMPLIFIERS, default=DEFAULT_SIMPLIFIER,
                   help="constant folding / dead-node removal; auto runs onnxslim and Polygraphy and keeps the "
                        f"smaller equivalent graph (default: {DEFAULT_SIMPLIFIER})")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="idle-export", description="Export IdleViT to ONNX: constant K per idle block (TopK "
                       "sorted, last axis), row Gathers and row ScatterNDs (no reduction), batch the only dynamic axis. "
                       "The file is checked (onnx.checker, TensorRT op rules, ONNX Runtime vs PyTorch) before it "
                       "is renamed into place.")
    add_model_args(p)
    p.add_argument("-o", "--output", default=None,
                   help="output .onnx file (default: <model>_r<keep-ratio>.onnx, or <model>_custom.onnx with "
                        "--keep-ratios, in the current folder)")
    add_export_args(p)
    p.add_argument("-b", "--batch-size", type=int, default=2,
                   help="batch of the export trace, >= 2 (torch.export specialises size-1 dims); the file "
                        "accepts any batch (default: 2)")
    p.add_argument("--check-forward", action=argparse.BooleanOptionalAction, default=True,
                   help="compare ONNX Runtime with PyTorch at batch 1, 3 and the export batch (default: on)")
    p.add_argument("--elastic", action="store_true",
                   help="one file for every keep ratio: each idle stage's K is the length of an extra input "
                        "keep_tokens.<s> (1..N), chosen per call (--keep-ratio of the runtime tools); "
                        "--keep-ratio here is the file's default (default: off)")
    p.add_argument("--selection-outputs", action="store_true",
                   help="also output each idle block's TopK indices as topk_indices.<i> (default: off)")
    add_json_flag(p, "the export report")
    return p


def default_output(model: str, keep_ratio: float, keep_ratios=None, elastic: bool = False) -> str:
    if elastic:
        return f"{model}_elastic.onnx"
    return f"{model}_custom.onnx" if keep_ratios else f"{model}_r{keep_ratio:g}.onnx"


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from ..export import ExportCheckError
    from ..workflows.export import export_model
    from ..export.onnx_export import check_exportable
    output = args.output or default_output(args.model, args.keep_ratio, args.keep_ratios, args.elastic)
    check_output_path(output)  # before minutes of work
    model, source = model_from_args(args)
    check_exportable(model, opset=args.opset, batch=args.batch_size, exporter=args.exporter, elastic=args.elastic)
    from ..factory import describe_reduction
    print(f"exporting {args.model} ({describe_reduction(model)}) with the {args.exporter} exporter...", file=sys.stderr)
    try:
        report = export_model(model, args.model, source, output, opset=args.opset, batch=args.batch_size,
                              exporter=args.exporter, simplify=args.simplify, check_forward=args.check_forward,
                              selection_outputs=args.selection_outputs, elastic=args.elastic)
    except ExportCheckError as e:
        print(f"error: {e} (nothing written)", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.json:
        write_json(report.to_json())
        return 0
    print_report(report)
    return 0


def print_report(report) -> None:
    meta = report.metadata
    print(f"wrote {os.path.abspath(report.path)}  ({report.bytes / 1e6:.1f} MB, {report.nodes} nodes, opset "
          f"{report.opset}, {report.exporter} exporter, {report.seconds:.1f} s)")
    print(f"  model {meta.model_name}, img {meta.img_size}, weights "
          f"{'checkpoint sha256 ' + meta.ckpt_sha256[:12] + '...' if meta.ckpt_sha256 else f'seed {meta.seed}'}")
    print(f"  {report.simplify.summary()}")
    if report.graph_check:
        print("  " + report.graph_check.summary().replace("\n", "\n  "))
    if meta.elastic:
        low, high = meta.keep_token_range
        print(f"  elastic: K per idle stage {low}..{high} from the length of inputs keep_tokens.1-3, "
              f"default keep ratio {meta.keep_ratio:g}")
    for c in report.forward_checks:
        at = "" if c.keep_ratio is None else f", keep ratio {c.keep_ratio:g}"
        print(f"  ONNX Runtime vs PyTorch, batch {c.batch}{at}: max abs diff {c.max_abs_diff:.2e}, "
              f"top-1 agreement {c.top1_agreement:.3f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
