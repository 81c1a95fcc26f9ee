"""The JSON written beside every engine (TensorRT version, GPU, precision, profile, ONNX hash) and its checks."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Dict, List, Optional

from packaging.version import InvalidVersion, Version

from ..errors import UserError
from ..fileio import atomic_output
from .gpu import GpuInfo

SIDECAR_FORMAT = 1
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class EngineSidecar:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: Dict[str, Dict[str, List[int]]]      # input -> {"min","opt","max": shape} (the first profile)
    onnx_sha256: str
    onnx_file: str = ""                            # the ONNX TensorRT parsed (fp32, FP16 or Q/DQ)
    source_onnx_sha256: Optional[str] = None       # the fp32 ONNX it was derived from
    keep_ratios: Optional[List[float]] = None
    strongly_typed: bool = False
    version_compatible: bool = False
    onnx_metadata: Dict[str, str] = field(default_factory=dict)
    profiles: List[Dict[str, Dict[str, List[int]]]] = field(default_factory=list)   # every optimization profile
    keep_ranges: List[List[float]] = field(default_factory=list)   # elastic: [min, opt, max] keep ratio per profile
    format: int = SIDECAR_FORMAT

    def to_json(self) -> dict:
        return asdict(self)


def sidecar_path(engine_path: str) -> str:
    return engine_path + ".json"


def write_sidecar(sidecar: EngineSidecar, engine_path: str) -> str:
    path = sidecar_path(engine_path)
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(sidecar.to_json(), f, indent=2)
            f.write("\n")
    return path


def read_sidecar(engine_path: str) -> EngineSidecar:
    """The sidecar of `engine_path`, validated; one-line UserError when missing or malformed."""
    path = sidecar_path(engine_path)
    rebuild = "rebuild the engine with idle-trt-build"
    if not os.path.isfile(path):
        raise UserError(f"engine sidecar {path} is missing: {rebuild} (it writes the engine and its .json)")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"engine sidecar {path} is not valid JSON ({e}): {rebuild}") from None
    if not isinstance(raw, dict):
        raise UserError(f"engine sidecar {path} is not a JSON object: {rebuild}")
    known = {f.name for f in fields(EngineSidecar)}
    required = {"tensorrt_version", "gpu_name", "compute_capability", "precision", "profile", "onnx_sha256"}
    missing = sorted(required - raw.keys())
    if missing:
        raise UserError(f"engine sidecar {path} lacks {', '.join(missing)}: {rebuild}")
    sidecar = EngineSidecar(**{k: v for k, v in raw.items() if k in known})
    for profile in [sidecar.profile] + list(sidecar.profiles or []):
        bad = _bad_profile(profile)
        if bad:
            raise UserError(f"engine sidecar {path} has a broken optimization profile ({bad}): {rebuild}")
    try:
        Version(str(sidecar.tensorrt_version))
    except InvalidVersion:
        raise UserError(f"engine sidecar {path} has TensorRT version {sidecar.tensorrt_version!r}: {rebuild}") from None
    if sidecar.precision not in PRECISIONS:
        raise UserError(f"engine sidecar {path} has precision {sidecar.precision!r}, not one of {PRECISIONS}: {rebuild}")
    return sidecar


def _bad_profile(shapes_by_input) -> str:
    """What is wrong with one profile ({input: {"min","opt","max": shape}}), or "" when nothing is."""
    if not isinstance(shapes_by_input, dict) or not shapes_by_input:
        return "no inputs"
    for name, shapes in shapes_by_input.items():
        if not isinstance(shapes, dict) or any(k not in shapes for k in ("min", "opt", "max")):
            return f"input {name} lacks min/opt/max shapes"
        dims = [shapes[k] for k in ("min", "opt", "max")]
        if not all(isinstance(d, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in d)
                   for d in dims) or len({len(d) for d in dims}) != 1:
            return f"input {name} has shapes {dims}, not three lists of whole numbers of one length"
        if any(lo > hi for lo, hi in zip(dims[0], dims[2])):
            return f"input {name} has min {dims[0]} above max {dims[2]}"
    return ""


def check_engine_compatible(sidecar: EngineSidecar, engine_path: str, runtime_version: str, gpu: GpuInfo) -> None:
    """Refuse an engine built for another TensorRT version or GPU, in one line naming both.

    TensorRT engines only load on the exact TensorRT version and GPU model they were built
    for. A version-compatible engine (--version-compatible) also loads on later TensorRT
    versions (a 10.x engine on 11.x too), never on older ones; it is still tied to the GPU.
    """
    built, running = Version(sidecar.tensorrt_version), Version(runtime_version)
    rebuild = f"rebuild it here: idle-trt-build --onnx {sidecar.onnx_file or 'model.onnx'} -o {engine_path}"
    if sidecar.version_compatible:
        if running < built:
            raise UserError(f"engine {engine_path} was built with TensorRT {built} and this is TensorRT {running}: "
                            f"version-compatible engines only run on the same or a later version; {rebuild}")
    elif running != built:
        raise UserError(f"engine {engine_path} was built with TensorRT {built} but TensorRT {running} is installed: "
                        f"{rebuild} (or build with --version-compatible)")
    if sidecar.compute_capability != gpu.compute_capability or sidecar.gpu_name != gpu.name:
        raise UserError(f"engine {engine_path} was built for {sidecar.gpu_name} (sm {sidecar.compute_capability}) "
                        f"but this GPU is {gpu.name} (sm {gpu.compute_capability}): {rebuild}")
