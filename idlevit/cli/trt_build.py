"""`idle-trt-build`: exported ONNX -> TensorRT engine + JSON sidecar (TensorRT 10 or 11)."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ..engines.sizes import format_size, parse_size
from ..errors import UserError
from .common import (ArgumentParser, add_json_flag, check_input_files, check_output_path, print_table, run_cli,
                     write_json)

DEFAULT_WORKSPACE = "4GiB"


def size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="idle-trt-build",
                       description="Build a TensorRT engine from an exported IdleViT ONNX. TensorRT 10: FP16/INT8 "
                       "builder flags with the selection path pinned to fp32. TensorRT 11: strongly typed from a "
                       "mixed-precision FP16 ONNX or a Q/DQ INT8 ONNX (written beside the engine when needed).")
    p.add_argument("--onnx", required=True, help="fp32 ONNX from idle-export (default: required)")
    p.add_argument("--fp16", action="store_true", help="FP16 engine; selection path and LayerNorm stay fp32 (default: off)")
    p.add_argument("--int8", action="store_true", help="INT8 engine from a Q/DQ ONNX: needs --calib or --qdq (default: off)")
    p.add_argument("--calib", default=None, help="calib.npz from idle-calibrate; quantizes --onnx to <output>.qdq.onnx "
                   "first (default: none)")
    p.add_argument("--qdq", default=None, help="an existing Q/DQ ONNX (idle-calibrate --qdq) to build with --int8 "
                   "(default: none)")
    p.add_argument("--min-batch", type=positive_int, default=1, help="smallest batch of the profile (default: 1)")
    p.add_argument("--opt-batch", type=positive_int, default=32, help="batch TensorRT tunes for (default: 32)")
    p.add_argument("--max-batch", type=positive_int, default=128, help="largest batch of the profile (default: 128)")
    p.add_argument("--keep-range", action="append", default=None, metavar="MIN:OPT:MAX",
                   help="elastic ONNX (idle-export --elastic): keep ratios one optimization profile covers, e.g. "
                        "0.3:0.7:1.0; each idle stage's K spans its K at MIN..MAX, tuned at OPT; repeat for several "
                        "profiles (default: every K, tuned at the file's default ratio)")
    p.add_argument("--workspace", type=size_arg, default=parse_size(DEFAULT_WORKSPACE),
                   help=f"builder workspace pool limit, e.g. 4GiB or 512MiB (default: {DEFAULT_WORKSPACE})")
    p.add_argument("--timing-cache", default=None,
                   help="timing cache file, read if present and written back (default: none)")
    p.add_argument("--version-compatible", action="store_true",
                   help="engine also loads on later TensorRT versions, a bit slower (default: off)")
    p.add_argument("-o", "--output", required=True, help="engine path; <output>.json is the sidecar (default: required)")
    add_json_flag(p, "the engine's sidecar")
    return p


def request_from_args(args):
    """Check the flags (before TensorRT is imported) and turn them into a BuildRequest."""
    from ..engines.batch_profile import BatchProfile, KeepRange
    from ..engines.build import BuildRequest
    check_input_files(onnx=args.onnx, calib=args.calib, qdq=args.qdq)
    if (args.calib or args.qdq) and not args.int8:
        raise UserError("--calib/--qdq only apply to INT8: add --int8")
    if args.calib and args.qdq:
        raise UserError("--calib and --qdq both given: pass one (--qdq is already calibrated)")
    if args.int8 and not (args.calib or args.qdq):
        from ..onnx_file.info import read_onnx_info
        if read_onnx_info(args.onnx).precision != "int8":
            raise UserError("--int8 needs calibration: pass --calib calib.npz (from idle-calibrate) "
                            "or --qdq model.qdq.onnx")
    check_output_path(args.output)
    if args.timing_cache:
        check_output_path(args.timing_cache, "--timing-cache")
    return BuildRequest(onnx=args.onnx, engine=args.output, fp16=args.fp16, int8=args.int8, calib=args.calib,
                        qdq=args.qdq, profile=BatchProfile(args.min_batch, args.opt_batch, args.max_batch),
                        keep_ranges=[KeepRange.parse(text) for text in args.keep_range or []],
                        workspace=args.workspace, timing_cache=args.timing_cache,
                        version_compatible=args.version_compatible)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    request = request_from_args(args)
    from ..engines.build import build_engine
    from ..engines.sidecar import sidecar_path
    sidecar = build_engine(request)
    if args.json:
        write_json({"engine": args.output, "sidecar": sidecar_path(args.output), "workspace": request.workspace,
                    **sidecar.to_json()})
        return 0
    rows = [["engine", args.output], ["sidecar", sidecar_path(args.output)],
            ["TensorRT", sidecar.tensorrt_version], ["GPU", f"{sidecar.gpu_name} (sm {sidecar.compute_capability})"],
            ["precision", sidecar.precision + (" (strongly typed)" if sidecar.strongly_typed else "")],
            ["built from", sidecar.onnx_file], ["workspace", format_size(request.workspace)],
            ["keep ratios", sidecar.keep_ratios], ["version compatible", sidecar.version_compatible]]
    for i, profile in enumerate(sidecar.profiles):
        rows += [[f"profile {i} {name}", f"{s['min']} / {s['opt']} / {s['max']}"] for name, s in profile.items()]
    print_table(rows, ["item", "value"])
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
