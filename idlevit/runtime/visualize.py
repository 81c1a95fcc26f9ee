"""Figure 2 of the paper for any image: which patches each idle block selects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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


@dataclass
class PropagationStep:
    """One GTP-ViT block on one image, as patch ids of the input grid: the tokens it removed (propagated) and
    the kept tokens they were added into (graph neighbours with a nonzero weight), and those still alive after."""
    block: int
    propagated: np.ndarray
    receivers: np.ndarray
    alive: np.ndarray


def gtp_propagation(model, image: np.ndarray) -> Tuple[List[PropagationStep], int]:
    """Per propagating block, which patches GTP-ViT propagated into which (one image (3, H, W)), and its top-1.

    The graph is only ever subset, never rebuilt, so a block's weights G[kept, prop] are the initial graph's
    entries between the same patches.
    """
    import torch
    with torch.no_grad():
        x = torch.from_numpy(image[None].astype(np.float32))
        graph = model._graph(model._embed(x))[0].numpy()
        logits, indices = model.forward_with_propagation(x)
    alive = np.arange(graph.shape[0])
    steps = []
    for block, idx in enumerate(indices):
        if idx is None:
            continue
        kept, prop = alive[idx[0][0].numpy()], alive[idx[1][0].numpy()]
        receivers = kept[(graph[np.ix_(kept, prop)] != 0).any(1)]
        steps.append(PropagationStep(block, prop, receivers, kept))
        alive = kept
    return steps, int(logits[0].argmax())


def draw_propagation(picture: np.ndarray, steps: Sequence[PropagationStep], grid: int, path: str,
                     title: str = "", removed_alpha: float = 0.75, per_row: int = 6) -> None:
    """Grid figure: the input, then per block: removed patches faded, this block's propagated patches red, the
    patches they were added into blue."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + len(steps)
    rows = (panels + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(1.9 * per_row, 2.1 * rows + 0.4), squeeze=False)
    h, w = picture.shape[:2]
    ph, pw = h // grid, w // grid

    def mask(ids):
        m = np.zeros(grid * grid, dtype=bool)
        m[ids] = True
        return np.repeat(np.repeat(m.reshape(grid, grid), ph, 0), pw, 1)

    axes.flat[0].imshow(picture)
    axes.flat[0].set_title("input", fontsize=8)
    gone = np.zeros(grid * grid, dtype=bool)
    for ax, step in zip(axes.flat[1:], steps):
        shown = picture.copy()
        faded = mask(np.flatnonzero(gone))[..., None]
        shown = shown * (1 - removed_alpha * faded) + removed_alpha * faded
        for ids, colour in ((step.receivers, (0.0, 0.3, 1.0)), (step.propagated, (1.0, 0.0, 0.0))):
            tint = mask(ids)
            shown[tint] = 0.4 * shown[tint] + 0.6 * np.array(colour)
        ax.imshow(shown)
        ax.set_title(f"block {step.block}: {len(step.propagated)} -> {len(step.receivers)}\n"
                     f"{len(step.alive)} left", fontsize=8)
        gone[step.propagated] = True
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
