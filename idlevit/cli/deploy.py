"""`idle-deploy`: serve our files with NVIDIA Triton (`triton`: write a model repository;
`loadtest`: drive a running repository on loopback and report throughput, p50/p99 and keep ratio)."""
from __future__ import annotations

from typing import Optional, Sequence

from ..serving.triton_config import INT32_MAX, UINT64_MAX
from .common import (THREADS_ARG, ArgumentParser, add_deprecated_alias, add_json_flag, check_output_path,
                     keep_ratio_arg, positive_float_arg, print_table, run_verbs, whole_number_arg, write_json)


def add_triton_parser(sub) -> None:
    p = sub.add_parser("triton", help="write a Triton model repository (onnxruntime, tensorrt_plan, python models)",
                       description="Write a standard Triton model repository: an onnxruntime_onnx model per ONNX "
                                   "file, a tensorrt_plan model for --engine, and a python-backend model that runs "
                                   "idlevit's own runner with the keep ratio per request or from the load.")
    p.add_argument("--onnx-files", nargs="+", default=None, metavar="ONNX",
                   help="ONNX file(s) from idle-export: one file, or one model at several keep ratios, or one "
                        "elastic file (default: required)")
    add_deprecated_alias(p, "--onnx", "--onnx-files", dest="onnx_files", nargs="+")
    p.add_argument("--engine", default=None, help="TensorRT engine from idle-trt-build (its .json sidecar beside it) "
                                                  "(default: none)")
    p.add_argument("-o", "--output", required=True, help="repository folder to write (default: required)")
    p.add_argument("--name", default="idlevit", help="name of the python model; the others get _onnx/_trt "
                                                     "(default: idlevit)")
    p.add_argument("--max-batch", type=whole_number_arg(1, INT32_MAX), default=8,
                   help="max_batch_size of the onnxruntime and python models (default: 8; the engine's comes from "
                        "its profile)")
    p.add_argument("--instances", type=whole_number_arg(1, INT32_MAX), default=1,
                   help="instances per model (default: 1)")
    p.add_argument("--max-queue-delay-us", type=whole_number_arg(0, UINT64_MAX), default=0,
                   help="dynamic batcher: how long a batch may wait to fill (default: 0)")
    p.add_argument("--runner", default="ort", choices=("ort", "openvino", "trt", "auto"),
                   help="the python model's runner; auto = the faster CPU backend for the served file on the "
                        "serving machine, measured when the model loads (cached per CPU, file and thread count) "
                        "(default: ort)")
    p.add_argument("--threads", type=THREADS_ARG, default=None,
                   help="the python model's intra-op threads (default: the runner's)")
    p.add_argument("--keep-ratio", type=keep_ratio_arg, default=None,
                   help="python model: keep ratio of requests that name none (default: the highest served)")
    p.add_argument("--p99-target-ms", type=positive_float_arg, default=None,
                   help="python model: follow the load, lowering the keep ratio while p99 latency is above this "
                        "(default: off)")
    p.add_argument("--min-keep-ratio", type=keep_ratio_arg, default=0.5,
                   help="lowest keep ratio the load may push to (default: 0.5)")
    p.add_argument("--force", action="store_true",
                   help="replace a -o folder idle-deploy wrote before; never the current folder, one holding an "
                        "input, or a folder it did not write (default: refuse a non-empty -o)")
    add_json_flag(p, "the models written")
    p.set_defaults(run=run_triton)


