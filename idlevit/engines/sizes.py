"""Byte sizes as people write them on the command line: 4GiB, 512MiB, 1.5G, 1073741824."""
from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1,
          "k": 1 << 10, "kib": 1 << 10, "kb": 10 ** 3,
          "m": 1 << 20, "mib": 1 << 20, "mb": 10 ** 6,
          "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9,
          "t": 1 << 40, "tib": 1 << 40, "tb": 10 ** 12}


def parse_size(text: str) -> int:
    """Bytes in `text`; bare K/M/G/T and KiB/MiB/GiB/TiB are binary, kB/MB/GB/TB decimal.

    Raises ValueError naming the accepted forms.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write it like 4GiB, 512MiB or 1073741824")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive size: write it like 4GiB")
    return value


def format_size(num_bytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:g}{unit}"
    return f"{num_bytes}B"
