"""Read which tokens an ONNX model selects (TopK indices exposed as outputs) for `show`."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..errors import UserError
from ..export.selection_outputs import is_selection_output
from .ort_runner import OrtRunner
from .visualize import SelectionRow


def onnx_selection(path: str, image: np.ndarray, blocks: List[int]) -> SelectionRow:
    """Run one normalised image (3, H, W) through `path` on ORT CPU; per idle block, the selected ids."""
    with OrtRunner(path, selection=True) as runner:
        out = runner.infer(image[None].astype(np.float32))
    selected = [out[name][0] for name in sorted((n for n in out if is_selection_output(n)),
                                                key=lambda n: int(n.rsplit(".", 1)[1]))]
    if len(selected) != len(blocks):
        raise UserError(f"ONNX file {path} has {len(selected)} TopK nodes but the PyTorch model has "
                        f"{len(blocks)} idle blocks: pass the --model/--keep-ratio it was exported with")
    return SelectionRow(os.path.basename(path), blocks, selected, int(out["logits"][0].argmax()))
