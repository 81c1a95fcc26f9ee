"""TensorRT engine runner on the shared runner protocol: torch CUDA tensors as I/O, no PyCUDA.

Per batch size: set_input_shape, output tensors allocated from the context's shapes,
set_tensor_address for every I/O tensor, execute_async_v3 on a torch CUDA stream. With
cuda_graph=True each batch size is captured once into a CUDA graph and replayed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..engines.gpu import current_gpu
from ..engines.sidecar import EngineSidecar, check_engine_compatible, read_sidecar
from ..engines.tensorrt_import import import_tensorrt
from ..errors import UserError
from ..fileio import check_input_file
from ..onnx_file.elastic import dynamic_dim_name
from ..onnx_file.selection_outputs import SELECTION_PREFIX
from .runner import Runner, TensorInfo



def torch_dtype(trt, dtype):
    import torch
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.BF16: torch.bfloat16, trt.DataType.INT8: torch.int8,
             trt.DataType.INT32: torch.int32, trt.DataType.INT64: torch.int64,
             trt.DataType.BOOL: torch.bool, trt.DataType.UINT8: torch.uint8}
    if dtype not in table:
        raise UserError(f"engine I/O type {dtype} has no torch equivalent: export the ONNX with fp32 inputs/outputs")
    return table[dtype]


@dataclass
class _Bindings:
    """Static I/O buffers for one set of input shapes (and its CUDA graph once captured)."""
    inputs: Dict[str, Any]
    outputs: Dict[str, Any]
    graph: Optional[Any] = None
    profile: int = 0                    # the optimization profile these shapes run under


class TrtRunner(Runner):
    """Runs a serialized TensorRT engine built by idle-trt-build.

    Args:
        engine: the .engine file; its .json sidecar must sit beside it.
        device: CUDA device index.
        cuda_graph: capture each batch size into a CUDA graph on first use and replay it.
        check_sidecar: refuse engines built for another TensorRT version or GPU (one line).
        selection: keep `topk_indices.<i>` outputs when the engine has them (an engine built
            from an ONNX with selection outputs); plain engines only give logits.
    """
    name = "trt"

    def __init__(self, engine: str, *, device: int = 0, cuda_graph: bool = False, check_sidecar: bool = True,
                 selection: bool = False, threads: Optional[int] = None):
        super().__init__()
        self.engine_path, self.device, self.cuda_graph = engine, device, cuda_graph
        self.check_sidecar, self.selection = check_sidecar, selection
        self.sidecar: Optional[EngineSidecar] = None
        self._trt = self._runtime = self._engine = self._context = self._stream = None
        self._inputs: Dict[str, TensorInfo] = {}
        self._outputs: Tuple[str, ...] = ()
        self._bindings: Dict[Tuple, _Bindings] = {}

    # -- protocol ---------------------------------------------------------------------
    def _load(self) -> None:
        check_input_file(self.engine_path, "engine", "pass the engine file idle-trt-build wrote")
        trt = import_tensorrt()
        self.sidecar = read_sidecar(self.engine_path) if self.check_sidecar else None
        if self.sidecar is not None:
            check_engine_compatible(self.sidecar, self.engine_path, trt.__version__, current_gpu(self.device))
        import torch
        torch.cuda.set_device(self.device)
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if self.sidecar is not None and self.sidecar.version_compatible:
            # the plan carries its own lean runtime; TensorRT only runs it when told the plan is trusted
            self._runtime.engine_host_code_allowed = True
        with open(self.engine_path, "rb") as f:
            engine = self._runtime.deserialize_cuda_engine(f.read())
        if engine is None:
            raise UserError(f"TensorRT {trt.__version__} cannot load {self.engine_path} (see its log above): "
                            "rebuild it with idle-trt-build on this machine")
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = torch.cuda.Stream(device=self.device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._inputs = {n: TensorInfo(str(torch_dtype(trt, engine.get_tensor_dtype(n))).replace("torch.", ""),
                                      tuple(dynamic_dim_name(n) if d < 0 else int(d)
                                            for d in engine.get_tensor_shape(n)))
                        for n in inputs}
        self._outputs = tuple(n for n in names if n not in self._inputs)

    def _close(self) -> None:
        self._bindings.clear()
        self._context = self._engine = self._runtime = self._stream = None

    @property
    def input_info(self) -> Dict[str, TensorInfo]:
        return dict(self._inputs)

    def metadata_props(self) -> Dict[str, str]:
        return dict(self.sidecar.onnx_metadata) if self.sidecar is not None else {}

    def _find_elastic(self):
        """An elastic engine takes the K its optimization profiles cover (the union of their min..max)."""
        spec = super()._find_elastic()
        if spec is None:
            return None
        ranges = {}
        for name in spec.names:
            bounds = [self._engine.get_tensor_profile_shape(name, p)
                      for p in range(self._engine.num_optimization_profiles)]
            ranges[name] = (min(int(b[0][0]) for b in bounds), max(int(b[2][0]) for b in bounds))
        return spec.narrowed(ranges)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(n for n in self._outputs if self.selection or not n.startswith(SELECTION_PREFIX))

    def describe(self) -> Dict[str, Any]:
        info = {"backend": self.name, "engine": self.engine_path, "cuda_graph": self.cuda_graph}
        if self._trt is not None:
            info["tensorrt"] = self._trt.__version__
        if self.sidecar is not None:
            info.update(gpu=self.sidecar.gpu_name, precision=self.sidecar.precision,
                        strongly_typed=self.sidecar.strongly_typed)
        return info

    def prepare(self, feed) -> Dict[str, Any]:
        """Inputs as CUDA tensors, so timing measures the engine and not the host-to-device copy."""
        import torch
        dev = torch.device("cuda", self.device)
        return {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))).to(dev)
                for k, v in self._as_dict(feed).items()}

    def _infer(self, feed: Dict[str, Any]) -> Dict[str, np.ndarray]:
        outputs = self.infer_torch(feed)
        return {name: outputs[name].cpu().numpy() for name in self.output_names}

    # -- TensorRT execution -----------------------------------------------------------
    def batch_range(self, name: Optional[str] = None) -> Tuple[int, int]:
        """(min, max) batch of the engine's optimization profile for input `name`."""
        shapes = self._engine.get_tensor_profile_shape(name or self.input_name, 0)
        return int(shapes[0][0]), int(shapes[2][0])

    def _profile_for(self, shapes: Dict[str, Tuple[int, ...]]) -> int:
        """The first optimization profile whose min..max covers every input shape (one line if none does)."""
        for index in range(self._engine.num_optimization_profiles):
            if all(_within(shape, self._engine.get_tensor_profile_shape(name, index))
                   for name, shape in shapes.items()):
                return index
        name, shape = next((n, s) for n, s in shapes.items()
                           if not _within(s, self._engine.get_tensor_profile_shape(n, 0)))
        low, _, high = self._engine.get_tensor_profile_shape(name, 0)
        raise UserError(f"input {name} of shape {list(shape)} is outside the engine's profile "
                        f"{list(low)}..{list(high)}: rebuild with idle-trt-build --min-batch/--max-batch "
                        "(--keep-range for an elastic engine) or check the image size")

    def _bind(self, shapes: Dict[str, Tuple[int, ...]]) -> _Bindings:
        import torch
        key = tuple(sorted(shapes.items()))
        if key in self._bindings:
            return self._bindings[key]
        engine, context, trt = self._engine, self._context, self._trt
        dev = torch.device("cuda", self.device)
        profile = self._profile_for(shapes)
        self._select_profile(profile)
        inputs = {}
        for name, shape in shapes.items():
            context.set_input_shape(name, shape)
            inputs[name] = torch.empty(shape, dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=dev)
        outputs = {name: torch.empty(tuple(context.get_tensor_shape(name)),
                                     dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=dev)
                   for name in self._outputs}
        self._bindings[key] = binding = _Bindings(inputs, outputs, profile=profile)
        return binding

    def _select_profile(self, index: int) -> None:
        if self._context.active_optimization_profile != index:
            self._context.set_optimization_profile_async(index, self._stream.cuda_stream)

    def _execute(self, binding: _Bindings) -> None:
        import torch
        if binding.graph is not None:
            with torch.cuda.stream(self._stream):
                binding.graph.replay()
            return
        context = self._context
        self._select_profile(binding.profile)
        for name, tensor in binding.inputs.items():
            context.set_input_shape(name, tuple(tensor.shape))
        for name, tensor in {**binding.inputs, **binding.outputs}.items():
            context.set_tensor_address(name, tensor.data_ptr())
        if not context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        if self.cuda_graph:
            self._capture(binding)

    def _capture(self, binding: _Bindings) -> None:
        """Capture one enqueue after a plain run (TensorRT needs that run to settle its shape state)."""
        import torch
        graph = torch.cuda.CUDAGraph()
        self._stream.synchronize()
        with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            self._context.execute_async_v3(self._stream.cuda_stream)
        binding.graph = graph

    def infer_torch(self, feed: Dict[str, Any]) -> Dict[str, Any]:
        """Outputs as CUDA tensors (static buffers: copy them before the next call of the same batch)."""
        import torch
        missing = set(self._inputs) - set(feed)
        if missing:
            raise UserError(f"missing engine input(s) {sorted(missing)}: the engine takes {list(self._inputs)}")
        staged = self.prepare({name: feed[name] for name in self._inputs})
        binding = self._bind({name: tuple(t.shape) for name, t in staged.items()})
        with torch.cuda.stream(self._stream):
            for name, buf in binding.inputs.items():
                buf.copy_(staged[name].to(buf.dtype), non_blocking=True)
        self._execute(binding)
        self._stream.synchronize()
        return binding.outputs


def _within(shape: Tuple[int, ...], bounds) -> bool:
    low, _, high = bounds
    return len(shape) == len(low) and all(lo <= s <= hi for s, lo, hi in zip(shape, low, high))
