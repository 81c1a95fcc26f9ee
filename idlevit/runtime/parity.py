"""Backend-vs-reference parity: logit error, cosine, top-1/top-5 agreement and selection agreement, per precision.

Plain numpy rather than Polygraphy's comparator: `CompareFunc.simple` checks elementwise
atol/rtol per output, but not cosine, top-k agreement or the set overlap of selected tokens,
and it needs Polygraphy runners; the elementwise check here is the same `|a-b| <= atol + rtol*|b|`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Dict, Iterable, List, Optional

import numpy as np
from tqdm import tqdm

from ..onnx_file.selection_outputs import SELECTION_PREFIX
from .runner import Runner

LOGITS = "logits"


@dataclass(frozen=True)
class Thresholds:
    """Pass limits; None = reported, not checked."""
    atol: Optional[float] = None          # elementwise |a-b| <= atol + rtol*|ref| on the logits
    rtol: float = 0.0
    min_cosine: Optional[float] = None    # mean per-sample cosine similarity of the logits
    min_top1: Optional[float] = None      # fraction of samples with the same argmax
    min_top5: Optional[float] = None      # mean overlap of the top-5 sets
    min_selection: Optional[float] = None  # worst idle block's mean overlap of selected tokens


# docs/design.md §3.3: fp32 ONNX max-abs <= 1e-4 and 100 % top-1; fp16 cosine >= 0.999 and top-1 >= 99 %;
# int8 cosine >= 0.99 and top-1 >= 97 %.
PRECISION_THRESHOLDS = {
    "fp32": Thresholds(atol=1e-4, min_top1=1.0),
    "fp16": Thresholds(min_cosine=0.999, min_top1=0.99),
    "int8": Thresholds(min_cosine=0.99, min_top1=0.97),
}
PRECISION_THRESHOLDS["bf16"] = PRECISION_THRESHOLDS["fp16"]  # OpenVINO's bf16: a 16-bit float like fp16


def thresholds_for(precision: str, **overrides) -> Thresholds:
    """The design limits (docs/design.md §3.3) for `precision`, with any non-None override (atol, rtol, min_cosine, ...) applied."""
    if precision not in PRECISION_THRESHOLDS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISION_THRESHOLDS)}")
    return replace(PRECISION_THRESHOLDS[precision], **{k: v for k, v in overrides.items() if v is not None})


def check_precision_matches(onnx_path: str, precision: str) -> None:
    """The precision whose limits apply must be what the file computes in: int8 limits on an fp32 file would pass
    a broken export."""
    from ..errors import UserError
    from ..onnx_file.info import onnx_precision
    from ..onnx_file.io import load_onnx
    actual = onnx_precision(load_onnx(onnx_path, load_external_data=False))
    if actual != precision:
        raise UserError(f"--precision {precision} contradicts {onnx_path}, which computes in {actual}: drop "
                        f"--precision (the file's own {actual} limits apply) or pass the {precision} file")


@dataclass
class Check:
    name: str
    value: float
    limit: float
    passed: bool


@dataclass
class ParityReport:
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float
    cosine_mean: float
    cosine_min: float
    top1_agreement: float
    top5_overlap: float
    allclose: bool                                 # every logit within atol + rtol*|ref| (True when atol is None)
    selection_per_block: List[float] = field(default_factory=list)   # empty when the backend reports none
    # the reference's top-1 minus top-2 logit over its per-sample logit std: how near a tie each
    # prediction is. Flips at small margins are rounding noise; flips at large ones are a broken model.
    margin_median: float = float("nan")
    flip_margins: List[float] = field(default_factory=list)         # of the samples whose top-1 changed
    thresholds: Thresholds = field(default_factory=Thresholds)
    checks: List[Check] = field(default_factory=list)

    @property
    def selection_agreement(self) -> Optional[float]:
        return min(self.selection_per_block) if self.selection_per_block else None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict:
        out = asdict(self)
        out["selection_agreement"] = self.selection_agreement
        out["passed"] = self.passed
        return out

    def rows(self) -> List[List[str]]:
        """(metric, value, limit, verdict) rows for a human table."""
        limits = {c.name: c for c in self.checks}

        def row(name, value, fmt):
            c = limits.get(name)
            return [name, format(value, fmt), format(c.limit, "g") if c else "-",
                    ("pass" if c.passed else "FAIL") if c else "-"]
        rows = [row("max abs diff", self.max_abs_diff, ".2e"), row("mean abs diff", self.mean_abs_diff, ".2e"),
                row("cosine (mean)", self.cosine_mean, ".6f"), row("cosine (min)", self.cosine_min, ".6f"),
                row("top-1 agreement", self.top1_agreement, ".4f"), row("top-5 overlap", self.top5_overlap, ".4f")]
        if self.flip_margins:
            rows.append(["top-1 flips: reference margin / logit std",
                         f"{len(self.flip_margins)} flip{'s' * (len(self.flip_margins) > 1)} at <= {max(self.flip_margins):.3f} "
                         f"(all samples: median {self.margin_median:.3f})", "-", "-"])
        if self.selection_per_block:
            rows.append(row("selection agreement (worst block)", self.selection_agreement, ".4f"))
            rows.append(["selection per idle block", " ".join(f"{s:.3f}" for s in self.selection_per_block),
                         "-", "-"])
        return rows


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(den > 0, num / np.maximum(den, 1e-30), (np.abs(a - b).max(-1) == 0).astype(np.float64))


def _topk_sets(x: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-x, axis=-1, kind="stable")[:, :k]


def top1_margin(logits: np.ndarray) -> np.ndarray:
    """Per row, (largest - second largest logit) / std of the row's logits (0 for one class)."""
    if logits.shape[-1] < 2:
        return np.zeros(logits.shape[:-1])
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) / np.maximum(logits.std(-1), 1e-12)


