"""The one runner protocol every backend speaks (load / infer / close, context manager), and its factory.

Modelled on Polygraphy's `BaseRunner`: parity and benchmark code take any `Runner` and never
branch on the backend. A backend implements `_load`, `_infer` and `_close` (and may override
`prepare` to stage inputs on its device ahead of timing). Add one with
`register_runner(name, "package.module:Class")`; `make_runner(name, ...)` then imports it
lazily (the TensorRT runner is registered as "trt", OpenVINO as "openvino").
"""
from __future__ import annotations

import abc
import importlib
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import UserError

Feed = Union[np.ndarray, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class TensorInfo:
    dtype: str                              # numpy dtype name, e.g. "float32"
    shape: Tuple[Union[int, str, None], ...]  # str/None for dynamic dims


class Runner(abc.ABC):
    """A loaded model that maps named numpy inputs to named numpy outputs.

    Use it as a context manager (`with make_runner("ort", onnx=path) as r: r.infer(x)`), or call
    `load()` / `close()`. `infer` takes a dict of arrays or, for one-input models, one array,
    and returns a dict of host numpy arrays (so a returned result is a finished result).
    Outputs named `topk_indices.<i>` carry the tokens idle block i selected (see
    `idlevit.export.selection_outputs`).
    """
    name = "runner"

    def __init__(self) -> None:
        self._loaded = False

    # --- what a backend implements -------------------------------------------------------
    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feed: Dict[str, Any]) -> Dict[str, np.ndarray]: ...

    def _close(self) -> None:
        pass

    @property
    @abc.abstractmethod
    def input_info(self) -> Dict[str, TensorInfo]: ...

    @property
    @abc.abstractmethod
    def output_names(self) -> Tuple[str, ...]: ...

    def describe(self) -> Dict[str, Any]:
        """How this runner executes (device, threads, versions): printed with every benchmark."""
        return {"backend": self.name}

    def prepare(self, feed: Feed) -> Dict[str, Any]:
        """Inputs in the backend's own form (e.g. already on the GPU); `infer` accepts the result."""
        return self._as_dict(feed)

    # --- the protocol --------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> "Runner":
        if not self._loaded:
            self._load()
            self._loaded = True
        return self

    def infer(self, feed: Feed) -> Dict[str, np.ndarray]:
        if not self._loaded:
            raise RuntimeError(f"{self.name} runner is not loaded: call load() or use it in a `with` block")
        return self._infer(self._as_dict(feed))

    def close(self) -> None:
        if self._loaded:
            self._close()
            self._loaded = False

    def __enter__(self) -> "Runner":
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def input_name(self) -> str:
        return next(iter(self.input_info))

    def _as_dict(self, feed: Feed) -> Dict[str, Any]:
        if isinstance(feed, Mapping):
            return dict(feed)
        return {self.input_name: feed}


# backend -> "module:Class"; imported only when asked for, so heavy backends stay optional
RUNNERS: Dict[str, str] = {
    "torch": "idlevit.runtime.torch_runner:TorchRunner",
    "ort": "idlevit.runtime.ort_runner:OrtRunner",
    "trt": "idlevit.runtime.trt_runner:TrtRunner",
    "openvino": "idlevit.runtime.openvino_runner:OpenVinoRunner",
}


def register_runner(backend: str, target: str) -> None:
    """Make `make_runner(backend, ...)` build `target` ("package.module:Class")."""
    RUNNERS[backend] = target


def make_runner(backend: str, **kwargs) -> Runner:
    """Build (not load) the runner for `backend` ("torch", "ort", or a registered one)."""
    if backend not in RUNNERS:
        raise UserError(f"unknown backend {backend!r}: use one of {', '.join(RUNNERS)}")
    module, cls = RUNNERS[backend].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def available_cpus() -> int:
    """CPUs this process may run on (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(threads: Optional[int]) -> int:
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads} must be at least 1")
    return threads or available_cpus()
