"""`idle-calibrate`: image folder -> calib.npz (eval transform from the ONNX) -> optional INT8 Q/DQ ONNX."""
from __future__ import annotations

from typing import Optional, Sequence

from ..errors import UserError
from .common import ArgumentParser, check_input_files, check_output_path, print_table, run_cli


def build_parser() -> ArgumentParser:
    from ..calibration.quantize import BACKENDS, METHODS, QuantizeOptions
    d = QuantizeOptions()
    p = ArgumentParser(prog="idle-calibrate",
                       description="Build an INT8 calibration set (calib.npz) from an image folder with the "
                       "model's eval transform, and write an explicitly quantized Q/DQ ONNX (ModelOpt when "
                       "installed, else ONNX Runtime static QDQ). The selection path and Softmax stay in float.")
    p.add_argument("--onnx", required=True, help="fp32 ONNX from idle-export; its metadata gives the transform (default: required)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", default=None, help="folder of calibration images, searched recursively (default: none)")
    src.add_argument("--calib", default=None, help="reuse an existing calib.npz instead of --images (default: none)")
    p.add_argument("-n", "--num-images", type=int, default=512, help="images to use (default: 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image shuffle (default: 0)")
    p.add_argument("-o", "--output", default=None, help="calib.npz to write with --images (default: calib.npz)")
    p.add_argument("--qdq", default=None, help="also write the INT8 Q/DQ ONNX here (default: none)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="activation range calibration; ONNX Runtime: percentile|minmax, ModelOpt: entropy|minmax "
                   "(default: percentile with ONNX Runtime, entropy with ModelOpt)")
    p.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"percentile for --method percentile (default: {d.percentile})")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales (default: off)")
    p.add_argument("--backend", choices=BACKENDS, default=d.backend,
                   help=f"quantizer: ModelOpt when installed, else ONNX Runtime (default: {d.backend})")
    p.add_argument("-b", "--batch-size", type=int, default=d.batch_size,
                   help=f"calibration batch size (default: {d.batch_size})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    return p


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from ..calibration.dataset import build_calibration_set, read_calib_npz
    from ..calibration.quantize import QuantizeOptions, check_fp32_source, quantize_int8
    from ..limits import check_batch_size
    from ..onnx_file.info import read_onnx_info
    if args.images is not None and args.output is None:
        args.output = "calib.npz"
    if args.calib is not None and args.output is not None:
        raise UserError("-o writes a new calib.npz from --images; with --calib there is nothing to write: drop -o")
    if args.calib is not None and args.qdq is None:
        raise UserError("--calib without --qdq does nothing: pass --qdq model.qdq.onnx")
    for path in filter(None, (args.output, args.qdq)):
        check_output_path(path)
    check_batch_size(args.batch_size)
    check_input_files(onnx=args.onnx)
    info = read_onnx_info(args.onnx)
    if args.qdq:
        check_fp32_source(args.onnx, info.precision)   # before calib.npz is written
    rows = []
    if args.images is not None:
        images = build_calibration_set(args.images, info, args.output, args.num_images, args.seed,
                                       progress=not args.no_progress)
        calib = args.output
        rows += [["calibration set", calib], ["images", f"{len(images)} x {list(images.shape[1:])}"]]
    else:
        calib = args.calib
        rows += [["calibration set", calib], ["images", len(read_calib_npz(calib, info.input_name))]]
    if args.qdq:
        options = QuantizeOptions(method=args.method, percentile=args.percentile, per_channel=not args.per_tensor,
                                  batch_size=args.batch_size, backend=args.backend)
        result = quantize_int8(args.onnx, calib, args.qdq, options)
        rows += [["Q/DQ ONNX", result.path], ["quantizer", f"{result.backend} ({result.options.method} calibration)"],
                 ["Q/DQ nodes", result.num_qdq],
                 ["kept in float", f"{len(result.excluded_nodes)} nodes ({len(result.selection_nodes)} on the "
                                   "selection path, plus Softmax)"]]
    print_table(rows, ["item", "value"])
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
