"""ONNX -> TensorRT engine as a chain of small steps: plan -> parse -> configure -> build -> save.

TensorRT 10 and 11 differ only in how precision is chosen (docs/design.md §3.2): TensorRT 10 takes the
fp32 ONNX plus FP16/INT8 builder flags (weak typing), TensorRT 11 builds a strongly typed
network whose precision comes from the ONNX itself (mixed FP16 ONNX, Q/DQ ONNX). Functions
named *_trt10 hold the only TensorRT-10-only API calls (the API-name test relies on it).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional

from packaging.version import Version

from ..errors import UserError
from ..fileio import atomic_output
from ..onnx_file.info import OnnxInfo, read_onnx_info
from .batch_profile import BatchProfile, KeepRange, engine_profiles, profiles_to_json
from .gpu import GpuInfo, current_gpu
from .selection_layers import trt_selection_layers
from .sidecar import EngineSidecar, sidecar_path
from .sizes import format_size
from .tensorrt_import import import_tensorrt

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = 4 << 30


@dataclass
class BuildRequest:
    """What the user asked for (the idle-trt-build flags)."""
    onnx: str
    engine: str
    fp16: bool = False
    int8: bool = False
    calib: Optional[str] = None          # calib.npz: quantize --onnx into a Q/DQ ONNX first
    qdq: Optional[str] = None            # an existing Q/DQ ONNX
    profile: BatchProfile = field(default_factory=BatchProfile)
    keep_ranges: List[KeepRange] = field(default_factory=list)   # elastic ONNX: one profile per range
    workspace: int = DEFAULT_WORKSPACE
    timing_cache: Optional[str] = None
    version_compatible: bool = False


@dataclass
class BuildPlan:
    """How a request is built on one TensorRT version (pure: decided without TensorRT)."""
    make_onnx: Optional[str]             # None | "fp16" | "int8": derived ONNX to write first
    onnx: str                            # the ONNX TensorRT parses
    strongly_typed: bool
    fp16_flag: bool = False              # TensorRT 10 weak typing only
    int8_flag: bool = False              # TensorRT 10 weak typing only
    pin_fp32: bool = False               # TensorRT 10: selection path + LayerNorm layers forced fp32
    precision: str = "fp32"
    notes: List[str] = field(default_factory=list)


def derived_onnx_path(engine: str, kind: str) -> str:
    """model.engine -> model.fp16.onnx / model.qdq.onnx, beside the engine."""
    stem = os.path.splitext(engine)[0]
    return f"{stem}.{'qdq' if kind == 'int8' else kind}.onnx"


def plan_build(request: BuildRequest, source: OnnxInfo, trt_version: Version) -> BuildPlan:
    """Decide which ONNX to parse and which typing/flags to use for `trt_version`."""
    trt11 = trt_version.major >= 11
    if request.int8:
        if request.qdq:
            onnx, make = request.qdq, None
        elif source.precision == "int8":
            onnx, make = source.path, None
        elif request.calib:
            onnx, make = derived_onnx_path(request.engine, "int8"), "int8"
        else:
            raise UserError("--int8 needs calibration: pass --calib calib.npz (from idle-calibrate) "
                            "or --qdq model.qdq.onnx")
        if trt11:
            notes = ["TensorRT 11: Q/DQ ONNX built strongly typed; layers without Q/DQ keep the ONNX's own types"]
            if request.fp16:
                notes.append("--fp16 with --int8 on TensorRT 11 has no flag to set: the Q/DQ ONNX's types decide")
            return BuildPlan(make, onnx, strongly_typed=True, precision="int8", notes=notes)
        return BuildPlan(make, onnx, strongly_typed=False, int8_flag=True, fp16_flag=request.fp16,
                         pin_fp32=request.fp16, precision="int8",
                         notes=["TensorRT 10: Q/DQ ONNX with the INT8 flag (explicit quantization, no calibrator)"])
    if source.precision == "int8":
        raise UserError(f"{source.path} has Q/DQ nodes: build it with --int8 (or pass the fp32 ONNX)")
    if request.fp16:
        if source.precision == "fp16":
            return BuildPlan(None, source.path, strongly_typed=True, precision="fp16",
                             notes=["mixed-precision ONNX built strongly typed"])
        if trt11:
            return BuildPlan("fp16", derived_onnx_path(request.engine, "fp16"), strongly_typed=True,
                             precision="fp16", notes=["TensorRT 11: mixed-precision ONNX built strongly typed"])
        return BuildPlan(None, source.path, strongly_typed=False, fp16_flag=True, pin_fp32=True, precision="fp16",
                         notes=["TensorRT 10: FP16 flag, selection path and LayerNorm pinned to fp32"])
    return BuildPlan(None, source.path, strongly_typed=trt11 or source.precision == "fp16",
                     precision=source.precision)


def make_derived_onnx(plan: BuildPlan, request: BuildRequest) -> None:
    """Write the FP16 or Q/DQ ONNX the plan parses (no TensorRT needed)."""
    if plan.make_onnx == "fp16":
        from .fp16 import write_fp16_onnx
        write_fp16_onnx(request.onnx, plan.onnx)
    elif plan.make_onnx == "int8":
        from ..calibration.quantize import quantize_int8
        quantize_int8(request.onnx, request.calib, plan.onnx)


def create_network(trt, builder, strongly_typed: bool):
    """Explicit batch always (the only mode in 10 and 11); strongly typed on request."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    return builder.create_network(flags)


