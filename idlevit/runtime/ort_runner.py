"""ONNX Runtime runner: CPU, CUDA, or the TensorRT execution provider when the installed build has them."""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import onnx

from ..errors import UserError
from ..optional_deps import require
from .cpu_features import cpu_features, exact_int8_reason
from .onnx_source import onnx_for_runtime
from .runner import Runner, TensorInfo, cast_feed, default_threads

# --provider name -> ONNX Runtime providers, most preferred first (CPU always last as the fallback)
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "trt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
# ONNX Runtime session config key: x64 int8 GEMMs in u8u8, which cannot saturate (u8s8 can)
X64_QUANT_PRECISION = "session.x64quantprecision"
# with more than one thread the workers spin only while a Run is in flight: between the ~450 small nodes of a
# batch-1 call a spinning worker picks the next parallel section up at once (a sleeping one must be woken for
# each), and FORCE_SPINNING_STOP parks it when Run returns, so it never takes the cores from the next session of
# the same process (bench, lineup and the Triton model hold several) or from another process. Measured on a 2-core
# Xeon (Sapphire Rapids, AVX-512/AMX), one process of 6 sessions, batch 1, 2 threads, 30 interleaved calls:
# IdleViT 35.5 -> 29.9 ms, plain DeiT-S 46.7 -> 40.5 ms against spinning off; ONNX Runtime's own default (spinning
# that never stops) slowed every other session of the process (benchmarks/cpu_lineup.py compares all three)
ALLOW_SPINNING = "session.intra_op.allow_spinning"
FORCE_SPINNING_STOP = "session.force_spinning_stop"
SPIN_WHILE_RUNNING = {ALLOW_SPINNING: "1", FORCE_SPINNING_STOP: "1"}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


EXACT_INT8_ORT = "1.32"   # the oldest release measured with CPU int8 kernels equal to the Q/DQ arithmetic


def warn_inexact_int8_kernels(version: str) -> None:
    """One line, once per process: older ONNX Runtime CPU int8 kernels differ from the Q/DQ arithmetic (measured)."""
    from packaging.version import Version
    if Version(version) < Version(EXACT_INT8_ORT) and not _WARNED:
        _WARNED.append(version)
        print(f"warning: ONNX Runtime {version}'s CPU int8 kernels differ from the Q/DQ arithmetic (measured off "
              f"by 0.17 on logits of 0.6 with 1.23.2); exact int8 needs onnxruntime >= {EXACT_INT8_ORT}: "
              f"pip install -U onnxruntime", file=sys.stderr)


_WARNED: list = []


def import_onnxruntime():
    """`import onnxruntime`, or a one-line install hint."""
    return require("onnxruntime")


