"""Rebuild the PyTorch reference of an exported ONNX file from its metadata, checking any flags against it."""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

from ..errors import UserError
from ..factory import create_idlevit
from ..fileio import file_sha256
from ..models.schedule import KeepSchedule
from ..onnx_file.metadata import ExportMetadata


def _same_ratios(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


def reference_from_metadata(meta: ExportMetadata, where: str, *, model: Optional[str] = None,
                            keep_ratio: Optional[float] = None, keep_ratios: Optional[Sequence[float]] = None,
                            ckpt: Optional[str] = None, img_size: Optional[int] = None,
                            num_classes: Optional[int] = None, seed: Optional[int] = None,
                            warn_random: bool = True):
    """The fp32 PyTorch model an ONNX file was exported from, and its ModelSource.

    Flags left as None come from the metadata; a flag that disagrees with it is a UserError
    naming both values (so a parity run can never silently compare against another model).
    """
    def mismatch(flag, given, stored, fix):
        raise UserError(f"{flag} {given} does not match {where}, exported with {stored}: {fix}")

    if model is not None and model != meta.model_name:
        mismatch("--model", model, meta.model_name, "drop --model or pass the ONNX file exported from it")
    if img_size is not None and img_size != meta.img_size:
        mismatch("--img-size", img_size, meta.img_size, "drop --img-size")
    if num_classes is not None and num_classes != meta.num_classes:
        mismatch("--num-classes", num_classes, meta.num_classes, "drop --num-classes")
    if meta.ckpt_sha256:
        if ckpt is None:
            raise UserError(f"{where} was exported from a checkpoint (sha256 {meta.ckpt_sha256[:12]}...): "
                            "pass that file with --ckpt")
        if seed is not None:
            raise UserError(f"{where} was exported from a checkpoint, not seeded weights: drop --seed")
        digest = file_sha256(ckpt) if os.path.isfile(ckpt) else None  # a missing file is reported on load
        if digest is not None and digest != meta.ckpt_sha256:
            raise UserError(f"checkpoint {ckpt} (sha256 {digest[:12]}...) is not the one {where} was exported from "
                            f"(sha256 {meta.ckpt_sha256[:12]}...): pass the matching --ckpt")
    else:
        if ckpt is not None:
            raise UserError(f"{where} was exported from seeded random weights (seed {meta.seed}), not a checkpoint: "
                            f"drop --ckpt")
        if seed is not None and meta.seed is not None and seed != meta.seed:
            mismatch("--seed", seed, meta.seed, "drop --seed")
    if meta.method == "gtp":
        if keep_ratios is not None or (keep_ratio is not None and meta.elastic):
            raise UserError(f"{where} is GTP-ViT, which has no keep ratio: drop --keep-ratio/--keep-ratios")
        return create_idlevit(meta.model_name, ckpt=ckpt, img_size=meta.img_size,
                              seed=meta.seed if meta.seed is not None else 0, num_classes=meta.num_classes,
                              warn_random=warn_random, **(meta.model_kwargs or {}), **meta.gtp)
    built, source = create_idlevit(meta.model_name, keep_ratios=meta.keep_ratios, ckpt=ckpt, img_size=meta.img_size,
                                   seed=meta.seed if meta.seed is not None else 0, num_classes=meta.num_classes,
                                   warn_random=warn_random, **(meta.model_kwargs or {}))
    elastic_ratio = None
    if meta.elastic and (keep_ratio is not None or keep_ratios is not None):
        if keep_ratios is not None:
            raise UserError(f"{where} is elastic: it takes one --keep-ratio per run, not --keep-ratios")
        from ..onnx_file.elastic import ElasticKeep
        ElasticKeep.from_metadata(meta, where).stage_tokens(keep_ratio)   # one line when out of range
        elastic_ratio, keep_ratio = keep_ratio, None
    if keep_ratio is not None or keep_ratios is not None:
        try:
            schedule = KeepSchedule(keep_ratio or 1.0, keep_ratios)
            wanted = schedule.block_ratios(len(built.blocks))
        except ValueError as e:
            raise UserError(str(e)) from None
        if not _same_ratios(wanted, meta.keep_ratios):
            flag = "--keep-ratio" if keep_ratios is None else "--keep-ratios"
            value = keep_ratio if keep_ratios is None else " ".join(map(str, keep_ratios))
            ks = schedule.block_tokens(len(built.blocks), built.num_image_tokens)
            mismatch(flag, f"{value} (K per block {_ks(ks)})", f"K per block {_ks(meta.keep_tokens)}",
                     f"drop {flag} or pass the ONNX file exported with it")
    if list(built.keep_tokens) != list(meta.keep_tokens):
        raise UserError(f"{where} records K per block {_ks(meta.keep_tokens)} but its keep ratios give "
                        f"{_ks(built.keep_tokens)}: re-export it with idle-export")
    if elastic_ratio is not None:  # the schedule the elastic file runs at when given this ratio
        from ..models.elastic import set_elastic_keep_ratio
        set_elastic_keep_ratio(built, elastic_ratio)
    return built, source


def elastic_ratio_of(meta: ExportMetadata, keep_ratio: Optional[float]) -> Optional[float]:
    """The ratio to set on a runner of this file: --keep-ratio for an elastic file, else None (fixed K)."""
    return keep_ratio if meta.elastic else None


def _ks(tokens) -> str:
    return ",".join("-" if k is None else str(k) for k in tokens)


def baseline_of(model):
    """A copy of `model` with every block plain (keep ratio 1.0): the same weights, no idling (for GTP-ViT, the
    plain backbone: no propagation, no token graph)."""
    import copy
    if hasattr(model, "gtp"):
        from ..models.gtp_vit import plain_copy
        return plain_copy(model)
    return copy.deepcopy(model).set_keep_ratio(1.0)
