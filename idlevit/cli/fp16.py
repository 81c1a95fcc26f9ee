"""`idle-fp16`: fp32 ONNX -> mixed-precision FP16 ONNX (fp32 I/O, selection path and LayerNorm in fp32)."""
from __future__ import annotations

from typing import Optional, Sequence

from .common import (ArgumentParser, add_deprecated_alias, add_json_flag, check_output_path, print_table, run_cli,
                     write_json)


def build_parser() -> ArgumentParser:
    from ..engines.fp16_options import BACKENDS, KEEP_FP32_OPS
    p = ArgumentParser(prog="idle-fp16",
                       description="Convert an fp32 ONNX from idle-export to mixed precision: fp16 weights and ops, "
                       "fp32 inputs/outputs, the token-selection path (scores, TopK) and the listed op types kept "
                       "fp32. This is what TensorRT 11 builds as an FP16 engine; check it on ONNX Runtime with "
                       "idle-runtime parity --precision fp16.")
    p.add_argument("--onnx", required=True, help="fp32 ONNX from idle-export (default: required)")
    p.add_argument("-o", "--output", required=True, help="mixed-precision ONNX to write (default: required)")
    p.add_argument("--keep-fp32", nargs="*", default=list(KEEP_FP32_OPS), metavar="OP",
                   help=f"op types kept in fp32 besides the selection path (default: {' '.join(KEEP_FP32_OPS)})")
    p.add_argument("--converter", choices=BACKENDS, default="auto",
                   help="ModelOpt AutoCast when installed, else onnxconverter-common (default: auto)")
    add_deprecated_alias(p, "--backend", "--converter", dest="converter", choices=BACKENDS)
    add_json_flag(p, "what was written")
    return p


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from ..engines.fp16 import write_fp16_onnx
    check_output_path(args.output)
    result = write_fp16_onnx(args.onnx, args.output, keep_fp32_ops=tuple(args.keep_fp32), backend=args.converter)
    if args.json:
        write_json({"fp16_onnx": args.output, "converter": result.backend, "kept_fp32": len(result.fp32_nodes),
                    "selection_nodes": len(result.selection_nodes), "keep_fp32_ops": list(args.keep_fp32)})
        return 0
    print_table([["FP16 ONNX", args.output], ["converter", result.backend],
                 ["kept fp32", f"{len(result.fp32_nodes)} nodes ({len(result.selection_nodes)} on the selection "
                               f"path, plus {' '.join(args.keep_fp32) or 'nothing else'})"]], ["item", "value"])
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
