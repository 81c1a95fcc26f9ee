"""`--backend auto`: the fastest CPU backend (and precision) for one model file on this CPU, at a thread count.

Which runtime is fastest depends on the CPU (AVX2 or AVX-512, VNNI/AMX for int8, native bf16), on the
thread count and on the batch: ONNX Runtime won at batch 16 on a 2-core AVX2 EPYC, OpenVINO at batch 1
with both cores. So the choice is measured, never assumed: every candidate that this install can run is
checked against ONNX Runtime on the same file (the runtime idle-export checks against PyTorch) with the
limits of its precision, and the ones that pass are timed briefly with calls interleaved. The result is
cached per CPU, file content, thread count and batch (under the user's cache dir, written atomically), so
a second call picks without measuring.

`choose` is the deterministic part (timings in, a choice and its reason out) and is what the tests check.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserError
from .cpu_features import CpuFeatures, cpu_features
from .runner import default_threads

CACHE_VERSION = 1
# a candidate must be this much faster than ONNX Runtime (the default backend) to be picked over it: below it,
# the timings cannot tell them apart on a short run and the default is the safer choice
MIN_GAIN = 0.03


@dataclass(frozen=True)
class Candidate:
    """One way to run the file: a runner backend and the precision it computes in."""
    backend: str      # "ort" or "openvino"
    precision: str    # parity precision: the file's ("fp32", "int8") or OpenVINO's "bf16"

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass
class Measured:
    """A candidate's median latency (None: not timed because parity failed) and its parity verdict."""
    candidate: Candidate
    median_ms: Optional[float]
    parity_passed: bool
    parity_note: str

    def to_json(self) -> dict:
        return {"backend": self.candidate.backend, "precision": self.candidate.precision,
                "median_ms": self.median_ms, "parity_passed": self.parity_passed, "parity": self.parity_note}

    @classmethod
    def from_json(cls, d: dict) -> "Measured":
        return cls(Candidate(d["backend"], d["precision"]), d["median_ms"], d["parity_passed"], d["parity"])


@dataclass
class Choice:
    """The picked candidate, why, and everything that was measured (or read from the cache)."""
    picked: Candidate
    why: str
    measured: List[Measured]
    cached: Optional[str] = None   # the cache file it came from, None when measured now

    def describe(self) -> str:
        where = f"cached measurement {self.cached}" if self.cached else "measured now"
        return f"--backend auto picked {self.picked.label}: {self.why} ({where})"

    def to_json(self) -> dict:
        return {"picked": asdict(self.picked), "why": self.why, "cached": self.cached,
                "measured": [m.to_json() for m in self.measured]}


def choose(measured: Sequence[Measured], default: str = "ort", min_gain: float = MIN_GAIN) -> Choice:
    """The fastest candidate that passed parity; the default backend unless another is > `min_gain` faster.

    Raises UserError when no candidate passed parity.
    """
    passing = [m for m in measured if m.parity_passed and m.median_ms is not None]
    if not passing:
        failed = "; ".join(f"{m.candidate.label}: {m.parity_note}" for m in measured) or "no candidates"
        raise UserError(f"--backend auto found no backend that passes parity ({failed}): "
                        "pick one with --backend ort or --backend openvino and check its parity report")
    fastest = min(passing, key=lambda m: m.median_ms)
    defaults = [m for m in passing if m.candidate.backend == default]
    safe = min(defaults, key=lambda m: m.median_ms) if defaults else None
    pick = fastest
    if safe is not None and safe is not fastest and safe.median_ms <= fastest.median_ms * (1 + min_gain):
        pick = safe
    others = ", ".join(f"{m.candidate.label} {m.median_ms:.1f} ms" for m in passing if m is not pick)
    failed = [m for m in measured if not m.parity_passed]
    why = f"median {pick.median_ms:.1f} ms per call"
    if pick is not fastest:
        why += f", within {min_gain:.0%} of the fastest ({fastest.candidate.label} {fastest.median_ms:.1f} ms)"
    why += f" against {others}" if others else " (the only candidate that ran)"
    if failed:
        why += "; failed parity: " + ", ".join(f"{m.candidate.label} ({m.parity_note})" for m in failed)
    return Choice(pick.candidate, why, list(measured))


def candidates(precision: str, cpu: CpuFeatures, have_openvino: bool) -> List[Candidate]:
    """What can run a file of `precision` here: ONNX Runtime always; OpenVINO f32 (its INT8 for a Q/DQ file)
    when installed, and OpenVINO bf16 for an fp32 file only on CPUs with native bf16 (without it
    OpenVINO emulates bf16, tens of times slower)."""
    out = [Candidate("ort", precision)]
    if have_openvino:
        out.append(Candidate("openvino", precision))
        if precision == "fp32" and cpu.bf16:
            out.append(Candidate("openvino", "bf16"))
    return out


