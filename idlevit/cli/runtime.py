"""`idle-runtime`: one tool, several verbs (macs, parity, bench, ...), each in its own module."""
from __future__ import annotations

import importlib
from typing import Optional, Sequence

from .common import ArgumentParser, run_verbs

# verb -> module under idlevit.cli; each module has add_parser(subparsers) and run(args) -> int
VERBS = {
    "macs": "runtime_macs",
    "parity": "runtime_parity",
    "bench": "runtime_bench",
    "validate": "runtime_validate",
    "show": "runtime_show",
    "sweep": "runtime_sweep",
    "lineup": "runtime_lineup",
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="idle-runtime", description="Run, measure and validate IdleViT "
                                     "on PyTorch, ONNX Runtime, OpenVINO and TensorRT.")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=ArgumentParser, metavar="{" + ",".join(VERBS) + "}")
    for verb, module in VERBS.items():
        importlib.import_module(f"idlevit.cli.{module}").add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_verbs(build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
