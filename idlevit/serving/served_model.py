"""What the python-backend model serves: a runner (or several) behind a keep ratio, one image batch per call.

- An elastic file (`idle-export --elastic`): one runner; any ratio its K ranges allow, per call.
- Fixed files: one runner per file, each at the keep ratio it was exported with; a request picks one.
Both offer a ladder of ratios (`ratios`, highest first) for the load-following controller.
"""
from __future__ import annotations

import sys

from typing import Dict, List, Optional

import numpy as np

from ..errors import UserError
from ..runtime.runner import Runner, make_runner

LADDER_STEP = 0.1


def ratio_ladder(lowest: float, step: float = LADDER_STEP) -> List[float]:
    """1.0, 1.0 - step, ... down to `lowest` (included), rounded to the step's digits."""
    ratios, n = [], 0
    while 1.0 - n * step >= lowest - 1e-9:
        ratios.append(round(1.0 - n * step, 6))
        n += 1
    if abs(ratios[-1] - lowest) > 1e-9:
        ratios.append(float(lowest))
    return ratios


class ServedModel:
    """Runners keyed by keep ratio; `infer(x, ratio)` runs the batch `x` at `ratio`.

    Args:
        runners: keep ratio -> runner of a file exported at that ratio; or, with `elastic`, one
            entry whose runner serves an elastic file.
        ladder: the ratios the controller may step through (an elastic file's; fixed files use theirs).
    """

    def __init__(self, runners: Dict[float, Runner], ladder: Optional[List[float]] = None):
        if not runners:
            raise UserError("nothing to serve: pass at least one file")
        self.runners = dict(sorted(runners.items(), reverse=True))
        self.ladder = sorted(ladder, reverse=True) if ladder else None

    @property
    def elastic(self) -> bool:
        return self.ladder is not None

    @property
    def ratios(self) -> List[float]:
        return self.ladder if self.elastic else list(self.runners)

    def check_ratio(self, ratio: float) -> float:
        """`ratio` if it can be served (an elastic file validates its K ranges), else one-line UserError."""
        if self.elastic:
            next(iter(self.runners.values())).keep_feed(keep_ratio=ratio)  # raises on an out-of-range K
            return ratio
        for r in self.runners:
            if abs(r - ratio) < 1e-6:
                return r
        raise UserError(f"keep ratio {ratio:g} is not served here (served: {', '.join(f'{r:g}' for r in self.ratios)}): "
                        "ask for one of those, or deploy an elastic file (idle-export --elastic)")

    @property
    def default_ratio(self) -> float:
        """An elastic file's own default (its export's --keep-ratio); for fixed files the highest."""
        return next(iter(self.runners)) if self.elastic else self.ratios[0]

    def nearest_ratio(self, ratio: float) -> float:
        """`ratio` on an elastic file; else the highest served ratio not above it (or the lowest)."""
        if self.elastic:
            return self.check_ratio(ratio)
        below = [r for r in self.ratios if r <= ratio + 1e-9]
        return below[0] if below else self.ratios[-1]

    def infer(self, x: np.ndarray, ratio: float) -> Dict[str, np.ndarray]:
        if self.elastic:
            return next(iter(self.runners.values())).infer(x, keep_ratio=ratio)
        return self.runners[self.check_ratio(ratio)].infer(x)

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()


def serve_files(files: Dict[str, str], runner: str = "ort", threads: Optional[int] = None,
                lowest_ratio: float = 0.5) -> ServedModel:
    """Load `files` (keep ratio text -> path; "" = take the ratio from the file) into a ServedModel.

    runner "auto" picks the CPU backend for the first file at batch 1 (runtime.auto_backend: measured once per
    CPU, file and thread count, then cached) and says what and why on stderr, which Triton logs.
    """
    options = {}
    if runner == "auto":
        from ..runtime.auto_backend import pick_backend
        choice = pick_backend(next(iter(files.values())), threads=threads, batch=1)
        print(choice.describe(), file=sys.stderr, flush=True)
        runner = choice.picked.backend
        options = {"precision": "bf16"} if choice.picked.precision == "bf16" else {}
    runners = {}
    for ratio_text, path in files.items():
        r = (make_runner("trt", engine=path) if runner == "trt"
             else make_runner(runner, onnx=path, threads=threads, **options))
        r.load()
        if r.elastic is not None:
            if len(files) > 1:
                raise UserError("an elastic file serves every keep ratio: serve it alone")
            low = max(lowest_ratio, r.elastic.lowest_ratio() or 1.0)
            return ServedModel({r.elastic.default_ratio: r}, ladder=ratio_ladder(low))
        runners[float(ratio_text) if ratio_text else _file_ratio(r)] = r
    return ServedModel(runners)


def _file_ratio(runner: Runner) -> float:
    """A fixed file's keep ratio from its metadata (1.0 when it has none: a plain backbone)."""
    value = runner.metadata_props().get("keep_ratio")
    return float(value) if value not in (None, "", "null") else 1.0
