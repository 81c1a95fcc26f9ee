"""`idle-calibrate`: image folder -> calib.npz (eval transform from the ONNX) -> optional INT8 Q/DQ ONNX."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Optional, Sequence

from ..errors import UserError
from .common import (ArgumentParser, add_deprecated_alias, add_json_flag, atomic_output, check_input_files,
                     check_output_path, print_table, run_cli, write_json)


def build_parser() -> ArgumentParser:
    from ..calibration.options import BACKENDS, METHODS, QUANTIZERS, WEIGHT_BITS, QuantizeOptions
    d = QuantizeOptions()
    p = ArgumentParser(prog="idle-calibrate",
                       description="Build an INT8 calibration set (calib.npz) from an image folder with the "
                       "model's eval transform, and write an explicitly quantized Q/DQ ONNX (ModelOpt when "
                       "installed, else ONNX Runtime static QDQ). The selection path and Softmax stay in float.")
    p.add_argument("--onnx", required=True, help="fp32 ONNX from idle-export; its metadata gives the transform (default: required)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", default=None, help="folder of calibration images, searched recursively (default: none)")
    src.add_argument("--calib", default=None, help="reuse an existing calib.npz instead of --images (default: none)")
    p.add_argument("--num-images", type=int, default=512, help="images to use (default: 512)")
    add_deprecated_alias(p, "-n", "--num-images", dest="num_images", type=int)
    p.add_argument("--shuffle-seed", type=int, default=0, help="seed of the image shuffle (default: 0)")
    add_deprecated_alias(p, "--seed", "--shuffle-seed", dest="shuffle_seed", type=int)
    p.add_argument("-o", "--output", default=None, help="calib.npz to write with --images (default: calib.npz)")
    p.add_argument("--qdq-output", default=None, help="also write the INT8 Q/DQ ONNX here (default: none)")
    add_deprecated_alias(p, "--qdq", "--qdq-output", dest="qdq_output")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="activation range calibration; ONNX Runtime: percentile|minmax, ModelOpt: entropy|minmax "
                   "(default: percentile with ONNX Runtime, entropy with ModelOpt)")
    p.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"percentile for --method percentile (default: {d.percentile})")
    p.add_argument("--weight-bits", type=int, choices=WEIGHT_BITS, default=d.weight_bits,
                   help="--quantizer ort: 7 keeps weights in [-64, 64] so that ONNX Runtime's fast u8s8 kernels "
                        "cannot saturate on x86 CPUs without VNNI (the runner then uses them instead of the slower "
                        "exact u8u8 ones); 8 for TensorRT and CPUs with VNNI/AMX (default: 8)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales (default: off)")
    p.add_argument("--quantizer", choices=QUANTIZERS, default=d.backend,
                   help=f"ModelOpt when installed, else ONNX Runtime (ort) (default: {d.backend})")
    add_deprecated_alias(p, "--backend", "--quantizer", dest="quantizer", choices=BACKENDS)
    p.add_argument("-b", "--batch-size", type=int, default=d.batch_size,
                   help=f"calibration batch size (default: {d.batch_size})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    add_json_flag(p, "what was written")
    return p


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from ..calibration.dataset import build_calibration_set, read_calib_npz
    from ..calibration.options import QUANTIZERS
    from ..calibration.quantize import QuantizeOptions, check_fp32_source, quantize_int8
    from ..limits import check_batch_size
    from ..onnx_file.info import read_onnx_info
    if args.images is not None and args.output is None:
        args.output = "calib.npz"
    if args.calib is not None and args.output is not None:
        raise UserError("-o writes a new calib.npz from --images; with --calib there is nothing to write: drop -o")
    if args.calib is not None and args.qdq_output is None:
        raise UserError("--calib without --qdq-output does nothing: pass --qdq-output model.qdq.onnx")
    for path, flag in ((args.output, "-o"), (args.qdq_output, "--qdq-output")):
        if path:
            check_output_path(path, flag)
    check_batch_size(args.batch_size)
    check_input_files(onnx=args.onnx)
    info = read_onnx_info(args.onnx)
    if args.qdq_output:
        check_fp32_source(args.onnx, info.precision)   # before calib.npz is written
    with ExitStack() as pending:
        if args.images is not None:
            # with --qdq-output, calib.npz is renamed into place only once the Q/DQ file is: a failed or
            # interrupted quantization leaves the old pair as it was, not a new calib.npz beside an old Q/DQ file
            calib = pending.enter_context(atomic_output(args.output, suffix=".npz")) if args.qdq_output else args.output
            images = build_calibration_set(args.images, info, calib, args.num_images, args.shuffle_seed,
                                           progress=not args.no_progress)
            rows = [["calibration set", args.output], ["images", f"{len(images)} x {list(images.shape[1:])}"]]
        else:
            calib = args.calib
            images = read_calib_npz(calib, info.input_name)
            rows = [["calibration set", calib], ["images", len(images)]]
        report = {"calibration_set": args.output or calib, "images": len(images), "image_shape": list(images.shape[1:])}
        if args.qdq_output:
            options = QuantizeOptions(method=args.method, percentile=args.percentile, per_channel=not args.per_tensor,
                                      batch_size=args.batch_size, weight_bits=args.weight_bits,
                                      backend=QUANTIZERS.get(args.quantizer, args.quantizer))
            result = quantize_int8(args.onnx, calib, args.qdq_output, options)
            rows += [["Q/DQ ONNX", result.path],
                     ["quantizer", f"{result.backend} ({result.options.method} calibration)"],
                     ["Q/DQ nodes", result.num_qdq],
                     ["kept in float", f"{len(result.excluded_nodes)} nodes ({len(result.selection_nodes)} on the "
                                       "selection path, plus Softmax)"]]
            report.update(qdq_onnx=result.path, quantizer=result.backend, method=result.options.method,
                          qdq_nodes=result.num_qdq, kept_in_float=len(result.excluded_nodes),
                          selection_nodes=len(result.selection_nodes))
    if args.json:
        write_json(report)
        return 0
    print_table(rows, ["item", "value"])
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