def parse_onnx(trt, builder, logger, onnx_path: str, strongly_typed: bool):
    """(network, parser) for `onnx_path`; the parser must outlive the network's weights."""
    network = create_network(trt, builder, strongly_typed)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(onnx_path)):
        errors = [str(parser.get_error(i)).strip() for i in range(parser.num_errors)]
        raise UserError(f"TensorRT cannot parse {onnx_path}: {' | '.join(errors) or 'unknown error'}")
    return network, parser


def load_timing_cache(config, path: Optional[str]):
    """A timing cache from `path` (or a new one); one made for another GPU/version is replaced."""
    data = b""
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s was made for another GPU or TensorRT version: starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def save_timing_cache(config, path: Optional[str]) -> None:
    if path:
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(memoryview(config.get_timing_cache().serialize()))


def _pin_fp32_trt10(trt, network, config) -> int:
    """Weak typing: keep the selection path and LayerNorm layers fp32 under the FP16 flag."""
    keep = set(trt_selection_layers(trt, network))
    keep |= {i for i in range(network.num_layers) if network.get_layer(i).type == trt.LayerType.NORMALIZATION}
    floats = (trt.DataType.FLOAT, trt.DataType.HALF)
    for i in sorted(keep):
        layer = network.get_layer(i)
        float_outputs = [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]
        if not float_outputs:
            continue
        layer.precision = trt.DataType.FLOAT
        for j in float_outputs:
            layer.set_output_type(j, trt.DataType.FLOAT)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return len(keep)


def _set_precision_flags_trt10(trt, network, config, plan: BuildPlan) -> None:
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.int8_flag:
        config.set_flag(trt.BuilderFlag.INT8)
    if plan.pin_fp32:
        log.info("kept %d layers in fp32 (selection path, LayerNorm)", _pin_fp32_trt10(trt, network, config))


def configure(trt, builder, network, request: BuildRequest, plan: BuildPlan, profiles):
    """Builder config: workspace pool, optimization profiles, timing cache, precision, compatibility.

    `profiles`: one {input name: (min, opt, max) shape} per profile (the batch range; an elastic
    file's keep inputs too, whose length is each idle stage's K).
    """
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace)
    for shapes_of in profiles:
        profile = builder.create_optimization_profile()
        for name, shapes in shapes_of.items():
            profile.set_shape(name, *shapes)
        config.add_optimization_profile(profile)
    load_timing_cache(config, request.timing_cache)
    if plan.fp16_flag or plan.int8_flag or plan.pin_fp32:
        _set_precision_flags_trt10(trt, network, config, plan)
    if request.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    return config


def build_serialized(builder, network, config) -> bytes:
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError("TensorRT could not build the engine (see the TensorRT log above): "
                        "try a larger --workspace or a smaller --max-batch")
    return memoryview(plan)


