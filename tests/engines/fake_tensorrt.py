"""A recording stand-in for the `tensorrt` module, just enough for the engine build chain.

Its parser turns the real ONNX file into fake layers (node order, tensor names, TopK and
LayerNorm types, float/int dtypes from ONNX shape inference), so the TensorRT-side
selection-path walk runs on the real graph. Version 11 lacks what TensorRT 11 removed
(BuilderFlag.FP16/INT8/OBEY_PRECISION_CONSTRAINTS, ILayer.precision/set_output_type),
so using those on the 11 path fails here as it would on a GPU.
"""
from __future__ import annotations

import enum
import types


class _Flags:
    def __init__(self, names):
        for i, name in enumerate(names):
            setattr(self, name, i)


def make_fake_tensorrt(version: str):
    trt11 = int(version.split(".")[0]) >= 11
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []
    flags = ["TF32", "VERSION_COMPATIBLE", "STRIP_PLAN"] + ([] if trt11 else ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"])
    trt.BuilderFlag = _Flags(flags)
    trt.NetworkDefinitionCreationFlag = _Flags(["STRONGLY_TYPED"] if trt11 else ["EXPLICIT_BATCH", "STRONGLY_TYPED"])
    trt.MemoryPoolType = _Flags(["WORKSPACE"])
    trt.LayerType = enum.Enum("LayerType", "TOPK NORMALIZATION OTHER")
    trt.DataType = enum.Enum("DataType", "FLOAT HALF INT8 INT32 INT64 BOOL UINT8 BF16")

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            self.severity = severity

    class Tensor:
        def __init__(self, name, dtype):
            self.name, self.dtype = name, dtype

    class Layer:
        def __init__(self, name, type_, ins, outs):
            self.name, self.type, self._ins, self._outs = name, type_, ins, outs
            self.num_inputs, self.num_outputs = len(ins), len(outs)
            self.pinned = {}
            if not trt11:
                self.precision = None

        def get_input(self, i):
            return self._ins[i]

        def get_output(self, i):
            return self._outs[i]

        def __setattr__(self, key, value):
            if trt11 and key == "precision":
                raise AttributeError("TensorRT 11 layers have no precision (weak typing removed)")
            super().__setattr__(key, value)

        if not trt11:
            def set_output_type(self, i, dtype):
                self.pinned[i] = dtype

    class Network:
        def __init__(self, flags):
            self.flags, self.layers, self.outputs = flags, [], []

        @property
        def num_layers(self):
            return len(self.layers)

        def get_layer(self, i):
            return self.layers[i]

        @property
        def num_outputs(self):
            return len(self.outputs)

        def get_output(self, i):
            return self.outputs[i]

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            import onnx
            model = onnx.shape_inference.infer_shapes(onnx.load(path))
            types_ = {v.name: v.type.tensor_type.elem_type for v in
                      list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
            dt = {onnx.TensorProto.FLOAT: trt.DataType.FLOAT, onnx.TensorProto.FLOAT16: trt.DataType.HALF,
                  onnx.TensorProto.INT8: trt.DataType.INT8, onnx.TensorProto.BOOL: trt.DataType.BOOL}
            tensor = lambda n: Tensor(n, dt.get(types_.get(n), trt.DataType.INT64))  # noqa: E731
            kinds = {"TopK": trt.LayerType.TOPK, "LayerNormalization": trt.LayerType.NORMALIZATION}
            for node in model.graph.node:
                self.network.layers.append(Layer(node.name, kinds.get(node.op_type, trt.LayerType.OTHER),
                                                 [tensor(t) for t in node.input if t],
                                                 [tensor(t) for t in node.output if t]))
            self.network.outputs = [tensor(o.name) for o in model.graph.output]
            trt.calls.append(("parse", path))
            return True

        def get_error(self, i):
            raise IndexError(i)

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data) or b"fresh-cache"

        def serialize(self):
            return self.data + b"+tuned"

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            trt.calls.append(("set_shape", name, lo, opt, hi))

    class Config:
        def __init__(self):
            self.flags, self.cache = set(), None

        def set_memory_pool_limit(self, pool, size):
            trt.calls.append(("workspace", pool, size))

        def add_optimization_profile(self, profile):
            trt.calls.append(("add_profile",))

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

        def set_flag(self, flag):
            self.flags.add(flag)

    class Builder:
        def __init__(self, logger):
            trt.builder = self

        def create_network(self, flags):
            trt.network = Network(flags)
            return trt.network

        def create_builder_config(self):
            trt.config = Config()
            return trt.config

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return b"fake-plan-flags-" + ",".join(map(str, sorted(config.flags))).encode()

    trt.Logger, trt.OnnxParser, trt.Builder = Logger, OnnxParser, Builder
    return trt
