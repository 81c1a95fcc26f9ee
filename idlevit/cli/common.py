"""Shared CLI plumbing: one-line errors with exit 2, model flags, deprecated flag names, atomic output, JSON.

Nothing here (nor in any CLI module's top level) imports torch, timm or onnx: `--help` must be instant.
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import math
import os
import sys
import warnings
from typing import Callable, Optional, Sequence

from ..errors import UserError
from ..fileio import atomic_output, check_input_file, check_output_dir, check_output_path, make_output_dir  # noqa: F401  (re-exported for CLIs)
from ..models.names import DEFAULT_MODEL
from ..models.schedule import DEFAULT_KEEP_RATIO

EXIT_BAD_INPUT = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: `prog: error: ... (see --help)`, exit 2, no usage dump."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def keep_ratio_arg(text: str) -> float:
    """argparse type: a float in (0, 1], checked by the schedule's own check."""
    from ..models.schedule import check_keep_ratio
    try:
        return check_keep_ratio(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def whole_number_arg(minimum: int = 1, maximum: Optional[int] = None) -> Callable[[str], int]:
    """argparse type: a whole number in [minimum, maximum], refused while the flags are parsed (before any work)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            top = f" to {maximum}" if maximum is not None else " or more"
            raise argparse.ArgumentTypeError(f"{text} is not a whole number from {minimum}{top}")
        return value
    parse.__name__ = "whole number"
    return parse


def positive_float_arg(text: str) -> float:
    """argparse type: a finite number > 0 (a latency target, a time)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number: pass e.g. 50")
    return value


THREADS_ARG = whole_number_arg(1, 1024)   # every --threads flag


def model_kwarg(text: str):
    """argparse type: key=value with a Python literal value (timm train.py's --model-kwargs)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value: pass e.g. num_prop=8 or depth=4")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


class DeprecatedAlias(argparse.Action):
    """An old flag name kept for one release: stores into the new flag's dest and warns on stderr in one line."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated and goes in the next release: use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_deprecated_alias(parser, old: str, new: str, dest: str, flag: bool = False, **kwargs) -> None:
    """Accept `old` (hidden from --help) as `new`: same dest, same values; `flag` for an on/off option."""
    if flag:
        kwargs.update(nargs=0, const=kwargs.pop("const", True))
    parser.add_argument(old, action=DeprecatedAlias, new=new, dest=dest, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS, **kwargs)


class _JsonFlag(argparse.Action):
    """--json; `--json PATH`, the old spelling of --json-output PATH, still works with a warning."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:
            namespace.json = True
            return
        print(f"warning: --json PATH is deprecated and goes in the next release: use --json-output {values}",
              file=sys.stderr)
        namespace.json_output = values


def add_json_flag(parser, what: str = "the result", output_file: bool = False) -> None:
    """--json: one JSON object on stdout instead of the human text; `output_file` adds --json-output PATH (the
    human text, and the JSON written to PATH too), whose old spelling was --json PATH."""
    help = f"print {what} as one JSON object instead of the table (default: off)"
    if not output_file:
        parser.add_argument("--json", action="store_true", help=help)
        return
    parser.add_argument("--json", nargs="?", action=_JsonFlag, default=False, help=help)
    parser.add_argument("--json-output", default=None, metavar="PATH",
                        help=f"also write {what} as JSON here (default: none)")


def add_model_args(parser: argparse.ArgumentParser, keep_ratio: Optional[float] = DEFAULT_KEEP_RATIO,
                   schedule: bool = True) -> None:
    """--model/--keep-ratio/--keep-ratios/--ckpt/--img-size/--seed/--num-classes; no keep-ratio flags when
    `schedule` is False (a tool that sets the ratios itself)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"idlevit_* name, gtp_* name (GTP-ViT, training-free) or any timm ViT with a [CLS] token "
                        f"(default: {DEFAULT_MODEL})")
    if schedule:
        g.add_argument("--keep-ratio", type=keep_ratio_arg, default=keep_ratio,
                       help=f"base keep ratio r in (0, 1]; stage s keeps r**s (default: {keep_ratio})")
        g.add_argument("--keep-ratios", type=keep_ratio_arg, nargs="+", default=None,
                       help="explicit ratio per block, 1.0 = plain block (default: from --keep-ratio)")
    g.add_argument("--ckpt", default=None,
                   help="local .pth/.pt/.safetensors checkpoint (default: seeded random weights, with a warning)")
    g.add_argument("--model-kwargs", type=model_kwarg, nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra timm.create_model arguments: GTP-ViT's settings (num_prop=8 num_neighbours=8 alpha=0.1 "
                        "graph_type=mixed token_scale=True sparsity=1.0, see docs/gtp-vit.md) or backbone ones such "
                        "as depth=4 embed_dim=64 (default: none)")
    g.add_argument("--img-size", type=int, default=None, help="input resolution (default: the model's)")
    g.add_argument("--num-classes", type=int, default=None, help="classifier classes (default: the model's)")
    g.add_argument("--seed", type=int, default=0, help="seed for the random weights without --ckpt (default: 0)")


def model_from_args(args, **kwargs):
    """create_idlevit from the model flags; `kwargs` add to them (keep_ratio too, for a tool without its flags)."""
    from ..factory import create_idlevit
    if hasattr(args, "keep_ratio"):
        kwargs.update(keep_ratio=args.keep_ratio, keep_ratios=args.keep_ratios)
    extra = dict(getattr(args, "model_kwargs", None) or [])
    for key in set(extra) & {"img_size", "num_classes", "seed", "ckpt", "keep_ratio", "keep_ratios"}:
        raise UserError(f"--model-kwargs {key}=... repeats a flag: pass --{key.replace('_', '-')} instead")
    kwargs = {**extra, **kwargs}
    return create_idlevit(args.model, ckpt=args.ckpt, img_size=args.img_size, seed=args.seed,
                          num_classes=args.num_classes, **kwargs)


def check_input_files(**flags: Optional[str]) -> None:
    """Fail before any work when a file flag (`onnx="m.onnx"` for --onnx) names no file."""
    for name, path in flags.items():
        if path is not None:
            check_input_file(path, f"--{name.replace('_', '-')}", "pass an existing file", "does not exist")


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run `main`; bad input becomes one line on stderr and exit status 2, no traceback."""
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def run_verbs(build_parser: Callable[[], argparse.ArgumentParser], argv: Optional[Sequence[str]] = None) -> int:
    """Main of a tool with verbs: each verb's parser sets `run(args) -> int`."""
    def _main(args_list):
        args = build_parser().parse_args(args_list)
        if getattr(args, "json_output", None):   # every verb's --json-output, before its work
            check_output_path(args.json_output, "--json-output")
        return args.run(args)
    return run_cli(_main, argv)


def write_json(obj, path: Optional[str] = None) -> None:
    """JSON to stdout, or atomically to `path`."""
    text = json.dumps(obj, indent=2, default=str)
    if path is None or path == "-":
        print(text)
        return
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text + "\n")


def print_table(rows: Sequence[Sequence], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
