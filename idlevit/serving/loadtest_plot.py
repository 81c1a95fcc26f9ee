"""The load test's picture: latency and keep ratio over time, one colour per mode, phases shaded."""
from __future__ import annotations

import numpy as np

from ..fileio import atomic_output


def plot_loadtest(report, path: str, window: int = 16) -> None:
    """Rolling p99 latency (top) and the keep ratio each request ran at (bottom) against time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for result in report.results:
        t = np.array([s.sent_s for s in result.samples])
        lat = np.array([s.latency_ms for s in result.samples])
        if len(t) == 0:
            continue
        rolling = [np.percentile(lat[max(0, i - window + 1):i + 1], 99) for i in range(len(lat))]
        line, = top.plot(t, rolling, label=f"r = {result.mode}" if result.mode != "adaptive" else "adaptive")
        bottom.step(t, [s.keep_ratio for s in result.samples], where="post", color=line.get_color())
    bounds = report.results[0].phase_bounds if report.results else []
    for n, clients in enumerate(report.plan.phases):
        if n + 1 < len(bounds):
            for ax in (top, bottom):
                ax.axvspan(bounds[n], bounds[n + 1], color="grey", alpha=0.08 * (n % 2))
            top.text((bounds[n] + bounds[n + 1]) / 2, 1.0, f"{clients} client{'s' * (clients > 1)}",
                     transform=top.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    target = report.setup.get("p99_target_ms")
    if target not in (None, "none"):
        top.axhline(float(target), color="k", ls="--", lw=0.8, label=f"p99 target {target} ms")
    top.set_ylabel(f"p99 latency, last {window} requests (ms)")
    bottom.set_ylabel("keep ratio")
    bottom.set_xlabel("time since the mode started (s)")
    top.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
