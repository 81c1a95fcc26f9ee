"""TensorRT engine runner on the shared runner protocol: torch CUDA tensors as I/O, no PyCUDA.

Per batch size: set_input_shape, output tensors allocated from the context's shapes,
set_tensor_address for every I/O tensor, execute_async_v3 on a torch CUDA stream. With
cuda_graph=True each batch size is captured once into a CUDA graph and replayed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..engines.gpu import current_gpu
from ..engines.sidecar import EngineSidecar, check_engine_compatible, read_sidecar
from ..engines.tensorrt_import import import_tensorrt
from ..errors import UserError


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
    """Static I/O buffers for one batch size (and its CUDA graph when captured)."""
    inputs: Dict[str, object]
    outputs: Dict[str, object]
    graph: Optional[object] = None


@dataclass
class TrtRunner:
    """Runs a serialized TensorRT engine built by idle-trt-build.

    Args:
        engine_path: the .engine file; its .json sidecar must sit beside it.
        device: CUDA device index.
        cuda_graph: capture each batch size into a CUDA graph and replay it.
        check_sidecar: refuse engines built for another TensorRT version or GPU (one line).
    """
    engine_path: str
    device: int = 0
    cuda_graph: bool = False
    check_sidecar: bool = True
    name: str = "trt"
    sidecar: Optional[EngineSidecar] = None
    input_names: List[str] = field(default_factory=list)
    output_names: List[str] = field(default_factory=list)

    def __post_init__(self):
        self._trt = self._runtime = self._engine = self._context = self._stream = None
        self._bindings: Dict[Tuple, _Bindings] = {}

    # -- protocol ---------------------------------------------------------------------
    def __enter__(self) -> "TrtRunner":
        self.load()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self) -> "TrtRunner":
        if self._context is not None:
            return self
        if not os.path.isfile(self.engine_path):
            raise UserError(f"engine {self.engine_path} does not exist: build one with idle-trt-build")
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
            # the plan carries its own lean runtime; TensorRT only loads it when told the plan is trusted
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
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        return self

    def close(self) -> None:
        self._bindings.clear()
        self._context = self._engine = self._runtime = self._stream = None

    # -- inference --------------------------------------------------------------------
    def batch_range(self, name: Optional[str] = None) -> Tuple[int, int]:
        """(min, max) batch of the engine's optimization profile for input `name`."""
        shapes = self._engine.get_tensor_profile_shape(name or self.input_names[0], 0)
        return int(shapes[0][0]), int(shapes[2][0])

    def _check_shape(self, name: str, shape: Tuple[int, ...]) -> None:
        low, high = self._engine.get_tensor_profile_shape(name, 0)[0], self._engine.get_tensor_profile_shape(name, 0)[2]
        if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high)):
            raise UserError(f"input {name} of shape {list(shape)} is outside the engine's profile "
                            f"{list(low)}..{list(high)}: rebuild with idle-trt-build --min-batch/--max-batch "
                            "or check --img-size")

    def _bind(self, shapes: Dict[str, Tuple[int, ...]]) -> _Bindings:
        import torch
        key = tuple(sorted(shapes.items()))
        if key in self._bindings:
            return self._bindings[key]
        engine, context, trt = self._engine, self._context, self._trt
        dev = torch.device("cuda", self.device)
        inputs = {}
        for name, shape in shapes.items():
            self._check_shape(name, shape)
            context.set_input_shape(name, shape)
            inputs[name] = torch.empty(shape, dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=dev)
        outputs = {name: torch.empty(tuple(context.get_tensor_shape(name)),
                                     dtype=torch_dtype(trt, engine.get_tensor_dtype(name)), device=dev)
                   for name in self.output_names}
        binding = _Bindings(inputs, outputs)
        self._bindings[key] = binding
        return binding

    def _set_addresses(self, binding: _Bindings) -> None:
        for name, tensor in {**binding.inputs, **binding.outputs}.items():
            self._context.set_tensor_address(name, tensor.data_ptr())

    def _execute(self, binding: _Bindings) -> None:
        import torch
        stream = self._stream
        if binding.graph is not None:
            with torch.cuda.stream(stream):
                binding.graph.replay()
            return
        for name, tensor in binding.inputs.items():
            self._context.set_input_shape(name, tuple(tensor.shape))
        self._set_addresses(binding)
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        if self.cuda_graph:
            self._capture(binding)

    def _capture(self, binding: _Bindings) -> None:
        """Capture one enqueue after a plain run (TensorRT needs that run to settle shape state)."""
        import torch
        graph = torch.cuda.CUDAGraph()
        self._stream.synchronize()
        with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            self._context.execute_async_v3(self._stream.cuda_stream)
        binding.graph = graph

    def infer_torch(self, feed: Dict[str, "torch.Tensor"]) -> Dict[str, "torch.Tensor"]:
        """Outputs as CUDA tensors (static buffers: copy them before the next call of the same batch)."""
        import torch
        if self._context is None:
            self.load()
        missing = set(self.input_names) - set(feed)
        if missing:
            raise UserError(f"missing engine input(s) {sorted(missing)}: the engine takes {self.input_names}")
        binding = self._bind({name: tuple(feed[name].shape) for name in self.input_names})
        with torch.cuda.stream(self._stream):
            for name, buf in binding.inputs.items():
                buf.copy_(feed[name].to(buf.device, non_blocking=True).to(buf.dtype))
        self._execute(binding)
        self._stream.synchronize()
        return binding.outputs

    def infer(self, feed: Union[np.ndarray, Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        """Host in, host out: {input name: array} (or one array) -> {output name: array}."""
        import torch
        if self._context is None:
            self.load()
        if not isinstance(feed, dict):
            feed = {self.input_names[0]: feed}
        tensors = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in feed.items()}
        outputs = self.infer_torch(tensors)
        return {name: t.cpu().numpy() for name, t in outputs.items()}