def run_triton(args) -> int:
    from ..errors import UserError
    from ..serving.repository import DeployOptions, write_repository
    from ..serving.triton_config import config_kind
    opts = DeployOptions(name=args.name, max_batch=args.max_batch, instances=args.instances,
                         max_queue_delay_us=args.max_queue_delay_us, runner=args.runner, threads=args.threads,
                         keep_ratio=args.keep_ratio, p99_target_ms=args.p99_target_ms,
                         min_keep_ratio=args.min_keep_ratio)
    if not args.onnx_files:
        raise UserError("no model file given: pass --onnx-files FILE (from idle-export)")
    configs = write_repository(args.onnx_files, args.output, engine=args.engine, options=opts, force=args.force)
    kinds = {model: config_kind(text) for model, text in configs.items()}
    if args.json:
        write_json({"repository": args.output, "models": kinds})
        return 0
    for model, kind in kinds.items():
        print(f"{args.output}/{model}: {kind}")
    print("serve: tritonserver --model-repository " + args.output + "  (python backend: any tritonserver; "
          "onnxruntime/tensorrt_plan: NVIDIA's server containers)")
    return 0


def add_loadtest_parser(sub) -> None:
    p = sub.add_parser("loadtest", help="drive the python model on a local tritonserver; throughput, p50/p99, ratio",
                       description="Start tritonserver (nvidia-pytriton's, from $IDLEVIT_TRITON_PYTHON) on 127.0.0.1 "
                                   "with a repository from `idle-deploy triton`, run a bounded closed-loop load "
                                   "(phases of concurrent gRPC clients) once per keep-ratio mode, and report "
                                   "throughput, latency p50/p99 and the keep ratio used over time.")
    p.add_argument("-r", "--repository", required=True, help="repository from idle-deploy triton (default: required)")
    p.add_argument("--model", default="idlevit", help="python model to drive (default: idlevit)")
    p.add_argument("--modes", nargs="+", default=["1.0", "0.7", "adaptive"],
                   help="keep ratios to pin per request, and/or 'adaptive' (the server's controller) "
                        "(default: 1.0 0.7 adaptive)")
    p.add_argument("--phases", nargs="+", type=whole_number_arg(1, 64), default=[1, 4, 1], metavar="CLIENTS",
                   help="concurrent clients per load phase (default: 1 4 1)")
    p.add_argument("--phase-seconds", type=positive_float_arg, default=20.0, help="length of each phase (default: 20)")
    p.add_argument("--max-requests", type=whole_number_arg(1), default=2000,
                   help="stop a phase after this many requests (default: 2000)")
    p.add_argument("-b", "--batch-size", type=whole_number_arg(1), default=1, help="images per request (default: 1)")
    p.add_argument("--python", default=None, help="the Triton venv's python (default: $IDLEVIT_TRITON_PYTHON)")
    p.add_argument("--startup-timeout", type=positive_float_arg, default=300.0,
                   help="seconds to wait for each tritonserver start before giving up (default: 300)")
    p.add_argument("--plot", default=None, help="write a latency / keep-ratio plot (PNG) (default: none)")
    add_json_flag(p, "every request and the summary", output_file=True)
    p.set_defaults(run=run_loadtest)


def run_loadtest(args) -> int:
    from ..serving.loadtest import LoadPlan, run_modes
    plan = LoadPlan(phases=args.phases, phase_seconds=args.phase_seconds, max_requests=args.max_requests,
                    batch_size=args.batch_size)
    if args.plot:
        check_output_path(args.plot, "--plot")
    report = run_modes(args.repository, args.model, args.modes, plan, python=args.python,
                       startup_timeout=args.startup_timeout)
    if args.plot:
        from ..serving.loadtest_plot import plot_loadtest
        plot_loadtest(report, args.plot)
    if args.json_output:
        write_json(report.to_json(), args.json_output)
    if args.json:
        write_json(report.to_json())
        return 0
    print(report.describe())
    print_table(report.table_rows(), report.TABLE_HEADERS)
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


VERBS = {"triton": add_triton_parser, "loadtest": add_loadtest_parser}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="idle-deploy", description="Serve IdleViT with NVIDIA Triton Inference Server.")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=ArgumentParser,
                                metavar="{" + ",".join(VERBS) + "}")
    for add_parser in VERBS.values():
        add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_verbs(build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
