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
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import UserError

Feed = Union[np.ndarray, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class TensorInfo:
    dtype: str                              # numpy dtype name, e.g. "float32"
    shape: Tuple[Union[int, str, None], ...]  # str/None for dynamic dims


def cast_feed(feed: Mapping[str, Any], inputs: Mapping[str, TensorInfo],
              names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """`feed[name]` as a contiguous array of the input's dtype, for each of `names` (default: every key of
    `feed`): what ONNX Runtime and OpenVINO take without a conversion of their own."""
    return {name: np.ascontiguousarray(feed[name], dtype=inputs[name].dtype) for name in (names or feed)}

class Runner(abc.ABC):
    """A loaded model that maps named numpy inputs to named numpy outputs.

    Use it as a context manager (`with make_runner("ort", onnx=path) as r: r.infer(x)`), or call
    `load()` / `close()`. `infer` takes a dict of arrays or, for one-input models, one array,
    and returns a dict of host numpy arrays (so a returned result is a finished result).
    Outputs named `topk_indices.<i>` carry the tokens idle block i selected (see
    `idlevit.onnx_file.selection_outputs`).

    Elastic files (`idle-export --elastic`) take the keep ratio per call:
    `infer(x, keep_ratio=0.6)` or `infer(x, keep_tokens=(137, 96, 67))` (K per idle stage), or
    `set_keep_ratio(0.6)` once for every later call (and `prepare`). The runner builds the
    `keep_tokens.<s>` inputs itself and rejects an out-of-range ratio or K (UserError, one
    line) before anything runs. A backend only supplies the file's metadata (`metadata_props`).
    """
    name = "runner"

    def __init__(self) -> None:
        self._loaded = False
        self._elastic = None          # ElasticKeep once looked up (False: not elastic)
        self._keep_feed: Optional[Dict[str, np.ndarray]] = None   # set_keep_ratio's inputs
        self._keep_choice: Tuple[Optional[float], Optional[Sequence[int]]] = (None, None)

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

    def metadata_props(self) -> Dict[str, str]:
        """The model file's idlevit metadata (ONNX metadata_props); elastic runners need it for K's range."""
        return {}

    def _find_elastic(self):
        """ElasticKeep of the loaded model, or None when it takes no keep inputs."""
        from ..onnx_file.elastic import ElasticKeep, is_keep_input
        from ..onnx_file.metadata import ExportMetadata
        if not any(is_keep_input(name) for name in self.input_info):
            return None
        where = f"the {self.name} model"
        return ElasticKeep.from_metadata(ExportMetadata.from_props(self.metadata_props(), where), where)

    # --- the protocol --------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> "Runner":
        if not self._loaded:
            self._load()
            self._loaded = True
            if self._keep_choice != (None, None):
                try:
                    self.set_keep_ratio(*self._keep_choice[:1], keep_tokens=self._keep_choice[1])
                except Exception:
                    self.close()
                    raise
        return self

    def infer(self, feed: Feed, *, keep_ratio: Optional[float] = None,
              keep_tokens: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """Outputs for `feed`; on an elastic model `keep_ratio` or `keep_tokens` (K per idle stage) picks K."""
        if not self._loaded:
            raise RuntimeError(f"{self.name} runner is not loaded: call load() or use it in a `with` block")
        keep = self.keep_feed(keep_ratio, keep_tokens) if keep_ratio is not None or keep_tokens is not None else None
        return self._infer(self._as_dict(feed, keep))

    def close(self) -> None:
        if self._loaded:
            self._close()
            self._loaded = False
            self._elastic, self._keep_feed = None, None

    # --- elastic keep ratio --------------------------------------------------------------
    @property
    def elastic(self):
        """ElasticKeep (K range, default ratio) when the loaded model takes K per call, else None."""
        if not self._loaded:
            raise RuntimeError(f"{self.name} runner is not loaded: call load() or use it in a `with` block")
        if self._elastic is None:
            self._elastic = self._find_elastic() or False
        return self._elastic or None

    def keep_feed(self, keep_ratio: Optional[float] = None,
                  keep_tokens: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """The keep inputs for a ratio or per-stage K (validated); UserError on a model that is not elastic."""
        spec = self.elastic
        if spec is None:
            raise UserError(f"this {self.name} model has a fixed keep ratio (no keep_tokens inputs): export it "
                            "with idle-export --elastic to choose the ratio per call, or drop --keep-ratio")
        return spec.feed(keep_ratio, keep_tokens)

    def set_keep_ratio(self, keep_ratio: Optional[float] = None, *,
                       keep_tokens: Optional[Sequence[int]] = None) -> "Runner":
        """Use this ratio (or K per stage) for every later call that names none; None/None resets to the default.

        Before `load()` the choice is kept and checked when the model loads.
        """
        self._keep_choice = (keep_ratio, keep_tokens)
        if self._loaded:
            self._keep_feed = (self.keep_feed(keep_ratio, keep_tokens)
                               if keep_ratio is not None or keep_tokens is not None else None)
        return self

    def __enter__(self) -> "Runner":
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def input_name(self) -> str:
        """The image input (the first one; keep inputs of an elastic file come after it)."""
        return next(iter(self.input_info))

    def _as_dict(self, feed: Feed, keep: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, Any]:
        """Named inputs; an elastic model's keep inputs come from `keep`, set_keep_ratio, or the default ratio."""
        feed = dict(feed) if isinstance(feed, Mapping) else {self.input_name: feed}
        if keep is not None:
            feed.update(keep)
        else:
            for name, value in self._standing_keep_feed().items():
                feed.setdefault(name, value)
        return feed

    def _standing_keep_feed(self) -> Mapping[str, np.ndarray]:
        if self._keep_feed is None and self._loaded and any(n in self.input_info for n in _keep_names()):
            self._keep_feed = self.keep_feed()  # the file's default ratio
        return self._keep_feed or {}


def _keep_names() -> Tuple[str, ...]:
    from ..onnx_file.elastic import KEEP_INPUT_NAMES
    return KEEP_INPUT_NAMES


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
