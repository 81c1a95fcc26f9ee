"""`idle-runtime bench`: throughput and latency of IdleViT vs its keep-ratio-1.0 baseline, on torch or ONNX Runtime."""
from __future__ import annotations

import os
import sys

from ..fileio import scratch_dir
from .common import THREADS_ARG, add_deprecated_alias, add_json_flag, print_table, write_json
from .reference_args import add_reference_args
from .runner_args import EXACT_INT8, add_auto_refresh_arg


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="throughput/latency vs the keep-ratio-1.0 baseline, and efficiency",
                       description="Time IdleViT and its keep-ratio-1.0 baseline (same weights) in the same process, "
                       "in alternating rounds; print img/s, latency p50/p90/p99, speedup and efficiency = speedup / "
                       "executed-MAC ratio. With --backend ort and no --onnx/--baseline-onnx, both are exported to a "
                       "temporary folder first. --backend trt times two engines from idle-trt-build "
                       "(--engine, --baseline-engine).")
    p.add_argument("--backend", choices=("torch", "ort", "trt", "openvino", "auto"), default="ort",
                   help="runtime to time; ort and openvino run ONNX files on the CPU; auto picks the faster of them "
                        "for the IdleViT file on this CPU at --threads and -b (measured once and cached, parity "
                        "checked) and times both files on it (default: ort)")
    add_auto_refresh_arg(p)
    p.add_argument("--engine", default=None, help="IdleViT TensorRT engine for --backend trt (default: none)")
    p.add_argument("--baseline-engine", default=None,
                   help="keep-ratio-1.0 TensorRT engine of the same weights for --backend trt (default: none)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="trt only: replay each engine from a captured CUDA graph (default: off)")
    p.add_argument("--onnx", default=None, help="IdleViT ONNX file for --backend ort (default: export one)")
    p.add_argument("--baseline-onnx", default=None,
                   help="plain ViT ONNX to time as the baseline: idle-export --keep-ratio 1.0 of the same weights, "
                        "or any plain ViT file of the same input and output shapes, e.g. a torch.onnx.export of the "
                        "timm backbone (default: export the keep-ratio-1.0 model in the fastest form we know, "
                        "the TorchScript exporter's graph)")
    add_reference_args(p, "model (with --onnx every flag defaults to its metadata and one that disagrees is an error; "
                          "without --onnx: idlevit_deit_small_patch16_224, keep ratio 0.7, seed 0)")
    add_bench_args(p)
    p.add_argument("--device", default="cpu", help="torch device, cpu or cuda (default: cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the torch models (default: off)")
    add_autocast_arg(p)
    p.add_argument("--provider", choices=("cpu", "cuda", "trt"), default="cpu",
                   help="ONNX Runtime execution provider (default: cpu)")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="exporter for the temporary ONNX files when --onnx/--baseline-onnx are not given "
                        "(default: dynamo)")
    p.add_argument("--profile", type=int, default=0, metavar="CALLS",
                   help="ort only: after timing, profile CALLS calls of each model and print time per op type "
                        "(default: 0, off)")
    add_onnx_variant_args(p)
    add_json_flag(p)
    p.set_defaults(run=run)


def add_autocast_arg(p) -> None:
    """--autocast for the torch models (bench and sweep); --fp16 is the old name."""
    p.add_argument("--autocast", choices=("off", "fp16"), default="off",
                   help="torch autocast dtype for the torch models, CUDA only (default: off)")
    add_deprecated_alias(p, "--fp16", "--autocast fp16", dest="autocast", flag=True, const="fp16")


def add_onnx_variant_args(p) -> None:
    """INT8 and OpenVINO precision flags (shared by bench and sweep)."""
    g = p.add_argument_group("INT8 and OpenVINO")
    g.add_argument("--qdq", default=None,
                   help="ort/openvino: also time this INT8 Q/DQ ONNX of --onnx (from idle-calibrate) in the same "
                        "rounds and report its speedup over the fp32 baseline (default: none)")
    g.add_argument("--int8-kernels", choices=tuple(EXACT_INT8), default="auto",
                   help="ONNX Runtime int8 GEMMs: exact u8u8 or the default u8s8 kernels; auto = exact only on x86 "
                        "CPUs without VNNI, where u8s8 saturates (default: auto)")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="openvino only: INFERENCE_PRECISION_HINT f32 or bf16 (default: fp32)")


