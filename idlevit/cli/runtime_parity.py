"""`idle-runtime parity`: an ONNX file on ONNX Runtime against the PyTorch fp32 reference rebuilt from its metadata."""
from __future__ import annotations

import sys

from .common import THREADS_ARG, add_json_flag, print_table, write_json
from .reference_args import add_reference_args
from .runner_args import add_auto_refresh_arg

EXIT_PARITY_FAILED = 1


def add_parser(sub) -> None:
    p = sub.add_parser("parity", help="compare an ONNX file or TensorRT engine with the PyTorch reference",
                       description="Run an exported ONNX file on ONNX Runtime (or OpenVINO) and the fp32 PyTorch "
                       "reference (rebuilt from the file's metadata) on real images and seeded random inputs; report max/mean abs "
                       "diff, cosine, top-1/top-5 agreement and per-block selection agreement. Exit 0 pass, "
                       "1 parity failure, 2 bad input.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", default=None, help="ONNX file written by idle-export (default: none; this or --engine)")
    src.add_argument("--engine", default=None,
                     help="TensorRT engine from idle-trt-build, run on the GPU with --backend trt (default: none; "
                          "this or --onnx)")
    add_reference_args(p)
    add_parity_args(p)
    p.add_argument("--backend", choices=("ort", "openvino", "trt", "auto"), default=None,
                   help="runtime: ONNX Runtime or OpenVINO (CPU; f32, or bf16 with --precision bf16) for --onnx, "
                        "TensorRT for --engine; auto = the fastest CPU backend and precision for --onnx on this CPU "
                        "at --threads and -b that matches ONNX Runtime (measured once and cached) (default: ort)")
    add_auto_refresh_arg(p)
    p.add_argument("--provider", choices=("cpu", "cuda", "trt"), default="cpu",
                   help="ONNX Runtime execution provider (default: cpu)")
    p.add_argument("--threads", type=THREADS_ARG, default=None,
                   help="intra-op threads (default: the CPUs this process may use)")
    add_json_flag(p, "the report")
    p.set_defaults(run=run)


