"""`idle-runtime lineup`: what a user gets on this CPU: fp32 baseline, IdleViT fp32, INT8 and OpenVINO, side by side."""
from __future__ import annotations

import sys

from .common import THREADS_ARG, add_json_flag, print_table, write_json
from .reference_args import add_reference_args

INT8_KERNELS = ("auto", "exact", "default", "both")  # both: the exact and the default kernels as two entries


def add_parser(sub) -> None:
    p = sub.add_parser("lineup", help="baseline vs IdleViT fp32 / INT8 / OpenVINO in one interleaved run, with parity",
                       description="Time the plain-backbone fp32 ONNX (--baseline-onnx) on ONNX Runtime, a second "
                       "copy of it (the noise floor), the IdleViT ONNX (--onnx) on ONNX Runtime, its INT8 Q/DQ file "
                       "(--qdq) and OpenVINO (--openvino f32 bf16) in one process, calls interleaved; speed-up = "
                       "median latency of the baseline / median latency. Each entry is first checked against the "
                       "PyTorch fp32 model with the limits of its precision (fp32; int8; bf16 = the fp16 limits).")
    p.add_argument("--onnx", required=True, help="IdleViT fp32 ONNX from idle-export (required)")
    p.add_argument("--baseline-onnx", required=True,
                   help="plain-backbone fp32 ONNX, e.g. idle-export --keep-ratio 1.0 (required)")
    p.add_argument("--qdq", default=None, help="INT8 Q/DQ ONNX of --onnx from idle-calibrate (default: none)")
    p.add_argument("--int8-kernels", choices=INT8_KERNELS, default="auto",
                   help="ONNX Runtime int8 kernels for --qdq: auto = exact u8u8 only on x86 CPUs without VNNI; "
                        "both = time the exact and the default u8s8 kernels as two entries (default: auto)")
    p.add_argument("--openvino", nargs="*", choices=("f32", "bf16"), default=[],
                   help="also run --onnx on OpenVINO in these precisions (default: none)")
    add_reference_args(p)
    p.add_argument("-b", "--batch-sizes", type=int, nargs="+", default=[1, 16],
                   help="timed batch sizes (default: 1 16)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per entry and batch (default: 2)")
    p.add_argument("--iters", type=int, default=20, help="timed calls per entry and batch (default: 20)")
    p.add_argument("--threads", type=THREADS_ARG, default=None,
                   help="intra-op threads of every runtime (default: the CPUs this process may use)")
    p.add_argument("--images", default=None,
                   help="parity photographs (default: the scikit-image photographs bundled with the package)")
    p.add_argument("-n", "--num-random", type=int, default=16, help="seeded random parity inputs (default: 16)")
    p.add_argument("--parity-batch", type=int, default=8, help="parity batch size (default: 8)")
    add_json_flag(p, "the result", output_file=True)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import UserError
    from ..runtime.cpu_features import cpu_features
    from ..runtime.inputs import batched
    from ..runtime.lineup import run_lineup
    from .reference_args import reference_from_args
    if min(args.batch_sizes) < 1 or args.iters < 1 or args.warmup < 0 or args.num_random < 0 \
            or args.parity_batch < 1:
        raise UserError("-b, --iters and --parity-batch must be >= 1; --warmup and -n >= 0")
    model, source, meta = reference_from_args(args, args.onnx, warn_random=False)
    entries = _entries(args, model, source, meta)
    x = _parity_inputs(args, meta)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    result = run_lineup(entries, batched(x, args.parity_batch), batches=args.batch_sizes, img_size=meta.img_size,
                        warmup=args.warmup, iters=args.iters, progress=True, log=log)
    cpu = cpu_features()
    report = {"cpu": cpu.summary(), "threads": args.threads, "iters": args.iters, "warmup": args.warmup,
              "parity_inputs": len(x), **result.to_json()}
    if args.json_output:
        write_json(report, args.json_output)
    if args.json:
        write_json(report)
        return 0
    _print(result, args, cpu, len(x))
    return 0