def add_bench_args(p) -> None:
    g = p.add_argument_group("timing")
    g.add_argument("-b", "--batch-size", type=int, default=32, help="batch size (default: 32)")
    g.add_argument("--warmup", type=int, default=3, help="untimed calls per model first (default: 3)")
    g.add_argument("--iters", type=int, default=20, help="timed calls per model (default: 20)")
    g.add_argument("--rounds", type=int, default=4,
                   help="the timed calls are split into this many rounds of alternating order (default: 4)")
    g.add_argument("--threads", type=THREADS_ARG, default=None,
                   help="intra-op CPU threads (default: the CPUs this process may use)")


def check_timing_args(args) -> None:
    """-b, --iters, --rounds >= 1 and --warmup >= 0 (bench and sweep)."""
    from ..limits import check_batch_size, check_count
    check_batch_size(args.batch_size)
    check_count(args.iters, "--iters")
    check_count(args.rounds, "--rounds")
    check_count(args.warmup, "--warmup", minimum=0)


def _models(args):
    """(idle model, source, model name, elastic ratio) from --onnx/--engine metadata or the model flags.

    The elastic ratio is --keep-ratio on an elastic file (the idle runner is set to it), else None.
    """
    from ..factory import DEFAULT_MODEL, create_idlevit
    from ..models.schedule import DEFAULT_KEEP_RATIO
    from ..runtime.reference import elastic_ratio_of
    if args.backend == "trt":
        from .reference_args import reference_from_engine
        model, source, meta = reference_from_engine(args, args.engine, warn_random=False)
        return model, source, meta.model_name, elastic_ratio_of(meta, args.keep_ratio)
    if args.onnx:
        from .reference_args import reference_from_args
        model, source, meta = reference_from_args(args, args.onnx, warn_random=False)
        return model, source, meta.model_name, elastic_ratio_of(meta, args.keep_ratio)
    name = args.model or DEFAULT_MODEL
    model, source = create_idlevit(name, keep_ratio=DEFAULT_KEEP_RATIO if args.keep_ratio is None else args.keep_ratio,
                                   keep_ratios=args.keep_ratios, ckpt=args.ckpt, img_size=args.img_size,
                                   seed=0 if args.seed is None else args.seed, num_classes=args.num_classes,
                                   warn_random=False)
    return model, source, name, None


def run(args) -> int:
    from ..errors import UserError
    from ..factory import check_batch_fits, image_size
    from ..runtime.bench import BENCH_HEADERS, bench_against_baseline, executed_gmacs, result_rows, summary_line
    from ..runtime.reference import baseline_of
    from ..runtime.same_weights import check_baseline_engine, check_baseline_onnx, check_qdq_onnx
    from .runner_args import file_runner, resolve_auto_backend, torch_runner
    auto = None
    if args.backend in ("torch", "trt") and (args.onnx or args.baseline_onnx or args.qdq):
        raise UserError("--onnx/--baseline-onnx/--qdq need --backend ort or openvino: drop them or pass --backend ort")
    if args.precision != "fp32" and args.backend == "auto":
        raise UserError("--backend auto chooses the precision too: drop --precision, or name the backend")
    if args.precision != "fp32" and args.backend != "openvino":
        raise UserError(f"--precision {args.precision} is OpenVINO's: pass --backend openvino or drop --precision")
    if args.qdq and not args.onnx:
        raise UserError("--qdq needs the --onnx file it was quantized from: pass --onnx")
    if (args.backend == "trt") != bool(args.engine and args.baseline_engine) or \
            (args.backend != "trt" and (args.engine or args.baseline_engine or args.cuda_graph)):
        raise UserError("--backend trt times two engines: pass both --engine and --baseline-engine "
                        "(build them with idle-trt-build); --engine/--baseline-engine/--cuda-graph need --backend trt")
    check_timing_args(args)
    model, source, name, elastic_ratio = _models(args)
    check_batch_fits(model, args.batch_size, forward_on_cpu=args.backend != "trt" and "cuda" not in args.device
                     and args.provider == "cpu")
    baseline = baseline_of(model)
    img = image_size(model)
    if args.qdq:
        check_qdq_onnx(args.qdq, args.onnx)
    if args.baseline_engine:
        check_baseline_engine(args.baseline_engine, name, source, img)
    gmacs_idle, gmacs_base = executed_gmacs(model, img), executed_gmacs(baseline, img)
    with scratch_dir("bench") as tmp:
        if args.backend == "torch":
            idle_runner, base_runner = torch_runner(args, model), torch_runner(args, baseline)
        elif args.backend == "trt":
            idle_runner, base_runner = file_runner(args, args.engine), file_runner(args, args.baseline_engine)
            idle_runner.set_keep_ratio(elastic_ratio)
        else:
            from ..workflows.baseline_onnx import BASELINE_EXPORTER, resolve_baseline
            if not args.baseline_onnx:
                print(f"exporting the baseline model to a temporary ONNX file ({BASELINE_EXPORTER} exporter)...",
                      file=sys.stderr)
            base_file = resolve_baseline(args.baseline_onnx, export_to=os.path.join(tmp, "baseline.onnx"),
                                         baseline_model=baseline, model_name=name, source=source, img_size=img,
                                         check_same=lambda p: check_baseline_onnx(p, name, source, img))
            idle_path = args.onnx or _export(model, name, source, os.path.join(tmp, "idle.onnx"), "idle", args)
            base_path = base_file.path
            auto = resolve_auto_backend(args, idle_path, args.batch_size) if args.backend == "auto" else None
            idle_runner, base_runner = file_runner(args, idle_path), file_runner(args, base_path)
            idle_runner.set_keep_ratio(elastic_ratio)
        extras = {"int8": file_runner(args, args.qdq).set_keep_ratio(elastic_ratio)} if args.qdq else None
        result = bench_against_baseline(idle_runner, base_runner, img_size=img, gmacs_idle=gmacs_idle,
                                        gmacs_baseline=gmacs_base, batch=args.batch_size, warmup=args.warmup,
                                        iters=args.iters, rounds=args.rounds, progress=True, extras=extras)
        result.setup.update({"model": name, "keep_ratios": list(model.keep_ratios), "img_size": img})
        if hasattr(model, "gtp"):
            result.setup["gtp"] = model.gtp.to_json()
        if auto is not None:
            result.setup["backend_auto"] = auto.to_json()
        if args.backend in ("ort", "openvino"):
            result.setup["baseline_file"] = base_file.to_json()
            if not args.baseline_onnx:
                result.setup["baseline_file"]["path"] = "(temporary file)"
        profile = _profile(args, idle_path, base_path, img) if args.backend == "ort" and args.profile else None
    if args.json:
        out = result.to_json()
        if profile:
            out["profile_ms_per_call"] = profile
        write_json(out)
        return 0
    print_setup(result.setup)
    print_table(result_rows(result), BENCH_HEADERS)
    print(summary_line(result))
    if profile:
        print_profile(profile)
    return 0