def set_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, |set(a) & set(b)| / width: order does not matter (ties may be ordered differently)."""
    return np.array([len(np.intersect1d(x, y)) / max(len(y), 1) for x, y in zip(a, b)])


class ParityAccumulator:
    """Collects batch after batch of (candidate, reference) outputs; `report()` gives the totals."""

    def __init__(self, thresholds: Thresholds):
        self.thresholds = thresholds
        self.abs_max = 0.0
        self.abs_sum = 0.0
        self.rel_max = 0.0
        self.count = 0
        self.allclose = True
        self.cos: List[np.ndarray] = []
        self.top1: List[np.ndarray] = []
        self.top5: List[np.ndarray] = []
        self.margins: List[np.ndarray] = []
        self.selection: Dict[str, List[np.ndarray]] = {}

    def update(self, out: Dict[str, np.ndarray], ref: Dict[str, np.ndarray]) -> None:
        a, b = out[LOGITS].astype(np.float64), ref[LOGITS].astype(np.float64)
        if a.shape != b.shape:
            raise ValueError(f"logits shape {a.shape} differs from the reference's {b.shape}")
        diff = np.abs(a - b)
        t = self.thresholds
        self.abs_max = max(self.abs_max, float(diff.max()))
        self.abs_sum += float(diff.sum())
        self.count += diff.size
        self.rel_max = max(self.rel_max, float((diff / np.maximum(np.abs(b), 1e-12)).max()))
        if t.atol is not None:
            self.allclose &= bool((diff <= t.atol + t.rtol * np.abs(b)).all())
        self.cos.append(_cosine(a, b))
        self.top1.append(a.argmax(-1) == b.argmax(-1))
        self.margins.append(top1_margin(b))
        k = min(5, a.shape[-1])
        self.top5.append(set_overlap(_topk_sets(a, k), _topk_sets(b, k)))
        for name in sorted(set(out) & set(ref)):
            if name.startswith(SELECTION_PREFIX):
                self.selection.setdefault(name, []).append(set_overlap(out[name], ref[name]))

    def report(self) -> ParityReport:
        if not self.top1:
            raise ValueError("no batches compared")
        cos = np.concatenate(self.cos)
        same, margins = np.concatenate(self.top1), np.concatenate(self.margins)
        blocks = sorted(self.selection, key=lambda n: int(n[len(SELECTION_PREFIX):]))
        rep = ParityReport(
            samples=int(sum(len(t) for t in self.top1)), max_abs_diff=self.abs_max,
            mean_abs_diff=self.abs_sum / max(self.count, 1), max_rel_diff=self.rel_max,
            cosine_mean=float(cos.mean()), cosine_min=float(cos.min()),
            top1_agreement=float(same.mean()),
            top5_overlap=float(np.concatenate(self.top5).mean()), allclose=self.allclose,
            selection_per_block=[float(np.concatenate(self.selection[n]).mean()) for n in blocks],
            margin_median=float(np.median(margins)), flip_margins=[float(m) for m in margins[~same]],
            thresholds=self.thresholds)
        t = self.thresholds
        if t.atol is not None:  # with rtol > 0 the check is elementwise atol + rtol*|ref|
            rep.checks.append(Check("max abs diff", rep.max_abs_diff, t.atol, rep.allclose))
        for name, value, limit in (("cosine (mean)", rep.cosine_mean, t.min_cosine),
                                   ("top-1 agreement", rep.top1_agreement, t.min_top1),
                                   ("top-5 overlap", rep.top5_overlap, t.min_top5),
                                   ("selection agreement (worst block)", rep.selection_agreement, t.min_selection)):
            if limit is not None:
                rep.checks.append(Check(name, float("nan") if value is None else value, limit,
                                        value is not None and value >= limit))
        return rep


def compare_runners(candidate: Runner, reference: Runner, batches: Iterable[np.ndarray], thresholds: Thresholds,
                    progress: bool = False, keep_ratio: Optional[float] = None) -> ParityReport:
    """Run both (loaded) runners on every batch and compare the candidate against the reference.

    `keep_ratio` (elastic models) runs both at that ratio instead of their default."""
    acc = ParityAccumulator(thresholds)
    items = list(batches)
    for x in tqdm(items, desc=f"parity {candidate.name} vs {reference.name}", unit="batch", disable=not progress,
                  leave=False):
        acc.update(candidate.infer(x, keep_ratio=keep_ratio), reference.infer(x, keep_ratio=keep_ratio))
    return acc.report()
