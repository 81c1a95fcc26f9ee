"""What the python-backend model serves: runners behind a keep ratio, one image batch per call.

Fixed files: one runner per file, each at the keep ratio it was exported with (a request picks one of
them). The ratio a caller asks for must be one the files have; `nearest_ratio` maps a controller's
choice onto them.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..errors import UserError
from ..runtime.runner import Runner, make_runner


class ServedModel:
    """Runners keyed by keep ratio; `infer(x, ratio)` runs the batch `x` at `ratio`.

    Args:
        runners: keep ratio -> loaded-on-demand runner for a file exported at that ratio.
    """

    def __init__(self, runners: Dict[float, Runner]):
        if not runners:
            raise UserError("nothing to serve: pass at least one file")
        self.runners = dict(sorted(runners.items(), reverse=True))

    @property
    def ratios(self) -> List[float]:
        return list(self.runners)

    def check_ratio(self, ratio: float) -> float:
        for r in self.runners:
            if abs(r - ratio) < 1e-6:
                return r
        raise UserError(f"keep ratio {ratio:g} is not served here (served: {', '.join(f'{r:g}' for r in self.ratios)}): "
                        "ask for one of those, or deploy an elastic file or a file exported at that ratio")

    def nearest_ratio(self, ratio: float) -> float:
        """The highest served ratio not above `ratio` (the lowest one if all are above)."""
        below = [r for r in self.ratios if r <= ratio + 1e-9]
        return below[0] if below else self.ratios[-1]

    def load(self) -> "ServedModel":
        for runner in self.runners.values():
            runner.load()
        return self

    def infer(self, x: np.ndarray, ratio: float) -> Dict[str, np.ndarray]:
        return self.runners[self.check_ratio(ratio)].infer(x)

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()


def serve_files(files: Dict[str, str], runner: str = "ort", threads: Optional[int] = None,
                keep_ratio_of=None) -> ServedModel:
    """A ServedModel for `files` (keep ratio text -> path; "" = the file's own ratio from its metadata)."""
    runners = {}
    for ratio_text, path in files.items():
        if runner == "trt":
            r = make_runner("trt", engine=path)
        else:
            r = make_runner(runner, onnx=path, threads=threads)
        ratio = float(ratio_text) if ratio_text else keep_ratio_of(path)
        runners[ratio] = r
    return ServedModel(runners)