def cache_dir() -> str:
    """$IDLEVIT_CACHE_DIR, else $XDG_CACHE_HOME/idlevit, else ~/.cache/idlevit."""
    root = os.environ.get("IDLEVIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "idlevit")
    return os.path.join(root, "backend-auto")


def cache_key(cpu: CpuFeatures, file_sha256: str, threads: int, batch: int, versions: Dict[str, str]) -> str:
    """One hex key per CPU (model and flags), file content, thread count, batch and runtime versions."""
    parts = [str(CACHE_VERSION), cpu.model, cpu.machine, " ".join(sorted(cpu.flags or ())), file_sha256,
             str(threads), str(batch), json.dumps(versions, sort_keys=True)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def read_cached(path: str) -> Optional[List[Measured]]:
    """The measurements in a cache file, or None when it is absent or unreadable (then it is measured again)."""
    try:
        with open(path) as f:
            data = json.load(f)
        if data.get("version") != CACHE_VERSION:
            return None
        return [Measured.from_json(d) for d in data["measured"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(path: str, measured: Sequence[Measured], context: dict) -> None:
    """Write atomically; a cache that cannot be written only costs a measurement next time."""
    from ..fileio import atomic_output
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_output(path, suffix=".json") as tmp:
            with open(tmp, "w") as f:
                json.dump({"version": CACHE_VERSION, **context, "measured": [m.to_json() for m in measured]}, f,
                          indent=1)
    except (OSError, UserError) as e:
        print(f"warning: --backend auto could not cache its measurement in {path} ({e})", file=sys.stderr)


def _versions(have_openvino: bool) -> Dict[str, str]:
    import onnxruntime
    versions = {"onnxruntime": onnxruntime.__version__}
    if have_openvino:
        import openvino
        versions["openvino"] = openvino.get_version().split("-")[0]
    return versions


def openvino_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("openvino") is not None


def measure(onnx_path: str, precision: str, cands: Sequence[Candidate], *, threads: int, batch: int,
            make: Callable[[Candidate, bool], object], parity_inputs: np.ndarray, iters: int = 6,
            warmup: int = 1) -> List[Measured]:
    """Parity of each candidate against ONNX Runtime on the same file, then the passing ones timed interleaved.

    `make(candidate, selection)` builds an unloaded runner.
    """
    from .bench import time_rounds
    from .inputs import batched
    from .parity import compare_runners, thresholds_for
    verdicts: Dict[Candidate, tuple] = {}
    reference = Candidate("ort", precision)
    for c in cands:
        if c == reference:
            verdicts[c] = (True, "the reference")
            continue
        with make(c, True) as cand, make(reference, True) as ref:
            rep = compare_runners(cand, ref, batched(parity_inputs, 4), thresholds_for(c.precision))
        note = (f"max abs {rep.max_abs_diff:.1e}, cos {rep.cosine_mean:.6f}, top-1 {rep.top1_agreement:.3f}"
                + (f", selection {rep.selection_agreement:.3f}" if rep.selection_agreement is not None else ""))
        verdicts[c] = (rep.passed, note + (": pass" if rep.passed else ": FAIL"))
    timed = [c for c in cands if verdicts[c][0]]
    runners = {}
    try:
        for c in timed:
            runners[c.label] = make(c, False).load()
        feed = np.random.default_rng(0).standard_normal((batch,) + parity_inputs.shape[1:], dtype=np.float32)
        timings = time_rounds(runners, feed, warmup=warmup, iters=iters, rounds=iters) if runners else {}
    finally:
        for r in runners.values():
            r.close()
    return [Measured(c, timings[c.label].percentile(50) if c.label in timings else None, *verdicts[c])
            for c in cands]


def pick_backend(onnx_path: str, *, threads: Optional[int] = None, batch: int = 1, refresh: bool = False,
                 iters: int = 6, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Choice:
    """The backend and precision to run `onnx_path` with on this CPU (measured, or read from the cache)."""
    from ..fileio import file_sha256
    from ..onnx_file.info import onnx_precision
    from ..onnx_file.io import load_onnx
    from .runner import make_runner
    threads = default_threads(threads)
    cpu = cpu_features()
    have_ov = openvino_installed()
    model = load_onnx(onnx_path, load_external_data=False)
    precision = onnx_precision(model)
    if precision not in ("fp32", "int8"):
        return Choice(Candidate("ort", precision), f"a {precision} file runs on ONNX Runtime only", [])
    cands = candidates(precision, cpu, have_ov)
    if len(cands) == 1:
        return Choice(cands[0], "OpenVINO is not installed (pip install 'idlevit[openvino]'): ONNX Runtime is "
                                "the only CPU backend", [])
    key = cache_key(cpu, file_sha256(onnx_path), threads, batch, _versions(have_ov))
    path = os.path.join(cache_dir(), key + ".json")
    measured = None if refresh else read_cached(path)
    if measured is not None and {m.candidate for m in measured} == set(cands):
        choice = choose(measured)
        choice.cached = path
        return choice
    img = _image_size(model)

    def make(c: Candidate, selection: bool):
        if c.backend == "openvino":
            return make_runner("openvino", onnx=onnx_path, threads=threads, selection=selection,
                               precision="bf16" if c.precision == "bf16" else "f32")
        return make_runner("ort", onnx=onnx_path, threads=threads, selection=selection)

    log(f"--backend auto: checking and timing {', '.join(c.label for c in cands)} on {onnx_path} "
        f"(batch {batch}, {threads} thread(s), {iters} calls each)...")
    measured = measure(onnx_path, precision, cands, threads=threads, batch=batch, make=make,
                       parity_inputs=_parity_photos(model, img), iters=iters)
    write_cached(path, measured, {"cpu": cpu.summary(), "file": os.path.abspath(onnx_path), "threads": threads,
                                  "batch": batch})
    return choose(measured)


def _parity_photos(model, img: int) -> np.ndarray:
    """The bundled photographs through the file's eval transform (real images: random weights make near-ties of
    random inputs' logits), and 4 seeded random inputs; only random ones when the file has no metadata."""
    from .inputs import photos_array, random_inputs
    noise = random_inputs(4, img)
    try:
        from ..images import eval_transform
        from ..onnx_file.metadata import ExportMetadata, props_of
        meta = ExportMetadata.from_props(props_of(model), "the model file")
        return np.concatenate([photos_array(eval_transform(meta.data_config)), noise])
    except UserError:
        return noise


def _image_size(model) -> int:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[-1].dim_value) or 224


__all__ = ["Candidate", "Choice", "Measured", "cache_dir", "cache_key", "candidates", "choose", "measure",
           "pick_backend"]