class OrtRunner(Runner):
    """Runs an ONNX file (or ModelProto/bytes) with ONNX Runtime.

    Args:
        onnx: path, ModelProto or serialized bytes.
        provider: "cpu", "cuda" or "trt" (TensorRT EP, falling back to CUDA then CPU per node).
        threads: intra-op threads (default: the CPUs this process may use; ORT's own default
            counts the host's cores, which oversubscribes a container's share).
        selection: expose each TopK's indices as `topk_indices.<i>` outputs.
        optimization: "all" (default), "extended", "basic" or "disable".
        exact_int8: run Q/DQ models' int8 GEMMs in ONNX Runtime's exact u8u8 kernels. None (default):
            only where needed, i.e. on x86 CPUs without VNNI, whose fast u8s8 kernels (VPMADDUBSW)
            saturate int16 pair sums and roughly double an INT8 model's error (TensorRT accumulates
            in int32, so parity against it must not count that error); with VNNI/AMX the default
            kernels accumulate in int32 and are faster, and so are they on a file with 7-bit weights
            (idle-calibrate --weight-bits 7), which cannot saturate them. True/False force one or the other.
        profile_prefix: write an ONNX Runtime profile (JSON, per-node timings) with this prefix;
            `close()` finishes it and `profile_file` names it.
        session_config: extra session config entries, over the runner's own (with threads > 1 the workers spin
            only while a Run is in flight, SPIN_WHILE_RUNNING; {"session.intra_op.allow_spinning": "0"} turns
            spinning off), to compare session settings (benchmarks/cpu_lineup.py does).
    """
    name = "ort"

    def __init__(self, onnx: Union[str, bytes, "onnx.ModelProto"], *, provider: str = "cpu",
                 threads: Optional[int] = None, selection: bool = False, optimization: str = "all",
                 profile_prefix: Optional[str] = None, exact_int8: Optional[bool] = None,
                 session_config: Optional[Dict[str, str]] = None):
        super().__init__()
        if provider not in PROVIDERS:
            raise UserError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}")
        self.source, self.provider, self.selection = onnx, provider, selection
        self.threads = default_threads(threads)
        self.optimization, self.profile_prefix = optimization, profile_prefix
        self.session_config = dict(session_config or {})
        self._int8_auto = exact_int8 is None
        if exact_int8 is None:
            self.exact_int8, self.int8_kernels_why = exact_int8_reason(cpu_features())
        else:
            self.exact_int8, self.int8_kernels_why = exact_int8, "forced by the caller"
        self.profile_file: Optional[str] = None
        self.session = None

    def _load(self) -> None:
        ort = import_onnxruntime()
        wanted = PROVIDERS[self.provider]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise UserError(f"this ONNX Runtime build has no {wanted[0]} (available: {', '.join(available)}): "
                            "pip install 'idlevit[gpu]' (onnxruntime-gpu) or use --provider cpu")
        providers = [p for p in wanted if p in available]
        self.session = self._session(ort, providers)
        if self._int8_auto and self.exact_int8 and self._weight_bits() <= 7:  # known only once the file is read
            self.exact_int8, self.int8_kernels_why = exact_int8_reason(cpu_features(), self._weight_bits())
            if self.profile_prefix:
                self.session.end_profiling()
            self.session = self._session(ort, providers)
        if self.provider == "cpu" and self._precision() == "int8":
            warn_inexact_int8_kernels(ort.__version__)
        self._inputs = {i.name: TensorInfo(_ORT_DTYPES.get(i.type, i.type), tuple(i.shape))
                        for i in self.session.get_inputs()}
        self._outputs = tuple(o.name for o in self.session.get_outputs())

    def _session_entries(self) -> Dict[str, str]:
        """The session config entries the runner sets: spinning only during Run with more than one thread, then
        the caller's."""
        return {**(SPIN_WHILE_RUNNING if self.threads > 1 else {}), **self.session_config}

    def _precision(self) -> str:
        return self.session.get_modelmeta().custom_metadata_map.get("precision", "fp32")

    def _weight_bits(self) -> int:
        """The int8 weight width idle-calibrate recorded (8 when the file says nothing)."""
        return int(self.session.get_modelmeta().custom_metadata_map.get("int8_weight_bits", 8))

    def _session(self, ort, providers):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        if self.optimization not in levels:
            raise UserError(f"unknown optimization level {self.optimization!r}: use one of {', '.join(levels)}")
        opts.graph_optimization_level = levels[self.optimization]
        opts.log_severity_level = 3
        if self.exact_int8:  # u8u8 instead of the saturating u8s8 kernels; no effect on float graphs
            opts.add_session_config_entry(X64_QUANT_PRECISION, "1")
        for key, value in self._session_entries().items():
            opts.add_session_config_entry(key, value)
        if self.profile_prefix:
            opts.enable_profiling = True
            opts.profile_file_prefix = self.profile_prefix
        try:
            return ort.InferenceSession(onnx_for_runtime(self.source, self.selection), opts, providers=providers)
        except UserError:
            raise
        except Exception as e:  # InvalidProtobuf, InvalidGraph, Fail: all mean a bad file here
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            where = self.source if isinstance(self.source, str) else "the ONNX model"
            raise UserError(f"ONNX Runtime cannot load {where} ({first[:160]}): "
                            "re-export it with idle-export") from None

    def _close(self) -> None:
        if self.session is not None and self.profile_prefix:
            self.profile_file = self.session.end_profiling()
        self.session = None

    def _infer(self, feed: Dict[str, Any]) -> Dict[str, np.ndarray]:
        feed = cast_feed(feed, self._inputs, list(self._inputs))
        return dict(zip(self._outputs, self.session.run(None, feed)))

    def prepare(self, feed) -> Dict[str, Any]:
        # cast once here so timing loops measure the session, not the dtype conversion
        return cast_feed(self._as_dict(feed), self.input_info)

    @property
    def input_info(self) -> Dict[str, TensorInfo]:
        if self.session is None:
            raise RuntimeError("ort runner is not loaded")
        return self._inputs

    def metadata_props(self) -> Dict[str, str]:
        if self.session is None:
            raise RuntimeError("ort runner is not loaded")
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def output_names(self) -> Tuple[str, ...]:
        if self.session is None:
            raise RuntimeError("ort runner is not loaded")
        return self._outputs

    def describe(self) -> Dict[str, Any]:
        ort = import_onnxruntime()
        return {"backend": self.name, "provider": self.provider, "onnxruntime": ort.__version__,
                "threads": self.threads, "optimization": self.optimization,
                **({"session_config": self._session_entries()} if self._session_entries() else {}),
                "int8_kernels": ("exact u8u8 (session.x64quantprecision)" if self.exact_int8 else "default u8s8")
                + f": {self.int8_kernels_why}",
                "providers": self.session.get_providers() if self.session is not None else None}
