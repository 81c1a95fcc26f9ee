"""`idle-runtime validate`: the main job in one command: export, TensorRT op check, ORT CPU parity, short bench."""
from __future__ import annotations

import os
import sys

from ..fileio import scratch_dir
from .common import (THREADS_ARG, add_deprecated_alias, add_json_flag, add_model_args, check_output_path,
                     model_from_args, print_table, write_json)
from .export import EXIT_CHECK_FAILED, add_export_args
from .runner_args import add_auto_refresh_arg


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="export + TensorRT op check + ORT parity + short bench, one summary",
                       description="Export the model to ONNX, check the graph against TensorRT's parser rules, run "
                       "parity on ONNX Runtime CPU (or OpenVINO: --backend openvino) against PyTorch (real "
                       "photographs + random inputs) and a short bench against the keep-ratio-1.0 baseline. "
                       "With no flags: IdleViT-DeiT-S, r = 0.7, seeded weights. Exit 0 pass, 1 a check failed, "
                       "2 bad input.")
    add_model_args(p)
    p.add_argument("-o", "--output", default=None,
                   help="keep the exported ONNX file here (default: a temporary folder, deleted afterwards)")
    add_export_args(p)
    p.add_argument("--images", default=None,
                   help="folder of photographs for parity (default: the scikit-image bundled photographs)")
    p.add_argument("-n", "--num-random", type=int, default=8, help="random parity inputs after the photos (default: 8)")
    p.add_argument("--parity-batch", type=int, default=4, help="parity batch size (default: 4)")
    for old in ("-b", "--batch-size"):
        add_deprecated_alias(p, old, "--parity-batch", dest="parity_batch", type=int)
    p.add_argument("--bench-batch", type=int, default=8, help="bench batch size (default: 8)")
    p.add_argument("--warmup", type=int, default=1, help="bench warmup calls per model (default: 1)")
    p.add_argument("--iters", type=int, default=6, help="bench timed calls per model (default: 6)")
    p.add_argument("--threads", type=THREADS_ARG, default=None,
                   help="CPU threads (default: the CPUs this process may use)")
    p.add_argument("--backend", choices=("ort", "openvino", "auto"), default="ort",
                   help="CPU runtime of the parity check and the bench: ONNX Runtime or OpenVINO f32; auto = the "
                        "fastest on this CPU at --threads and --bench-batch for the exported file (measured once and "
                        "cached, parity checked) (default: ort)")
    add_auto_refresh_arg(p)
    p.add_argument("--elastic", action="store_true",
                   help="export an elastic file (K chosen per call, idle-export --elastic) and check it at "
                        "--keep-ratio (default: off)")
    add_json_flag(p, "the report")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import UserError
    from ..export import ExportCheckError
    from ..runtime.inputs import image_files
    from ..workflows.validate import validate
    if args.num_random < 0 or args.parity_batch < 1 or args.bench_batch < 1 or args.iters < 1 or args.warmup < 0:
        raise UserError("-n and --warmup must be >= 0; --parity-batch, --bench-batch and --iters >= 1")
    if args.output:
        check_output_path(args.output)
    paths = image_files(args.images) if args.images else None
    model, source = model_from_args(args)
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    with scratch_dir("validate") as tmp:
        out = args.output or os.path.join(tmp, "model.onnx")
        try:
            report = validate(model, source, args.model, out, image_paths=paths, num_random=args.num_random,
                              batch=args.parity_batch, bench_batch=args.bench_batch, warmup=args.warmup,
                              iters=args.iters, threads=args.threads, exporter=args.exporter, opset=args.opset,
                              simplify=args.simplify, backend=args.backend, elastic=args.elastic, log=log,
                              auto_refresh=args.auto_refresh)
        except ExportCheckError as e:
            print(f"error: export check failed: {e}", file=sys.stderr)
            return EXIT_CHECK_FAILED
    if args.json:
        write_json(report.to_json())
    else:
        print_summary(report, args.output)
    return 0 if report.passed else EXIT_CHECK_FAILED


def print_summary(report, output) -> None:
    exp, par, bench, meta = report.export, report.parity, report.bench, report.export.metadata
    ks = ",".join(str(k) for k in meta.keep_tokens if k is not None) or "none"
    where = os.path.abspath(output) if output else "temporary file, deleted"
    gc = exp.graph_check
    if meta.method == "gtp" and gc:   # GTP-ViT: the graph's neighbour threshold and one full sort per block
        ks = ",".join(map(str, gc.topk))
    fwd = max(exp.forward_checks, key=lambda c: c.max_abs_diff) if exp.forward_checks else None
    sel = par.selection_agreement
    where_run = {"ort": "ORT CPU", "openvino": "OpenVINO CPU"}.get(report.backend, report.backend)
    rows = [
        ["export", f"{meta.model_name}, {exp.nodes} nodes, {exp.bytes / 1e6:.1f} MB, opset {exp.opset}, "
                   f"{exp.exporter}, {report.seconds['export']:.0f} s ({where})", "ok"],
        ["TensorRT op check", f"{len(gc.topk)} TopK (K {ks}), no NonZero or scatter reduction, only batch dynamic"
         if gc and gc.ok else (gc.issues[0] if gc else "skipped"), "ok" if gc is None or gc.ok else "FAIL"],
        ["export forward check", f"batches {','.join(str(c.batch) for c in exp.forward_checks)}: max abs diff "
                                 f"{fwd.max_abs_diff:.1e}" if fwd else "skipped", "ok"],
        [f"parity ({where_run}, {report.precision})", f"{report.inputs}: max abs {par.max_abs_diff:.1e}, top-1 {par.top1_agreement:.3f}"
                                   f", top-5 {par.top5_overlap:.3f}"
                                   + (f", selection {sel:.3f}" if sel is not None else ""),
         "pass" if par.passed else "FAIL"],
        [f"bench ({where_run}{'' if report.precision == 'fp32' else ' ' + report.precision})", f"batch {bench.idle.batch}: {bench.idle.throughput:.1f} vs {bench.baseline.throughput:.1f} "
                            f"img/s, speedup {bench.speedup:.2f}x, MAC ratio {bench.mac_ratio:.2f}x, "
                            f"efficiency {bench.efficiency:.2f} ({bench.idle.batch * len(bench.idle.latencies_ms)} "
                            f"images each, {bench.setup.get('threads')} threads)", "-"],
    ]
    print_table(rows, ["step", "result", "verdict"])
    print(f"validate {'PASSED' if report.passed else 'FAILED'} "
          f"({sum(report.seconds.values()):.0f} s; bench figures from a short run: use idle-runtime bench for numbers)")