def _entries(args, model, source, meta):
    from ..workflows.baseline_onnx import has_idlevit_metadata, resolve_baseline
    from ..runtime.lineup import Entry
    from ..runtime.parity import thresholds_for
    from ..runtime.reference import baseline_of
    from ..runtime.same_weights import check_baseline_onnx, check_qdq_onnx
    from .runner_args import EXACT_INT8, file_runner, torch_runner

    def torch_of(m):
        return lambda selection: torch_runner(args, m, selection=selection)

    def ort(path, exact=None):
        return lambda selection: file_runner(args, path, "ort", selection=selection, exact_int8=exact)

    def openvino(path, precision):
        return lambda selection: file_runner(args, path, "openvino", selection=selection, precision=precision)

    base_model = baseline_of(model)
    base_file = resolve_baseline(args.baseline_onnx, export_to="", baseline_model=base_model,
                                 model_name=meta.model_name, source=source, img_size=meta.img_size,
                                 check_same=lambda p: check_baseline_onnx(p, meta.model_name, source, meta.img_size))
    # a plain ViT file from elsewhere has other weights: it is timed, but there is no reference to check it against
    base_reference = torch_of(base_model) if has_idlevit_metadata(args.baseline_onnx) else None
    idle_name = f"IdleViT r = {meta.keep_ratio:g}" if meta.keep_ratio is not None else "IdleViT"
    entries = [Entry(f"{meta.model_name.replace('idlevit_', '')} fp32, ONNX Runtime", ort(base_file.path),
                     base_reference, thresholds_for("fp32")),
               Entry(f"{idle_name} fp32, ONNX Runtime", ort(args.onnx), torch_of(model), thresholds_for("fp32"),
                     selection=True)]
    if args.qdq:
        check_qdq_onnx(args.qdq, args.onnx)
        kernels = [True, False] if args.int8_kernels == "both" else [EXACT_INT8[args.int8_kernels]]
        for exact in kernels:
            what = "" if exact is None else (", exact u8u8 kernels" if exact else ", default u8s8 kernels")
            entries.append(Entry(f"{idle_name} INT8 Q/DQ, ONNX Runtime{what}", ort(args.qdq, exact), torch_of(model),
                                 thresholds_for("int8"), selection=True))
    for precision in args.openvino:
        entries.append(Entry(f"{idle_name} {precision}, OpenVINO", openvino(args.onnx, precision),
                             torch_of(model), thresholds_for("bf16" if precision == "bf16" else "fp32"),
                             selection=True))
    return entries


def _parity_inputs(args, meta):
    import numpy as np

    from ..images import eval_transform
    from ..runtime.inputs import image_files, parity_inputs, photos_array
    transform = eval_transform(meta.data_config)
    photos = (parity_inputs(meta.img_size, transform, image_files(args.images), 0) if args.images
              else photos_array(transform))
    if args.num_random:
        photos = np.concatenate([photos, parity_inputs(meta.img_size, num_random=args.num_random)])
    return photos


def _print(result, args, cpu, samples) -> None:
    from ..workflows.baseline_onnx import describe_baseline
    from ..runtime.lineup import NOISE_SUFFIX
    batches = list(result.timings)
    rows = []
    for label in result.labels:
        p = result.parity.get(label)
        cells = [label] + [f"{result.speedup(b, label):.2f}x ({result.timings[b][label].percentile(50):.1f} ms)"
                           for b in batches]
        if p is None:
            cells += ["(same file as the baseline)" if label.endswith(NOISE_SUFFIX) else
                      "not checked (a plain ViT file without idlevit metadata)", "-"]
        else:
            sel = f", selection {p.selection_agreement:.3f}" if p.selection_agreement is not None else ""
            cells += [f"max abs {p.max_abs_diff:.1e}, cos {p.cosine_mean:.6f}, top-1 {p.top1_agreement:.3f}{sel}",
                      "pass" if p.passed else "FAIL (" + ", ".join(c.name for c in p.checks if not c.passed) + ")"]
        rows.append(cells)
    print(f"CPU: {cpu.summary()}; {args.threads or 'all'} thread(s); {args.warmup} warmup + {args.iters} timed calls "
          f"per entry and batch, interleaved call by call in alternating order; speed-up = median latency of the "
          f"first row / median latency; parity vs PyTorch fp32 on {samples} inputs")
    print(f"  {describe_baseline(args.baseline_onnx).describe()}")
    for label, d in result.described.items():
        print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in d.items() if k != "providers"))
    print_table(rows, ["entry"] + [f"batch {b}: speed-up (p50)" for b in batches] + ["parity vs PyTorch fp32",
                                                                                      "verdict"])
