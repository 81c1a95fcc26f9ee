"""Constant folding and dead-node removal: onnxslim or Polygraphy (sanitize --fold-constants), measured side by side."""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:   # only in annotations: idle-export --help reads SIMPLIFIERS without loading onnx or numpy
    import numpy as np
    import onnx

SIMPLIFIERS = ("onnxslim", "polygraphy", "auto", "none")
# onnxslim gave the smaller graph on every IdleViT export we measured (docs/results.md, "Constant folding")
DEFAULT_SIMPLIFIER = "onnxslim"


class SimplifyError(RuntimeError):
    """A simplifier changed what the graph computes."""


@dataclass
class SimplifyResult:
    method: str
    nodes: int
    bytes: int
    seconds: float
    max_abs_diff: Optional[float] = None     # vs the unsimplified graph on the probe input (ONNX Runtime)
    equivalent: Optional[bool] = None


@dataclass
class SimplifyReport:
    chosen: str
    nodes_before: int
    bytes_before: int
    candidates: List[SimplifyResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"chosen": self.chosen, "nodes_before": self.nodes_before, "bytes_before": self.bytes_before,
                "candidates": [asdict(c) for c in self.candidates]}

    def summary(self) -> str:
        parts = [f"{c.method}: {self.nodes_before} -> {c.nodes} nodes, {c.bytes / 1e6:.1f} MB"
                 + (f", max abs diff {c.max_abs_diff:.1e}" if c.max_abs_diff is not None else "")
                 for c in self.candidates]
        return f"simplified with {self.chosen} ({'; '.join(parts) or 'no simplification'})"


def slim_with_onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim: constant folding, dead-node elimination, shape-op folding, common-subexpression merge."""
    from ..optional_deps import require
    onnxslim = require("onnxslim")
    return onnxslim.slim(copy.deepcopy(model))


def fold_with_polygraphy(model: onnx.ModelProto) -> onnx.ModelProto:
    """Polygraphy's `surgeon sanitize --fold-constants`: fold until nothing changes, then clean up."""
    from ..optional_deps import require
    require("onnx_graphsurgeon")
    from polygraphy.backend.onnx import fold_constants
    from polygraphy.logger import G_LOGGER
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        return fold_constants(copy.deepcopy(model), num_passes=None)


SIMPLIFY_FUNCS: Dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "onnxslim": slim_with_onnxslim,
    "polygraphy": fold_with_polygraphy,
}


def _run_ort(model: onnx.ModelProto, probe: np.ndarray) -> np.ndarray:
    from ..optional_deps import require
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: probe})[0]


def simplify_onnx(model: onnx.ModelProto, method: str = DEFAULT_SIMPLIFIER, probe: Optional[np.ndarray] = None,
                  atol: float = 1e-5) -> Tuple[onnx.ModelProto, SimplifyReport]:
    """Simplify `model` with `method` ("onnxslim", "polygraphy", "auto" = both, keep the smaller, or "none").

    With a `probe` input, each candidate runs on ONNX Runtime against the unsimplified graph and
    must agree within `atol`; "auto" keeps the equivalent candidate with the fewest nodes
    (then the fewest bytes). Raises SimplifyError when no candidate is equivalent.
    """
    import numpy as np
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown simplifier {method!r}: use one of {', '.join(SIMPLIFIERS)}")
    report = SimplifyReport("none", len(model.graph.node), model.ByteSize())
    if method == "none":
        return model, report
    reference = _run_ort(model, probe) if probe is not None else None
    results = []
    for name in (("onnxslim", "polygraphy") if method == "auto" else (method,)):
        start = time.perf_counter()
        simplified = SIMPLIFY_FUNCS[name](model)
        # the same ops and opset: keep the exporter's IR version, not the one the simplifier's onnx writes
        # (onnx 1.19 writes IR 12, which ONNX Runtime 1.23 cannot load)
        simplified.ir_version = min(simplified.ir_version, model.ir_version)
        result = SimplifyResult(name, len(simplified.graph.node), simplified.ByteSize(), time.perf_counter() - start)
        if reference is not None:
            result.max_abs_diff = float(np.abs(_run_ort(simplified, probe) - reference).max())
            result.equivalent = result.max_abs_diff <= atol
        report.candidates.append(result)
        results.append((result, simplified))
    good = [(r, m) for r, m in results if r.equivalent is not False]
    if not good:
        raise SimplifyError(f"{' and '.join(r.method for r, _ in results)} changed the outputs "
                            f"(max abs diff {min(r.max_abs_diff for r, _ in results):.2e} > {atol:g}): "
                            "export with --simplify none")
    best, simplified = min(good, key=lambda rm: (rm[0].nodes, rm[0].bytes))
    report.chosen = best.method
    return simplified, report
