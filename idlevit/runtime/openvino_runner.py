"""OpenVINO runner (CPU): reads our ONNX files unchanged (TopK, row Gather and ScatterND, dynamic batch).

The CPU plugin's default precision is bf16 on CPUs with AVX-512 BF16 or AMX, which changes the
logits and, near ties, the selected tokens. So the runner asks for f32 unless told otherwise
(`precision="bf16"` is the opt-in, checked against the fp16 parity limits), and `describe()`
reports the precision the compiled model runs in. On a CPU without AVX-512 BF16 or AMX
(AVX-512 F/BW/VL only) OpenVINO 2026.4 accepts the bf16 hint and computes in bf16 without the
bf16 instructions: the logits differ from f32 as they would with bf16 hardware.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from ..errors import UserError
from ..onnx_file.elastic import dynamic_dim_name
from ..optional_deps import require
from .cpu_features import cpu_features
from .onnx_source import onnx_for_runtime
from .runner import Runner, TensorInfo, cast_feed, default_threads

PRECISIONS = ("f32", "bf16")
_OV_DTYPES = {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8", "i8": "int8",
              "boolean": "bool"}


def import_openvino():
    """`import openvino`, or a one-line install hint."""
    return require("openvino")


class OpenVinoRunner(Runner):
    """Runs an ONNX file (or ModelProto/bytes) with OpenVINO on the CPU.

    Args:
        onnx: path, ModelProto or serialized bytes.
        precision: INFERENCE_PRECISION_HINT, "f32" (default: matches ONNX Runtime to fp32 limits) or "bf16".
        threads: INFERENCE_NUM_THREADS (default: the CPUs this process may use).
        selection: expose each TopK's indices as `topk_indices.<i>` outputs.
    """
    name = "openvino"

    def __init__(self, onnx: Union[str, bytes, Any], *, precision: str = "f32", threads: Optional[int] = None,
                 selection: bool = False):
        super().__init__()
        if precision not in PRECISIONS:
            raise UserError(f"unknown OpenVINO precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.source, self.precision, self.selection = onnx, precision, selection
        self.threads = default_threads(threads)
        self.compiled = None
        self._request = None

    def _read(self, ov):
        core = ov.Core()
        src = onnx_for_runtime(self.source, self.selection)
        try:
            if isinstance(src, str):
                model = core.read_model(src)
            else:  # in-memory ONNX: the frontend reads it from the bytes, no weights file
                model = core.read_model(model=src, weights=ov.Tensor(np.empty(0, np.uint8)))
        except Exception as e:  # the frontend's errors are long C++ traces: keep the first line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            where = self.source if isinstance(self.source, str) else "the ONNX model"
            raise UserError(f"OpenVINO cannot read {where} ({first[:160]}): re-export it with idle-export") from None
        return core, model

    def _load(self) -> None:
        ov = import_openvino()
        core, model = self._read(ov)
        config = {"INFERENCE_PRECISION_HINT": self.precision, "INFERENCE_NUM_THREADS": self.threads,
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as e:  # e.g. an If node of dynamic rank left in a TorchScript export
            last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            where = self.source if isinstance(self.source, str) else "the ONNX model"
            raise UserError(f"OpenVINO's CPU plugin cannot compile {where} ({last.strip()[:160]}): "
                            "re-export it with idle-export --exporter dynamo") from None
        self._request = self.compiled.create_infer_request()
        self._inputs = {p.get_any_name(): TensorInfo(_OV_DTYPES.get(p.get_element_type().get_type_name(), "float32"),
                                                     tuple(d.get_length() if d.is_static
                                                           else dynamic_dim_name(p.get_any_name())
                                                           for d in p.get_partial_shape()))
                        for p in self.compiled.inputs}
        self._outputs = tuple(p.get_any_name() for p in self.compiled.outputs)

    def _close(self) -> None:
        self._request = None
        self.compiled = None

    def _infer(self, feed: Dict[str, Any]) -> Dict[str, np.ndarray]:
        feed = cast_feed(feed, self._inputs, list(self._inputs))
        result = self._request.infer(feed)  # copies the outputs (share_outputs=False)
        return {port.get_any_name(): np.asarray(value) for port, value in result.items()}

    def prepare(self, feed) -> Dict[str, Any]:
        return cast_feed(self._as_dict(feed), self.input_info)

    @property
    def input_info(self) -> Dict[str, TensorInfo]:
        if self.compiled is None:
            raise RuntimeError("openvino runner is not loaded")
        return self._inputs

    @property
    def output_names(self) -> Tuple[str, ...]:
        if self.compiled is None:
            raise RuntimeError("openvino runner is not loaded")
        return self._outputs

    def metadata_props(self) -> Dict[str, str]:
        """The ONNX file's metadata (an elastic file's K range and default ratio), read from the source."""
        import onnx

        from ..onnx_file.io import load_onnx
        from ..onnx_file.metadata import props_of
        src = self.source
        if isinstance(src, str):
            return props_of(load_onnx(src, load_external_data=False))
        return props_of(onnx.load_from_string(bytes(src)) if isinstance(src, (bytes, bytearray)) else src)

    @property
    def executed_precision(self) -> Optional[str]:
        """The precision the compiled model runs in ("f32" on a CPU without bf16 even when bf16 was asked)."""
        if self.compiled is None:
            return None
        return _type_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    def describe(self) -> Dict[str, Any]:
        ov = import_openvino()
        info = {"backend": self.name, "openvino": ov.get_version().split("-")[0], "threads": self.threads,
                "precision_hint": self.precision}
        if self.compiled is not None:
            ran = info["precision"] = self.executed_precision
            if ran != self.precision:
                info["precision"] += f" (asked {self.precision})"
            elif ran == "bf16" and not cpu_features().bf16:
                info["precision"] += " (this CPU has no AVX-512 BF16/AMX: OpenVINO rounds to bf16 in software)"
            info["threads"] = self.compiled.get_property("INFERENCE_NUM_THREADS")
        return info


def _type_name(value) -> str:
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(name, name)
