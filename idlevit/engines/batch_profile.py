"""Optimization profiles of an engine: min/opt/max batch over a fixed image shape, and for an elastic
ONNX the min/opt/max length of each keep input (one profile per keep-ratio range)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import UserError

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes of one TensorRT optimization profile (batch is the only dynamic axis)."""
    min: int = 1
    opt: int = 32
    max: int = 128

    def __post_init__(self):
        if not 1 <= self.min <= self.opt <= self.max:
            raise UserError(f"batch profile min={self.min} opt={self.opt} max={self.max} is not ordered: "
                            "pass --min-batch <= --opt-batch <= --max-batch, all >= 1")

    def shapes(self, input_shape: Sequence) -> Tuple[Shape, Shape, Shape]:
        """(min, opt, max) shapes: `input_shape` with its batch axis replaced; other axes must be fixed."""
        rest = list(input_shape[1:])
        if any(not isinstance(d, int) or d <= 0 for d in rest):
            raise UserError(f"input shape {list(input_shape)} has a dynamic axis besides batch: "
                            "re-export the ONNX with a fixed image size (idle-export --img-size)")
        return tuple((b, *rest) for b in (self.min, self.opt, self.max))

    def contains(self, batch: int) -> bool:
        return self.min <= batch <= self.max


def profile_to_json(name: str, shapes: Tuple[Shape, Shape, Shape]) -> Dict[str, Dict[str, List[int]]]:
    return {name: {"min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2])}}


@dataclass(frozen=True)
class KeepRange:
    """Keep ratios one profile of an elastic engine covers: K of stage s spans K_s(min)..K_s(max), tuned at opt."""
    min: float
    opt: float
    max: float

    def __post_init__(self):
        if not 0.0 < self.min <= self.opt <= self.max <= 1.0:
            raise UserError(f"--keep-range {self.min:g}:{self.opt:g}:{self.max:g} is not 0 < MIN <= OPT <= MAX <= 1: "
                            "pass keep ratios such as 0.3:0.7:1.0")

    @classmethod
    def parse(cls, text: str) -> "KeepRange":
        parts = text.split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3:
            raise UserError(f"--keep-range {text!r} is not MIN:OPT:MAX: pass three keep ratios such as 0.3:0.7:1.0")
        return cls(*values)

    def shapes(self, num_image_tokens: int) -> Dict[str, Tuple[Shape, Shape, Shape]]:
        """keep input -> ((K at min,), (K at opt,), (K at max,)): K grows with the ratio."""
        from ..onnx_file.elastic import KEEP_INPUT_NAMES
        from ..models.schedule import KeepSchedule
        per_ratio = [KeepSchedule(r).stage_tokens(num_image_tokens) for r in (self.min, self.opt, self.max)]
        return {name: tuple((ks[i],) for ks in per_ratio) for i, name in enumerate(KEEP_INPUT_NAMES)}

    def to_json(self) -> List[float]:
        return [self.min, self.opt, self.max]


def engine_profiles(input_name: str, image_shapes: Tuple[Shape, Shape, Shape], keep_ranges: Sequence[KeepRange],
                    num_image_tokens: Optional[int]) -> List[Dict[str, Tuple[Shape, Shape, Shape]]]:
    """One {input: (min, opt, max)} per optimization profile: the batch range, and each keep range of an elastic
    file."""
    if not keep_ranges:
        return [{input_name: image_shapes}]
    return [{input_name: image_shapes, **keep.shapes(num_image_tokens)} for keep in keep_ranges]


def profiles_to_json(profiles) -> List[Dict[str, Dict[str, List[int]]]]:
    return [{name: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for name, s in p.items()}
            for p in profiles]
