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
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import UserError
from ..onnx_file.elastic import is_keep_input
from .triton_config import ModelConfig, TensorSpec

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
    check_model_name(opts.name)
    if opts.runner not in PYTHON_RUNNERS:
        raise UserError(f"unknown runner {opts.runner!r}: use one of {', '.join(PYTHON_RUNNERS)}")
    if opts.runner == "trt" and not engine:
        raise UserError("--runner trt serves an engine: pass --engine model.plan")
    if opts.max_batch < 1:
        raise UserError(f"--max-batch {opts.max_batch} must be at least 1")
    if not onnx:
        raise UserError("no --onnx given: pass the ONNX file written by idle-export")
    ios = [read_onnx_io(p) for p in onnx]
    _check_same_model(ios)
    if engine and not os.path.isfile(engine):
        raise UserError(f"engine {engine} does not exist: build one with idle-trt-build")
    if os.path.exists(out) and os.listdir(out) and not force:
        raise UserError(f"{out} exists and is not empty: remove it, pass another -o, or add --force")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UserError(f"folder {parent} does not exist: create it or pass another -o")

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
    if opts.threads:
        params["threads"] = str(opts.threads)
    if opts.keep_ratio is not None:
        params["keep_ratio"] = f"{opts.keep_ratio:g}"
    if opts.p99_target_ms is not None:
        params["p99_target_ms"] = f"{opts.p99_target_ms:g}"
    configs[opts.name] = python_config(opts.name, ios[0], opts.max_batch, params, opts.instances,
                                       "KIND_GPU" if opts.runner == "trt" else "KIND_CPU", opts.max_queue_delay_us)
    files[opts.name] = py_files

    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.", dir=parent)
    try:
        for model, config in configs.items():
            version = os.path.join(tmp, model, "1")
            os.makedirs(version)
            with open(os.path.join(tmp, model, "config.pbtxt"), "w") as f:
                f.write(config.to_pbtxt())
            for target, source in files[model].items():
                if source is None:
                    with open(os.path.join(version, target), "w") as f:
                        f.write(MODEL_PY)
                else:
                    shutil.copyfile(source, os.path.join(version, target))
                    if os.path.isfile(source + ".json"):  # an engine's sidecar travels with it
                        shutil.copyfile(source + ".json", os.path.join(version, target + ".json"))
        os.chmod(tmp, 0o755)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return {model: config.to_pbtxt() for model, config in configs.items()}


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
            raise UserError("an elastic file already serves every keep ratio: pass it alone as --onnx")
        if io.keep_ratio is None or io.keep_ratio == first.keep_ratio:
            raise UserError(f"{io.path} has keep ratio {io.keep_ratio} like another --onnx: pass one file per "
                            "keep ratio (files written by idle-export --keep-ratio R)")
