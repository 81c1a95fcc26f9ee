"""What this CPU can do for int8 and bf16 inference, read from the kernel's /proc/cpuinfo flags.

ONNX Runtime's x86 int8 GEMMs are u8s8: without an int8 dot-product instruction (VNNI, AVX-VNNI,
AMX) they add pairs of products in 16 bits (VPMADDUBSW) and saturate; with one they accumulate
in 32 bits and are exact. So the exact-but-slower u8u8 kernels are only needed on x86 CPUs
without VNNI. Off Linux the flags are unknown and the safe choice (exact kernels) is made.
"""
from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

# /proc/cpuinfo flag names
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
SHOWN_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl") + INT8_DOT_FLAGS + BF16_FLAGS


@dataclass(frozen=True)
class CpuFeatures:
    model: str
    machine: str                       # platform.machine(): x86_64, aarch64, ...
    flags: Optional[FrozenSet[str]]    # None when they could not be read

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i386", "i686")

    @property
    def int8_dot(self) -> Tuple[str, ...]:
        """The int8 dot-product extensions present (empty: none, or unknown)."""
        return tuple(f for f in INT8_DOT_FLAGS if self.flags and f in self.flags)

    @property
    def bf16(self) -> Tuple[str, ...]:
        return tuple(f for f in BF16_FLAGS if self.flags and f in self.flags)

    def summary(self) -> str:
        """e.g. 'Intel Xeon @ 2.50GHz; avx2 avx512f ...; no VNNI/BF16/AMX'."""
        if self.flags is None:
            return f"{self.model} ({self.machine}; flags unknown)"
        shown = " ".join(f for f in SHOWN_FLAGS if f in self.flags) or "no AVX2/AVX-512"
        missing = [] if self.int8_dot else ["VNNI"]
        missing += [] if self.bf16 else ["BF16"]
        missing += [] if any(f.startswith("amx") for f in self.flags) else ["AMX"]
        return f"{self.model}; {shown}" + (f"; no {'/'.join(missing)}" if missing else "")


def exact_int8_reason(cpu: "CpuFeatures", weight_bits: int = 8) -> Tuple[bool, str]:
    """(whether ONNX Runtime needs its exact u8u8 int8 kernels here, why) for a file of `weight_bits`-bit weights.

    7-bit weights (idle-calibrate --weight-bits 7) cannot saturate the pair sums: 255 * 64 * 2 < 2**15.
    """
    if not cpu.is_x86:
        return False, f"{cpu.machine} CPU: ONNX Runtime's x86 int8 kernels do not apply"
    if cpu.int8_dot:
        return False, f"{'/'.join(cpu.int8_dot)}: the default u8s8 kernels accumulate in int32"
    if weight_bits <= 7:
        return False, "7-bit weights: the default u8s8 kernels cannot saturate 16-bit pair sums"
    if cpu.flags is None:
        return True, "CPU flags unknown: exact kernels to be safe"
    return True, "no VNNI: the default u8s8 kernels would saturate 16-bit pair sums"


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> Tuple[Optional[str], Optional[FrozenSet[str]]]:
    model, flags = None, None
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "Features") and flags is None:  # x86, arm
                    flags = frozenset(value.split())
                if model and flags is not None:
                    break
    except OSError:
        pass
    return model, flags


@functools.lru_cache(maxsize=None)
def cpu_features() -> CpuFeatures:
    model, flags = _read_cpuinfo()
    return CpuFeatures(model or platform.processor() or "unknown", platform.machine(), flags)