def _export(model, name, source, path, what, args) -> str:
    from ..workflows.export import export_model
    print(f"exporting the {what} model to a temporary ONNX file ({args.exporter} exporter)...", file=sys.stderr)
    export_model(model, name, source, path, exporter=args.exporter, check_forward=False)
    return path


def _profile(args, idle_path, base_path, img):
    from ..runtime.ort_profile import profile_op_types
    return {what: profile_op_types(path, batch=args.batch_size, img_size=img, calls=args.profile,
                                   provider=args.provider, threads=args.threads)
            for what, path in (("idle", idle_path), ("baseline", base_path))}


def print_setup(setup: dict) -> None:
    runner = ", ".join(f"{k} {v}" for k, v in setup.items()
                       if k not in ("batch", "warmup", "iters", "rounds", "order", "model", "keep_ratios", "img_size",
                                    "python", "cpu", "machine", "baseline_file", "gtp",
                                    "backend_auto"))
    if "gtp" in setup:
        print(f"{setup['model']} at {setup['img_size']} px, GTP-ViT P per block "
              f"{' '.join(map(str, setup['gtp']['num_prop']))} vs the plain backbone")
    else:
        print(f"{setup['model']} at {setup['img_size']} px, keep ratios "
              f"{' '.join(f'{r:.3g}' for r in setup['keep_ratios'])} vs all 1.0")
    if "baseline_file" in setup:
        from ..workflows.baseline_onnx import BaselineFile
        print(BaselineFile(**setup["baseline_file"]).describe())
    print(f"measured: batch {setup['batch']}, {setup['warmup']} warmup + {setup['iters']} timed calls per model in "
          f"{setup['rounds']} alternating rounds; {runner}; CPU {setup['cpu']} ({setup['machine']}), "
          f"python {setup['python']}")


def print_profile(profile: dict) -> None:
    idle, base = profile["idle"], profile["baseline"]
    ops = sorted(set(idle) | set(base), key=lambda op: -(idle.get(op, 0.0) + base.get(op, 0.0)))
    rows = [[op, f"{idle.get(op, 0.0):.2f}", f"{base.get(op, 0.0):.2f}",
             f"{idle.get(op, 0.0) - base.get(op, 0.0):+.2f}"] for op in ops]
    rows.append(["total", f"{sum(idle.values()):.2f}", f"{sum(base.values()):.2f}",
                 f"{sum(idle.values()) - sum(base.values()):+.2f}"])
    print("ONNX Runtime profile, ms per call by op type (after graph optimisation; fused ops keep their fused names):")
    print_table(rows, ["op type", "idle", "baseline", "idle - baseline"])