def save_engine(serialized, engine_path: str, sidecar: EngineSidecar) -> None:
    """Engine and sidecar both written to temp files first, renamed into place only when both are complete."""
    with atomic_output(engine_path) as tmp_engine, atomic_output(sidecar_path(engine_path)) as tmp_sidecar:
        with open(tmp_engine, "wb") as f:
            f.write(serialized)
        with open(tmp_sidecar, "w") as f:
            json.dump(sidecar.to_json(), f, indent=2)
            f.write("\n")


def make_sidecar(trt_version: str, gpu: GpuInfo, plan: BuildPlan, built: OnnxInfo, source: OnnxInfo,
                 profiles, version_compatible: bool, keep_ranges=()) -> EngineSidecar:
    meta = dict(source.metadata)
    meta.update(built.metadata)
    meta["precision"] = plan.precision  # an FP16-flag engine comes from the fp32 ONNX: say what it runs
    return EngineSidecar(tensorrt_version=trt_version, gpu_name=gpu.name,
                         compute_capability=gpu.compute_capability, precision=plan.precision,
                         profile=profiles_to_json(profiles)[0], profiles=profiles_to_json(profiles),
                         keep_ranges=[k.to_json() for k in keep_ranges], onnx_sha256=built.sha256,
                         onnx_file=built.path, source_onnx_sha256=source.sha256,
                         keep_ratios=built.keep_ratios or source.keep_ratios, strongly_typed=plan.strongly_typed,
                         version_compatible=version_compatible, onnx_metadata=meta)


def elastic_keep_ranges(request: BuildRequest, built: OnnxInfo):
    """(keep ranges, N) for the profiles: --keep-range on an elastic file, else its full 1..N range tuned at
    the default ratio; ([], None) for a fixed-K file (where --keep-range is an error)."""
    meta = built.export_metadata if built.metadata.get("elastic") == "true" else None
    if meta is None:
        if request.keep_ranges:
            raise UserError(f"{built.path} has a fixed keep ratio: --keep-range needs an elastic file "
                            "(idle-export --elastic)")
        return [], None
    tokens = meta.keep_token_range[1]
    ranges = request.keep_ranges or [KeepRange(1.0 / tokens, meta.keep_ratio, 1.0)]
    return ranges, tokens


def build_engine(request: BuildRequest) -> EngineSidecar:
    """Build `request.engine` (+ its .json sidecar) from `request.onnx`; returns the sidecar.

    Steps: import TensorRT -> plan for its version -> write the FP16/Q/DQ ONNX if needed ->
    parse -> configure -> build_serialized_network -> save engine, sidecar and timing cache.
    """
    trt = import_tensorrt()
    gpu = current_gpu()
    source = read_onnx_info(request.onnx)
    plan = plan_build(request, source, Version(trt.__version__))
    for note in plan.notes:
        log.info("%s", note)
    make_derived_onnx(plan, request)
    built = read_onnx_info(plan.onnx) if plan.onnx != source.path else source
    shapes = request.profile.shapes(built.input_shape)
    keep_ranges, tokens = elastic_keep_ranges(request, built)
    profiles = engine_profiles(built.input_name, shapes, keep_ranges, tokens)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, parser = parse_onnx(trt, builder, logger, plan.onnx, plan.strongly_typed)
    config = configure(trt, builder, network, request, plan, profiles)
    log.info("building %s engine from %s (batch %d/%d/%d, workspace %s, TensorRT %s, %s): this takes minutes",
             plan.precision, plan.onnx, *[s[0] for s in shapes], format_size(request.workspace),
             trt.__version__, gpu.name)
    start = time.perf_counter()
    serialized = build_serialized(builder, network, config)
    log.info("built in %.0f s", time.perf_counter() - start)
    sidecar = make_sidecar(trt.__version__, gpu, plan, built, source, profiles, request.version_compatible,
                           keep_ranges)
    save_engine(serialized, request.engine, sidecar)
    save_timing_cache(config, request.timing_cache)
    del parser
    return sidecar
