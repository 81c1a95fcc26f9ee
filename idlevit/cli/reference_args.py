"""Reference-model flags for verbs that take an ONNX file: every flag defaults to the file's metadata."""
from __future__ import annotations

import argparse

from .common import keep_ratio_arg

FROM_METADATA = "(default: from the ONNX metadata)"


def add_reference_args(parser: argparse.ArgumentParser,
                       title: str = "reference model (every flag defaults to the ONNX metadata; a flag that "
                                    "disagrees with it is an error)") -> None:
    g = parser.add_argument_group(title)
    g.add_argument("--model", default=None, help=f"model name {FROM_METADATA}")
    g.add_argument("--keep-ratio", type=keep_ratio_arg, default=None,
                   help=f"base keep ratio r in (0, 1]; on an elastic file (idle-export --elastic) the ratio to run "
                        f"at, chosen per run {FROM_METADATA}")
    g.add_argument("--keep-ratios", type=keep_ratio_arg, nargs="+", default=None,
                   help=f"explicit ratio per block {FROM_METADATA}")
    g.add_argument("--ckpt", default=None,
                   help="checkpoint the ONNX file was exported from; required when it was (default: none, "
                        "seeded weights from the metadata)")
    g.add_argument("--img-size", type=int, default=None, help=f"input resolution {FROM_METADATA}")
    g.add_argument("--num-classes", type=int, default=None, help=f"classifier classes {FROM_METADATA}")
    g.add_argument("--seed", type=int, default=None, help=f"seed of the random weights {FROM_METADATA}")


def reference_from_args(args, onnx_path: str, warn_random: bool = True):
    """(model, source, metadata) of the PyTorch reference for `onnx_path`, flags checked against its metadata."""
    from ..onnx_file.metadata import read_metadata
    from ..runtime.reference import reference_from_metadata
    meta = read_metadata(onnx_path)
    model, source = reference_from_metadata(
        meta, onnx_path, model=args.model, keep_ratio=args.keep_ratio, keep_ratios=args.keep_ratios, ckpt=args.ckpt,
        img_size=args.img_size, num_classes=args.num_classes, seed=args.seed, warn_random=warn_random)
    return model, source, meta


def reference_from_engine(args, engine_path: str, warn_random: bool = True):
    """Like reference_from_args for a TensorRT engine: the metadata comes from its .json sidecar."""
    from ..engines.sidecar import read_sidecar
    from ..onnx_file.metadata import ExportMetadata
    from ..runtime.reference import reference_from_metadata
    where = f"engine {engine_path}"
    meta = ExportMetadata.from_props(read_sidecar(engine_path).onnx_metadata, f"the sidecar of {where}")
    model, source = reference_from_metadata(
        meta, where, model=args.model, keep_ratio=args.keep_ratio, keep_ratios=args.keep_ratios, ckpt=args.ckpt,
        img_size=args.img_size, num_classes=args.num_classes, seed=args.seed, warn_random=warn_random)
    return model, source, meta
