"""Runners from the runtime flags (--backend, --provider, --threads, --precision, --int8-kernels, --device,
--compile, --autocast): every runner a CLI builds comes from `make_runner` through here."""
from __future__ import annotations

from typing import Optional

# --int8-kernels -> OrtRunner(exact_int8=...): None lets the runner decide from the CPU's flags
EXACT_INT8 = {"auto": None, "exact": True, "default": False}
_AUTO = object()


def file_runner(args, path: str, backend: Optional[str] = None, *, selection: bool = False, exact_int8=_AUTO,
                precision: Optional[str] = None):
    """`path` (an ONNX file, or a TensorRT engine for trt) on `backend` (default: --backend), not yet loaded;
    `exact_int8` and `precision` (OpenVINO's) default to --int8-kernels and --precision."""
    from ..runtime.runner import make_runner
    backend = backend or args.backend
    threads = getattr(args, "threads", None)
    if backend == "trt":
        return make_runner("trt", engine=path, cuda_graph=getattr(args, "cuda_graph", False), selection=selection)
    if backend == "openvino":
        precision = precision or args.precision
        return make_runner("openvino", onnx=path, precision="bf16" if precision == "bf16" else "f32",
                           threads=threads, selection=selection)
    if exact_int8 is _AUTO:
        exact_int8 = EXACT_INT8[getattr(args, "int8_kernels", "auto")]
    return make_runner("ort", onnx=path, provider=getattr(args, "provider", "cpu"), threads=threads,
                       selection=selection, exact_int8=exact_int8)


def torch_runner(args, model, *, selection: bool = False):
    """`model` on PyTorch with --device/--compile/--autocast/--threads where the verb has them, not yet loaded."""
    from ..runtime.runner import make_runner
    return make_runner("torch", model=model, device=getattr(args, "device", "cpu"),
                       compile=getattr(args, "compile", False), fp16=getattr(args, "autocast", "off") == "fp16",
                       threads=getattr(args, "threads", None), selection=selection)


def resolve_auto_backend(args, onnx_path: str, batch: int):
    """--backend auto: pick the backend (and OpenVINO precision) for `onnx_path` on this CPU at --threads and
    `batch`, set args.backend (and args.precision for OpenVINO bf16) to it, say what and why on stderr, and
    return the Choice (for the JSON report)."""
    import sys

    from ..runtime.auto_backend import pick_backend
    choice = pick_backend(onnx_path, threads=getattr(args, "threads", None), batch=batch,
                          refresh=getattr(args, "auto_refresh", False))
    print(choice.describe(), file=sys.stderr, flush=True)
    args.backend = choice.picked.backend
    if choice.picked.precision == "bf16":
        args.precision = "bf16"
    return choice


def add_auto_refresh_arg(p) -> None:
    p.add_argument("--auto-refresh", action="store_true",
                   help="with --backend auto: measure again instead of reading the cached measurement for this "
                        "CPU, file and thread count (default: off)")