def add_parity_args(p) -> None:
    """Inputs and thresholds (shared with other verbs that run parity)."""
    g = p.add_argument_group("inputs")
    g.add_argument("--images", default=None,
                   help="folder of .png/.jpg photographs, run through the model's eval transform (default: none)")
    g.add_argument("-b", "--batch-size", type=int, default=8,
                   help="batch size; the last batch may be smaller (default: 8)")
    g.add_argument("-n", "--num-random", type=int, default=64,
                   help="seeded random inputs added after the images (default: 64)")
    g.add_argument("--input-seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    t = p.add_argument_group("thresholds (default: design limits of --precision)")
    t.add_argument("--precision", choices=("fp32", "fp16", "int8", "bf16"), default=None,
                   help="which limits apply: fp32 max abs <= 1e-4 and top-1 100%%; fp16 cosine >= 0.999 and top-1 "
                        ">= 99%%; int8 cosine >= 0.99 and top-1 >= 97%%; bf16 (--backend openvino only: runs it in "
                        "bf16) the fp16 limits (default: the file's metadata, else fp32)")
    t.add_argument("--atol", type=float, default=None,
                   help="max abs logit diff (default: 1e-4 for fp32, else unchecked)")
    t.add_argument("--rtol", type=float, default=None, help="relative tolerance added to --atol (default: 0)")
    t.add_argument("--min-cosine", type=float, default=None, help="mean cosine similarity (default: per precision)")
    t.add_argument("--min-top1", type=float, default=None, help="top-1 agreement fraction (default: per precision)")
    t.add_argument("--min-top5", type=float, default=None, help="top-5 overlap fraction (default: unchecked)")
    t.add_argument("--min-selection", type=float, default=None,
                   help="selection agreement of the worst idle block (default: reported, unchecked)")


def thresholds_from_args(args, precision: str):
    from ..runtime.parity import thresholds_for
    return thresholds_for(precision, atol=args.atol, rtol=args.rtol, min_cosine=args.min_cosine,
                          min_top1=args.min_top1, min_top5=args.min_top5, min_selection=args.min_selection)


def inputs_from_args(args, meta):
    """(inputs array, description) from --images / -n, with the file's eval transform."""
    from ..limits import FLOAT_BYTES, check_batch_size, check_count, check_fits_memory
    from ..images import eval_transform
    from ..runtime.inputs import image_files, parity_inputs
    check_count(args.num_random, "-n", minimum=0)
    check_batch_size(args.batch_size, "-b")
    paths = image_files(args.images) if args.images else []
    check_fits_memory((len(paths) + args.num_random) * 3 * meta.img_size ** 2 * FLOAT_BYTES,
                      f"{len(paths)} images + -n {args.num_random} random inputs", "pass a smaller -n")
    x = parity_inputs(meta.img_size, eval_transform(meta.data_config) if paths else None, paths, args.num_random,
                      args.input_seed)
    return x, f"{len(paths)} images + {args.num_random} random inputs"


def candidate_runner(args, selection: bool, meta=None):
    """The runner under test (after check_backend): the TensorRT engine (--backend trt --engine), or the ONNX file
    on ONNX Runtime or OpenVINO (--onnx). On an elastic file it runs at --keep-ratio (the file's default without one)."""
    from ..runtime.reference import elastic_ratio_of
    from .runner_args import file_runner
    runner = file_runner(args, args.engine or args.onnx, selection=selection)
    return runner.set_keep_ratio(elastic_ratio_of(meta, args.keep_ratio) if meta is not None else None)


def check_backend(args) -> str:
    """--backend, checked against --engine/--onnx and --precision; `--engine` alone still means trt (with a warning)."""
    from ..errors import UserError
    backend = args.backend
    if backend is None:
        if args.engine:
            print("warning: --engine without --backend trt is deprecated and goes in the next release: "
                  "pass --backend trt --engine", file=sys.stderr)
        backend = "trt" if args.engine else "ort"
    if backend == "openvino" and args.engine:
        raise UserError("--engine is a TensorRT engine: drop --backend openvino, or pass --onnx")
    if backend == "trt" and not args.engine:
        raise UserError("--backend trt runs a TensorRT engine: pass --engine (from idle-trt-build), or --backend ort")
    if backend in ("ort", "auto") and args.engine:
        raise UserError("--engine is a TensorRT engine: pass --backend trt, or pass --onnx")
    if args.precision == "bf16" and backend not in ("openvino", "auto"):
        raise UserError("--precision bf16 runs OpenVINO in bf16: pass --backend openvino")
    return backend


def run(args) -> int:
    from ..runtime.inputs import batched
    from ..runtime.parity import check_precision_matches, compare_runners
    from .reference_args import reference_from_args, reference_from_engine
    from ..errors import UserError
    from .runner_args import resolve_auto_backend, torch_runner
    args.backend = check_backend(args)
    auto = None
    if args.backend == "auto":
        if args.precision:
            raise UserError("--backend auto chooses the precision too: drop --precision, or name the backend")
        auto = resolve_auto_backend(args, args.onnx, args.batch_size)
    model, _, meta = reference_from_engine(args, args.engine) if args.engine else reference_from_args(args, args.onnx)
    if args.onnx and args.precision:
        # bf16 is a runtime precision (OpenVINO runs the fp32 file in bf16), the others name the file's own
        check_precision_matches(args.onnx, "fp32" if args.precision == "bf16" else args.precision)
    precision = args.precision or meta.precision or "fp32"
    thresholds = thresholds_from_args(args, precision)
    x, described = inputs_from_args(args, meta)
    selection = meta.reports_selection
    with candidate_runner(args, selection, meta) as candidate, \
            torch_runner(args, model, selection=selection) as reference:
        report = compare_runners(candidate, reference, batched(x, args.batch_size), thresholds, progress=True)
        setup = candidate.describe()
    if args.json:
        write_json({"onnx": args.onnx, "engine": args.engine, "model": meta.model_name,
                    "keep_ratios": list(model.keep_ratios),
                    "keep_tokens": list(model.keep_tokens), "elastic": meta.elastic, "gtp": meta.gtp,
                    "precision": precision, "inputs": described, "batch_size": args.batch_size, "runner": setup,
                    **({"backend_auto": auto.to_json()} if auto else {}),
                    **report.to_json()})
    else:
        from ..factory import describe_reduction
        print(f"{args.engine or args.onnx}: {meta.model_name}, {describe_reduction(model)}, img {meta.img_size}"
              + (f", elastic at keep ratio {args.keep_ratio or meta.keep_ratio:g}" if meta.elastic else ""))
        desc = ", ".join(f"{k} {v}" for k, v in setup.items() if k != "backend")
        print(f"{setup['backend']} ({desc}) vs PyTorch fp32; {described} in batches of {args.batch_size}; "
              f"{precision} limits" + (f" (rtol {thresholds.rtol:g})" if thresholds.rtol else ""))
        print_table(report.rows(), ["metric", "value", "limit", "verdict"])
        print(f"parity {'PASSED' if report.passed else 'FAILED'} on {report.samples} samples")
    if not report.passed:
        failed = [c.name for c in report.checks if not c.passed]
        print(f"error: parity failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_PARITY_FAILED
    return 0
