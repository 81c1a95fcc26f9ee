"""Overhead of one elastic file against the fixed-K exports of the same weights (ORT CPU, DeiT-S, seeded weights).

Exports (once, into --out) DeiT-S fixed at r = 0.7 and 0.5 and one elastic file, then times, per batch size,
five ONNX Runtime sessions in alternating rounds in one process (order A..E, E..A, ...):
the fixed file at 0.7 twice (the second is the noise floor: the same file against itself), the elastic file
at 0.7, the fixed file at 0.5 and the elastic file at 0.5. Overhead = median latency elastic / fixed - 1, and
the median of the call-by-call ratios (the i-th calls of all sessions fall in the same round), which load on a
shared machine disturbs less.

    python benchmarks/elastic_overhead.py --out benchmarks/results/elastic --rounds 20 --iters 200
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

MODEL = "idlevit_deit_small_patch16_224"


def export(out: str, keep_ratio: float, elastic: bool) -> str:
    from idlevit.workflows.export import export_model
    from idlevit.factory import create_idlevit
    path = os.path.join(out, f"deit_s_{'elastic' if elastic else f'r{keep_ratio:g}'}.onnx")
    if not os.path.exists(path):
        model, source = create_idlevit(MODEL, keep_ratio, seed=0, warn_random=False)
        export_model(model, MODEL, source, path, elastic=elastic)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/elastic")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--iters", type=int, default=200, help="timed calls per session at batch 1 (batch b: iters/b, "
                                                          "at least 2 per round)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from idlevit.runtime.bench import measure_setup, time_rounds
    from idlevit.runtime.ort_runner import OrtRunner
    fixed = {r: export(args.out, r, False) for r in (0.7, 0.5)}
    elastic = export(args.out, 0.7, True)
    sessions = {"fixed 0.7": (fixed[0.7], None), "fixed 0.7 (again)": (fixed[0.7], None),
                "elastic 0.7": (elastic, 0.7), "fixed 0.5": (fixed[0.5], None), "elastic 0.5": (elastic, 0.5)}
    runners = {}
    for name, (path, ratio) in sessions.items():
        runners[name] = OrtRunner(path, threads=args.threads).load()
        if ratio is not None:
            runners[name].set_keep_ratio(ratio)
    results = {}
    for batch in args.batches:
        feed = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        iters = max(2 * args.rounds, args.iters // batch)
        t = time_rounds(runners, feed, warmup=5, iters=iters, rounds=args.rounds)
        med = {name: t[name].percentile(50) for name in runners}
        pairs = {"noise floor (0.7 vs itself)": ("fixed 0.7 (again)", "fixed 0.7"),
                 "elastic overhead at 0.7": ("elastic 0.7", "fixed 0.7"),
                 "elastic overhead at 0.5": ("elastic 0.5", "fixed 0.5")}
        rows = {label: med[a] / med[b] - 1 for label, (a, b) in pairs.items()}
        # call by call: the i-th call of one session against the i-th of the other, timed in the same round,
        # so load that drifts between rounds cancels
        paired = {label: float(np.median(np.array(t[a].latencies_ms) / np.array(t[b].latencies_ms))) - 1
                  for label, (a, b) in pairs.items()}
        results[batch] = {"median_ms": med, "overhead": rows, "paired_overhead": paired, "iters": iters,
                          "rounds": args.rounds}
        print(f"batch {batch}: {iters} timed calls per session in {args.rounds} alternating rounds")
        for name, ms in med.items():
            print(f"  {name:<20} median {ms:8.2f} ms   p90 {t[name].percentile(90):8.2f} ms")
        for name, value in rows.items():
            print(f"  {name:<30} {100 * value:+6.2f} % of medians, {100 * paired[name]:+6.2f} % call by call")
    setup = measure_setup(runners["elastic 0.7"], batch=0, warmup=5, iters=0, rounds=args.rounds)
    for r in runners.values():
        r.close()
    print("setup:", json.dumps({k: v for k, v in setup.items() if k not in ("batch", "iters")}))
    with open(os.path.join(args.out, "elastic_overhead.json"), "w") as f:
        json.dump({"results": results, "setup": setup}, f, indent=2)


if __name__ == "__main__":
    main()
