"""Write a Triton model repository for our files: onnxruntime, tensorrt_plan and python-backend models.

Layout (Triton's standard one):
    <repo>/<name>_onnx/config.pbtxt, 1/model.onnx     platform onnxruntime_onnx (NVIDIA's server containers)
    <repo>/<name>_trt/config.pbtxt, 1/model.plan      platform tensorrt_plan (from an idle-trt-build engine)
    <repo>/<name>/config.pbtxt, 1/model.py + files    backend python: the toolkit's own runner, keep ratio per
                                                       request or from the load (runs on any tritonserver)
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import UserError
from ..fileio import (check_input_file, check_replaceable_dir, commit_dir, file_sha256, remove_stale_temps,
                      temp_dir_beside)
from ..limits import check_finite
from ..onnx_file.elastic import is_keep_input
from .triton_config import INT32_MAX, UINT64_MAX, ModelConfig, TensorSpec, check_with_triton_schema

RATIO_OUTPUT = "keep_ratio"            # python model: the keep ratio each sample ran at
PYTHON_RUNNERS = ("ort", "openvino", "trt", "auto")
MODEL_PY = '''"""Triton python-backend model written by idle-deploy: runs idlevit's own runner on the files beside it."""
from idlevit.serving.triton_model import TritonPythonModel  # noqa: F401  (the class Triton looks for)
'''


@dataclass
class OnnxIO:
    """Inputs and outputs of an ONNX file with full dims (batch first; -1 where dynamic), and its keep ratio."""
    path: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    keep_ratio: Optional[float]
    metadata: Dict[str, str] = field(default_factory=dict)

    @property
    def image_input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def elastic(self) -> bool:
        return any(is_keep_input(i.name) for i in self.inputs)


def read_onnx_io(path: str) -> OnnxIO:
    """I/O names, numpy dtypes and dims of `path` (weights not loaded); the image input comes first."""
    from onnx.helper import tensor_dtype_to_np_dtype
    from ..onnx_file.io import load_onnx
    from ..onnx_file.metadata import props_of
    model = load_onnx(path, load_external_data=False)
    weights = {t.name for t in model.graph.initializer}

    def spec(value_info) -> TensorSpec:
        t = value_info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return TensorSpec(value_info.name, tensor_dtype_to_np_dtype(t.elem_type).name, dims)
    inputs = [spec(i) for i in model.graph.input if i.name not in weights]
    images = [i for i in inputs if not is_keep_input(i.name)]
    if len(images) != 1 or len(images[0].dims) != 4:
        raise UserError(f"{path} has inputs {', '.join(i.name for i in inputs)}: expected one (batch, 3, H, W) "
                        "image input (plus keep_tokens.* for an elastic file); export it with idle-export")
    inputs = images + [i for i in inputs if i is not images[0]]
    meta = props_of(model)
    ratio = meta.get("keep_ratio")
    return OnnxIO(path, inputs, [spec(o) for o in model.graph.output],
                  float(ratio) if ratio not in (None, "null") else None, meta)


def _batched(specs: Sequence[TensorSpec]) -> List[TensorSpec]:
    return [TensorSpec(s.name, s.dtype, list(s.dims[1:])) for s in specs]


def onnxruntime_config(name: str, io: OnnxIO, max_batch: int, instances: int = 1, kind: str = "KIND_CPU",
                       max_queue_delay_us: int = 0) -> ModelConfig:
    """onnxruntime_onnx model. An elastic file's keep_tokens.* inputs have no batch axis, so Triton
    cannot batch it: it is served with max_batch_size 0 and full dims (the client sends the K inputs)."""
    if io.elastic:
        return ModelConfig(name, io.inputs, io.outputs, 0, platform="onnxruntime_onnx", instance_kind=kind,
                           instance_count=instances)
    return ModelConfig(name, _batched(io.inputs), _batched(io.outputs), max_batch, platform="onnxruntime_onnx",
                       instance_kind=kind, instance_count=instances, max_queue_delay_us=max_queue_delay_us)


def tensorrt_config(name: str, io: OnnxIO, engine: str, instances: int = 1,
                    max_queue_delay_us: int = 0) -> ModelConfig:
    """tensorrt_plan model; max_batch_size and the input dims come from the engine's optimization profile
    (read from its JSON sidecar, so no TensorRT is needed here)."""
    from ..engines.sidecar import read_sidecar
    sidecar = read_sidecar(engine)
    image = io.image_input
    if image.name not in sidecar.profile:
        raise UserError(f"engine {engine} has no profile for input {image.name} (it has {', '.join(sidecar.profile)}): "
                        "pass the --onnx the engine was built from")
    shapes = sidecar.profile[image.name]
    lo, hi = list(shapes["min"]), list(shapes["max"])
    if io.elastic:  # K inputs have no batch axis: serve unbatched, dims from the profile's range
        inputs = [TensorSpec(i.name, i.dtype, _profile_dims(sidecar.profile.get(i.name), i.dims)) for i in io.inputs]
        return ModelConfig(name, inputs, io.outputs, 0, platform="tensorrt_plan", instance_kind="KIND_GPU",
                           instance_count=instances)
    if lo[0] > 1:
        raise UserError(f"engine {engine} accepts batches from {lo[0]} only, but Triton sends any batch from 1: "
                        "rebuild it with idle-trt-build --min-batch 1")
    dims = [h if h == l else -1 for l, h in zip(lo[1:], hi[1:])]
    return ModelConfig(name, [TensorSpec(image.name, image.dtype, dims)], _batched(io.outputs), hi[0],
                       platform="tensorrt_plan", instance_kind="KIND_GPU", instance_count=instances,
                       max_queue_delay_us=max_queue_delay_us)


def _profile_dims(shapes: Optional[Dict[str, List[int]]], fallback: Sequence[int]) -> List[int]:
    if not shapes:
        return list(fallback)
    return [h if h == l else -1 for l, h in zip(shapes["min"], shapes["max"])]


def python_config(name: str, io: OnnxIO, max_batch: int, parameters: Dict[str, str], instances: int = 1,
                  kind: str = "KIND_CPU", max_queue_delay_us: int = 0) -> ModelConfig:
    """python-backend model: the image input only (it feeds an elastic file's K inputs itself), the file's
    outputs, and `keep_ratio` (the ratio each sample ran at)."""
    outputs = _batched(io.outputs) + [TensorSpec(RATIO_OUTPUT, "float32", [1])]
    return ModelConfig(name, _batched([io.image_input]), outputs, max_batch, backend="python",
                       instance_kind=kind, instance_count=instances, max_queue_delay_us=max_queue_delay_us,
                       parameters=parameters)


@dataclass
class DeployOptions:
    name: str = "idlevit"
    max_batch: int = 8
    instances: int = 1
    max_queue_delay_us: int = 0
    runner: str = "ort"                     # the python model's runner: ort | openvino | trt | auto
    threads: Optional[int] = None           # the python model's intra-op threads (default: the runner's)
    keep_ratio: Optional[float] = None      # the python model's ratio when a request names none and no target
    p99_target_ms: Optional[float] = None   # follow the load: lower the ratio when p99 passes this
    min_keep_ratio: float = 0.5

    def check(self) -> None:
        """Every number within what Triton's schema holds and what the python model can act on."""
        check_model_name(self.name)
        if self.runner not in PYTHON_RUNNERS:
            raise UserError(f"unknown runner {self.runner!r}: use one of {', '.join(PYTHON_RUNNERS)}")
        for flag, value, low, high in (("--max-batch", self.max_batch, 1, INT32_MAX),
                                       ("--instances", self.instances, 1, INT32_MAX),
                                       ("--max-queue-delay-us", self.max_queue_delay_us, 0, UINT64_MAX),
                                       ("--threads", self.threads, 1, 1024)):
            if value is not None and not low <= value <= high:
                raise UserError(f"{flag} {value} is out of range: pass a whole number from {low} to {high}")
        check_finite(self.p99_target_ms, "--p99-target-ms", positive=True)


def check_model_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserError(f"model name {name!r} is not a plain name: use letters, digits, '_', '-' and '.'")


def write_repository(onnx: Sequence[str], out: str, engine: Optional[str] = None,
                     options: Optional[DeployOptions] = None, force: bool = False) -> Dict[str, str]:
    """Write the repository into `out` (all or nothing); returns model name -> its config.pbtxt text.

    `onnx`: one file, or several of the same model at different keep ratios (the python model then picks
    the file per request ratio). Each also gets its own onnxruntime model.
    """
    opts = options or DeployOptions()
    opts.check()
    if opts.runner == "trt" and not engine:
        raise UserError("--runner trt serves an engine: pass --engine model.plan")
    if not onnx:
        raise UserError("no --onnx-files given: pass the ONNX file written by idle-export")
    inputs = list(onnx) + ([engine, engine + ".json"] if engine else [])
    check_replaceable_dir(out, force, inputs)
    remove_stale_temps(out)
    ios = [read_onnx_io(p) for p in onnx]
    _check_same_model(ios)
    if engine:
        _check_engine_file(engine, ios)

    configs: Dict[str, ModelConfig] = {}
    files: Dict[str, Dict[str, str]] = {}   # model -> {name in version folder: source path}
    for io in ios:
        stem = opts.name if len(ios) == 1 else f"{opts.name}_r{io.keep_ratio:g}" if io.keep_ratio else None
        model = f"{stem or os.path.splitext(os.path.basename(io.path))[0]}_onnx"
        check_model_name(model)
        configs[model] = onnxruntime_config(model, io, opts.max_batch, opts.instances,
                                            max_queue_delay_us=opts.max_queue_delay_us)
        files[model] = {"model.onnx": io.path}
    if engine:
        model = f"{opts.name}_trt"
        configs[model] = tensorrt_config(model, ios[0], engine, opts.instances, opts.max_queue_delay_us)
        files[model] = {"model.plan": engine}

    py_files, served = _python_files(ios, engine, opts.runner)
    params = {"runner": opts.runner, "files": json.dumps(served), "min_keep_ratio": f"{opts.min_keep_ratio:g}"}
    if opts.threads is not None:
        params["threads"] = str(opts.threads)
    if opts.keep_ratio is not None:
        params["keep_ratio"] = f"{opts.keep_ratio:g}"
    if opts.p99_target_ms is not None:
        params["p99_target_ms"] = f"{opts.p99_target_ms:g}"
    configs[opts.name] = python_config(opts.name, ios[0], opts.max_batch, params, opts.instances,
                                       "KIND_GPU" if opts.runner == "trt" else "KIND_CPU", opts.max_queue_delay_us)
    files[opts.name] = py_files

    texts = {model: config.to_pbtxt() for model, config in configs.items()}
    for model, text in texts.items():   # what Triton would refuse to load is refused here, before writing
        check_with_triton_schema(text, model)
    try:
        tmp = temp_dir_beside(out)
    except OSError as e:
        raise UserError(f"cannot write -o {out} ({e.strerror}): pass a folder in a place you can write to") from None
    try:
        for model, config in configs.items():
            version = os.path.join(tmp, model, "1")
            os.makedirs(version)
            with open(os.path.join(tmp, model, "config.pbtxt"), "w") as f:
                f.write(texts[model])
            for target, source in files[model].items():
                if source is None:
                    with open(os.path.join(version, target), "w") as f:
                        f.write(MODEL_PY)
                else:
                    shutil.copyfile(source, os.path.join(version, target))
                    if os.path.isfile(source + ".json"):  # an engine's sidecar travels with it
                        shutil.copyfile(source + ".json", os.path.join(version, target + ".json"))
        commit_dir(tmp, out)
    except OSError as e:   # a full disk, a folder that went away: nothing half-written stays
        raise UserError(f"cannot write -o {out} ({e.strerror or e}): free space or pass another folder") from None
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return texts


def _check_engine_file(engine: str, ios: List[OnnxIO]) -> None:
    """The engine exists, and its sidecar says it was built from one of the ONNX files deployed beside it."""
    from ..engines.sidecar import read_sidecar
    check_input_file(engine, "--engine", "pass the engine file idle-trt-build wrote")
    sidecar = read_sidecar(engine)
    built_from = {sidecar.onnx_sha256, sidecar.source_onnx_sha256} - {None, ""}
    if not built_from & {file_sha256(io.path) for io in ios}:
        raise UserError(f"engine {engine} was not built from the --onnx-files given (its sidecar names ONNX sha256 "
                        f"{str(sidecar.onnx_sha256)[:12]}...): pass the ONNX it was built from, or rebuild it with "
                        f"idle-trt-build --onnx {ios[0].path}")


def _python_files(ios: List[OnnxIO], engine: Optional[str], runner: str):
    """The python model's version folder (target -> source; None = model.py) and its ratio -> file map."""
    files: Dict[str, Optional[str]] = {"model.py": None}
    if runner == "trt":
        files["model.plan"] = engine
        return files, {"": "model.plan"}
    served = {}
    for n, io in enumerate(ios):
        target = "model.onnx" if n == 0 else f"model_{n}.onnx"
        files[target] = io.path
        served["" if io.elastic or io.keep_ratio is None else f"{io.keep_ratio:g}"] = target
    return files, served


def _check_same_model(ios: List[OnnxIO]) -> None:
    first = ios[0]
    for io in ios[1:]:
        if io.image_input != first.image_input or [o.name for o in io.outputs] != [o.name for o in first.outputs]:
            raise UserError(f"{io.path} and {first.path} have different inputs or outputs: pass files of one model "
                            "(the same backbone at different keep ratios)")
        if io.elastic or first.elastic:
            raise UserError(f"{(io if io.elastic else first).path} is elastic and already serves every keep ratio: "
                            "pass it alone with --onnx-files")
        if io.keep_ratio is None or io.keep_ratio == first.keep_ratio:
            raise UserError(f"{io.path} has keep ratio {io.keep_ratio} like another of the --onnx-files: pass one "
                            "file per keep ratio (files written by idle-export --keep-ratio R)")
