"""The one optimization profile of an engine: min/opt/max batch over a fixed image shape."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

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
