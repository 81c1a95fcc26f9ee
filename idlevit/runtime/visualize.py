"""Figure 2 of the paper for any image: which patches each idle block selects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np


@dataclass
class SelectionRow:
    """One source's selection for one image: per idle block, the selected image-token ids."""
    label: str
    blocks: List[int]                 # block index of each idle block
    selected: List[np.ndarray]        # per idle block, image-token ids (0-based, [CLS] removed)
    top1: Optional[int] = None


def runner_selection(runner, image: np.ndarray, label: str, blocks: List[int]) -> SelectionRow:
    """Selection of any runner built with `selection=True` (torch, ORT, TensorRT) for one image (3, H, W)."""
    from ..errors import UserError
    from ..onnx_file.selection_outputs import is_selection_output, selection_output_name
    with runner:
        out = runner.infer(image[None].astype(np.float32))
    count = sum(is_selection_output(name) for name in out)
    if count != len(blocks):
        raise UserError(f"{label} has {count} TopK nodes but the PyTorch model has {len(blocks)} idle blocks: "
                        "pass the --model/--keep-ratio it was exported with")
    selected = [out[selection_output_name(i)][0] for i in range(count)]
    logits = out.get("logits", next(v for k, v in out.items() if not is_selection_output(k)))  # a foreign file
    return SelectionRow(label, blocks, selected, int(logits[0].argmax()))


def agreement(row: SelectionRow, ref: SelectionRow) -> List[float]:
    """Per idle block, the fraction of `ref`'s selected tokens that `row` also selects."""
    from .parity import set_overlap
    return [float(set_overlap(a[None], b[None])[0]) for a, b in zip(row.selected, ref.selected)]


def to_display(image: np.ndarray, mean, std) -> np.ndarray:
    """Normalised (3, H, W) image back to (H, W, 3) floats in [0, 1] for plotting."""
    shown = image * np.asarray(std).reshape(3, 1, 1) + np.asarray(mean).reshape(3, 1, 1)
    return np.clip(shown, 0.0, 1.0).transpose(1, 2, 0)


def draw_selection(picture: np.ndarray, rows: Sequence[SelectionRow], grid: int, path: str,
                   title: str = "", idle_alpha: float = 0.75) -> None:
    """Grid figure: rows = sources, columns = input + each idle block; idle patches fade to white."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 1 + len(rows[0].selected)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.9 * n_cols, 2.1 * len(rows) + 0.4), squeeze=False)
    h, w = picture.shape[:2]
    ph, pw = h // grid, w // grid
    ref = rows[0]
    for r, row in enumerate(rows):
        axes[r, 0].imshow(picture)
        top = f"\ntop-1 {row.top1}" if row.top1 is not None else ""
        axes[r, 0].set_title(f"{row.label}{top}", fontsize=8)
        agree = agreement(row, ref) if r else None
        for c, (block, ids) in enumerate(zip(row.blocks, row.selected), start=1):
            keep = np.zeros(grid * grid, dtype=bool)
            keep[ids] = True
            fade = np.repeat(np.repeat((~keep).reshape(grid, grid), ph, 0), pw, 1)[..., None]
            shown = picture * (1 - idle_alpha * fade) + idle_alpha * fade
            if r:  # tokens this source selects but the reference does not: tint red
                extra = np.zeros(grid * grid, dtype=bool)
                extra[np.setdiff1d(ids, ref.selected[c - 1])] = True
                tint = np.repeat(np.repeat(extra.reshape(grid, grid), ph, 0), pw, 1)
                shown[tint] = 0.5 * shown[tint] + 0.5 * np.array([1.0, 0.0, 0.0])
            axes[r, c].imshow(shown)
            label = f"block {block}: {len(ids)}/{grid * grid}"
            if agree is not None:
                label += f"\nagree {agree[c - 1]:.0%}"
            axes[r, c].set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
