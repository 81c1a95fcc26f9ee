"""Checks of the sizes and numbers a user passes, made before anything is allocated or written.

One place for them, so that export, macs, show, bench, calibrate and train refuse the same
input with the same words.
"""
from __future__ import annotations

import math
import os
from typing import Optional

from .errors import UserError

FLOAT_BYTES = 4


def check_count(value: int, flag: str, minimum: int = 1) -> int:
    """`value` is a whole number >= `minimum` (image counts, epochs, iterations)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{flag} {value} must be >= {minimum}: pass a whole number of {minimum} or more")
    return value


def check_batch_size(value: int, flag: str = "-b/--batch-size") -> int:
    """One batch-size check for every tool: a whole number of images, at least one."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{flag} {value} must be at least 1 (images per batch): pass e.g. {flag.split('/')[0]} 8")
    return value


def check_finite(value: Optional[float], flag: str, minimum: Optional[float] = None,
                 positive: bool = False) -> Optional[float]:
    """`value` is a real number (not nan/inf), > 0 when `positive`, >= `minimum` when given; None passes."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise UserError(f"{flag} {value} is not a finite number: pass a value such as "
                        f"{'1e-4' if positive else '0.1'}")
    if positive and value <= 0:
        raise UserError(f"{flag} {value:g} must be > 0: pass a positive value")
    if minimum is not None and value < minimum:
        raise UserError(f"{flag} {value:g} must be >= {minimum:g}")
    return value


def check_image_size(img_size: int, patch_size: int, flag: str = "--img-size") -> int:
    """A positive multiple of the patch size: anything else makes timm drop the border pixels."""
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size <= 0:
        raise UserError(f"{flag} {img_size} is not a positive image size: pass a multiple of the patch size "
                        f"{patch_size}, e.g. {patch_size * 14}")
    if img_size % patch_size:
        lower = max(patch_size, img_size // patch_size * patch_size)
        raise UserError(f"{flag} {img_size} is not a multiple of the patch size {patch_size} (the border would be "
                        f"cut off): pass {lower} or {lower + patch_size}")
    return img_size


def vit_forward_bytes(img_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int,
                      batch: int = 1, mlp_ratio: float = 4.0) -> int:
    """Rough fp32 bytes one eval forward needs: the weights, the position table and the largest activations.

    The peak inside a block is the residual stream, qkv, the MLP's hidden layer and two (N x N) maps
    per head (logits and softmax, when attention runs unfused); without grad one block's
    activations live at a time.
    """
    tokens = (img_size // patch_size) ** 2 + 1
    weights = depth * (4 + 2 * mlp_ratio) * embed_dim ** 2 + tokens * embed_dim + 3 * patch_size ** 2 * embed_dim
    per_block = tokens * embed_dim * (2 + 3 + mlp_ratio) + 2 * num_heads * tokens ** 2
    return int(FLOAT_BYTES * (weights + batch * (per_block + 3 * img_size ** 2)))


def available_memory() -> Optional[int]:
    """Bytes this process can still allocate (MemAvailable, capped by a cgroup limit); None when unknown."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_fits_memory(num_bytes: int, what: str, fix: str) -> None:
    """Refuse work whose estimated allocation exceeds the memory this machine has left."""
    free = available_memory()
    if free is not None and num_bytes > free:
        raise UserError(f"{what} needs about {_gib(num_bytes)} of memory, more than the {_gib(free)} available: {fix}")


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / 2 ** 30:.1f} GiB" if num_bytes < 2 ** 40 else f"{num_bytes / 2 ** 40:.1f} TiB"
