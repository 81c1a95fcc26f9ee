"""Plot of a sweep (keep ratios or GTP-ViT's P): throughput and speed-up against executed GMACs, with the ceiling."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple


AXES = {"keep_ratio": ("keep ratio", "keep ratio 1.0"), "num_prop": ("P per block", "the plain backbone")}


def plot_sweep(records: List[Dict], path: str, title: str = "",
               paper_points: Optional[Dict[float, Tuple[float, float]]] = None,
               machine: Optional[str] = None, axis: str = "keep_ratio") -> None:
    """records: dicts with backend, `axis` (keep_ratio, or num_prop for GTP-ViT), gmacs_executed, throughput,
    speedup; `paper_points`: the paper's Table 1 rows for this model (keep ratio -> (GMACs, speed-up)), drawn
    when given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_tp, ax_sp) = plt.subplots(1, 2, figsize=(11, 4.3))
    backends = sorted({r["backend"] for r in records}, key=lambda b: [x["backend"] for x in records].index(b))
    for backend in backends:
        rows = sorted((r for r in records if r["backend"] == backend), key=lambda r: -r["gmacs_executed"])
        g = [r["gmacs_executed"] for r in rows]
        ax_tp.plot(g, [r["throughput"] for r in rows], "o-", label=backend)
        ax_sp.plot(g, [r["speedup"] for r in rows], "o-", label=f"{backend} (measured)")
        for r in rows:
            ax_sp.annotate(f"{r[axis]:g}", (r["gmacs_executed"], r["speedup"]), fontsize=7,
                           textcoords="offset points", xytext=(3, 4))
    base = max(r["gmacs_executed"] for r in records)
    lo = min(r["gmacs_executed"] for r in records)
    xs = [lo + (base - lo) * i / 50 for i in range(51)]
    ax_sp.plot(xs, [base / x for x in xs], "k--", lw=1, label="MAC-ratio ceiling")
    if paper_points:
        pg = [v[0] for v in paper_points.values()]
        ps = [v[1] for v in paper_points.values()]
        ax_sp.plot(pg, ps, "s", mfc="none", color="gray", label="paper Table 1 (V100, paper GMACs)")
    ax_tp.set_xlabel("executed GMACs per image")
    ax_tp.set_ylabel("throughput (img/s)")
    ax_tp.set_title("throughput")
    ax_sp.set_xlabel("GMACs per image")
    what, base_name = AXES[axis]
    ax_sp.set_ylabel(f"speed-up over {base_name}")
    ax_sp.set_title(f"speed-up (labels: {what})")
    for ax in (ax_tp, ax_sp):
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title or machine:
        fig.suptitle(" | ".join(t for t in (title, machine) if t), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
