"""`idle-runtime parity`: an ONNX file on ONNX Runtime against the PyTorch fp32 reference rebuilt from its metadata."""
from __future__ import annotations

import sys

from .common import print_table, write_json
from .reference_args import add_reference_args

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
                     help="TensorRT engine from idle-trt-build, run on the GPU (default: none; this or --onnx)")
    add_reference_args(p)
    add_parity_args(p)
    p.add_argument("--backend", choices=("ort", "openvino"), default="ort",
                   help="runtime for --onnx: ONNX Runtime or OpenVINO (CPU; f32, or bf16 with --precision bf16) "
                        "(default: ort)")
    p.add_argument("--provider", choices=("cpu", "cuda", "trt"), default="cpu",
                   help="ONNX Runtime execution provider (default: cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads (default: the CPUs this process may use)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: off)")
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


def check_precision_flag(onnx_path: str, precision: str) -> None:
    """--precision must name what the file computes in: int8 limits on an fp32 file would pass a broken export."""
    from ..onnx_file.info import onnx_precision
    from ..onnx_file.io import load_onnx
    from ..errors import UserError
    actual = onnx_precision(load_onnx(onnx_path, load_external_data=False))
    if actual != precision:
        raise UserError(f"--precision {precision} contradicts {onnx_path}, which computes in {actual}: drop "
                        f"--precision (the file's own {actual} limits apply) or pass the {precision} file")


def candidate_runner(args, selection: bool, meta=None):
    """The runner under test: the TensorRT engine (--engine), or the ONNX file on ONNX Runtime or OpenVINO (--onnx).

    On an elastic file it runs at --keep-ratio (the file's default without one).
    """
    from ..runtime.reference import elastic_ratio_of
    runner = _backend_runner(args, selection)
    return runner.set_keep_ratio(elastic_ratio_of(meta, args.keep_ratio) if meta is not None else None)


def _backend_runner(args, selection: bool):
    from ..errors import UserError
    if getattr(args, "backend", "ort") == "openvino":
        if args.engine:
            raise UserError("--engine is a TensorRT engine: drop --backend openvino, or pass --onnx")
        from ..runtime.openvino_runner import OpenVinoRunner
        return OpenVinoRunner(args.onnx, precision="bf16" if args.precision == "bf16" else "f32",
                              threads=args.threads, selection=selection)
    if args.precision == "bf16":
        raise UserError("--precision bf16 runs OpenVINO in bf16: pass --backend openvino")
    if args.engine:
        from ..runtime.trt_runner import TrtRunner
        return TrtRunner(args.engine, selection=selection)
    from ..runtime.ort_runner import OrtRunner
    return OrtRunner(args.onnx, provider=args.provider, threads=args.threads, selection=selection)


def run(args) -> int:
    from ..runtime.inputs import batched
    from ..runtime.parity import compare_runners
    from ..runtime.torch_runner import TorchRunner
    from .reference_args import reference_from_args, reference_from_engine
    model, _, meta = reference_from_engine(args, args.engine) if args.engine else reference_from_args(args, args.onnx)
    if args.onnx and args.precision:
        # bf16 is a runtime precision (OpenVINO runs the fp32 file in bf16), the others name the file's own
        check_precision_flag(args.onnx, "fp32" if args.precision == "bf16" else args.precision)
    precision = args.precision or meta.precision or "fp32"
    thresholds = thresholds_from_args(args, precision)
    x, described = inputs_from_args(args, meta)
    selection = meta.num_topk > 0
    with candidate_runner(args, selection, meta) as candidate, \
            TorchRunner(model, selection=selection, threads=args.threads) as reference:
        report = compare_runners(candidate, reference, batched(x, args.batch_size), thresholds, progress=True)
        setup = candidate.describe()
    if args.json:
        write_json({"onnx": args.onnx, "engine": args.engine, "model": meta.model_name,
                    "keep_ratios": list(model.keep_ratios),
                    "keep_tokens": list(model.keep_tokens), "elastic": meta.elastic,
                    "precision": precision, "inputs": described, "batch_size": args.batch_size, "runner": setup,
                    **report.to_json()})
    else:
        print(f"{args.engine or args.onnx}: {meta.model_name}, K per block "
              f"{','.join('-' if k is None else str(k) for k in model.keep_tokens)}, img {meta.img_size}"
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
