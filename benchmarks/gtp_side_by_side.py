"""GTP-ViT vs IdleViT vs token merging on DeiT-S at matched executed MACs, on ONNX Runtime and OpenVINO (CPU).

All files share one set of dense random weights (benchmarks/cpu_efficiency.py's `dense_weights`). Files:
  baseline      timm DeiT-S exported as a timm user does (cpu_efficiency.py's `plain_export`)
  gtp P=X       `idle-export --model gtp_deit_small_patch16_224 --model-kwargs num_prop=X` (default settings:
                K 8, alpha 0.1, mixed graph, token scales)
  idle r=Y      `idle-export --keep-ratio Y`, Y the keep ratio (0.01 steps) whose executed MACs are nearest GTP's
  merging r=Z   benchmarks/tome_vit.py merging Z tokens per block, Z nearest GTP's executed MACs, exported like
                the baseline
Per backend, thread count and batch: every model in its own session, calls interleaved (the order reversed
every round), median per call; speedup against the baseline in the same run. Output: a Markdown table per setting
on stdout and everything (setup, per-call latencies' medians, load average) in <out>/gtp_side_by_side.json.

Usage: python benchmarks/gtp_side_by_side.py [--out DIR] [--num-prop 8] [--batches 1 16] [--threads 1 0]
       [--backends ort openvino] [--rounds 5]    (--threads 0 = all cores this process may use)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
BACKBONE = "deit_small_patch16_224"


def build_files(out: str, num_prop: int, seed: int):
    """{name: path}, {name: executed MACs}, {name: how it was made}; files already in `out` are reused."""
    import timm
    from cpu_efficiency import dense_weights, plain_export
    from idlevit.factory import create_idlevit
    from idlevit.runtime.macs import analytic_macs, gtp_analytic_macs
    from idlevit.workflows.export import export_model
    from tome_vit import make_merging, merging_macs
    ckpt = os.path.join(out, "deit_s_dense.pth")
    if not os.path.exists(ckpt):
        dense_weights(ckpt, seed)
    backbone = timm.create_model(BACKBONE, pretrained=False)
    backbone.load_state_dict(torch.load(ckpt, weights_only=True))
    gtp, gtp_source = create_idlevit("gtp_deit_small_patch16_224", ckpt=ckpt, num_prop=num_prop)
    target = gtp_analytic_macs(gtp)
    ratio = min((r / 100 for r in range(30, 100)), key=lambda r: abs(
        analytic_macs(create_idlevit("idlevit_deit_small_patch16_224", keep_ratio=r, warn_random=False)[0]) - target))
    idle, idle_source = create_idlevit("idlevit_deit_small_patch16_224", keep_ratio=ratio, ckpt=ckpt)
    probe = make_merging(timm.create_model(BACKBONE, pretrained=False), 0)
    merge_r = min(range(1, 40), key=lambda r: abs(merging_macs(probe, r) - target))
    merging = make_merging(timm.create_model(BACKBONE, pretrained=False), merge_r)
    merging.blocks.load_state_dict({f"{k.split('.', 1)[0]}.block.{k.split('.', 1)[1]}": v
                                    for k, v in backbone.blocks.state_dict().items()})
    merging.load_state_dict({k: v for k, v in backbone.state_dict().items() if not k.startswith("blocks.")},
                            strict=False)
    base_macs = analytic_macs(create_idlevit("idlevit_deit_small_patch16_224", keep_ratio=1.0, warn_random=False)[0])
    models = {
        "baseline": (lambda p: plain_export(backbone, p), base_macs,
                     "timm DeiT-S, torch.onnx.export(dynamo=False, opset 18), dynamic batch, no simplifier"),
        f"gtp P={num_prop}": (lambda p: export_model(gtp, "gtp_deit_small_patch16_224", gtp_source, p), target,
                              f"idle-export --model gtp_deit_small_patch16_224 --model-kwargs num_prop={num_prop}"),
        f"idle r={ratio:g}": (lambda p: export_model(idle, "idlevit_deit_small_patch16_224", idle_source, p),
                              analytic_macs(idle), f"idle-export --keep-ratio {ratio:g}"),
        f"merging r={merge_r}": (lambda p: plain_export(merging, p), merging_macs(merging, merge_r),
                                 f"benchmarks/tome_vit.py, {merge_r} tokens merged per block, exported like the baseline"),
    }
    files, macs, how = {}, {}, {}
    for name, (export, gmacs, text) in models.items():
        files[name] = os.path.join(out, name.replace(" ", "_").replace("=", "") + ".onnx")
        macs[name], how[name] = gmacs, text
        if not os.path.exists(files[name]):
            t = time.perf_counter()
            export(files[name])
            print(f"exported {name} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return files, macs, how


def time_interleaved(files, backend: str, threads: int, batch: int, rounds: int, calls: int, seed: int = 0):
    """Median ms per call of each file: runners from the toolkit's `make_runner`, timed by its `time_rounds`
    (one warm-up call each, then `rounds` rounds of `calls` calls per model, the order reversed every round)."""
    from idlevit.runtime.bench import time_rounds
    from idlevit.runtime.runner import make_runner
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    runners = {name: make_runner(backend, onnx=path, threads=threads).load() for name, path in files.items()}
    try:
        timings = time_rounds(runners, x, warmup=1, iters=rounds * calls, rounds=rounds)
        return {name: t.percentile(50) for name, t in timings.items()}
    finally:
        for r in runners.values():
            r.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/gtp_side_by_side")
    p.add_argument("--num-prop", type=int, default=8)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="0 = all cores this process may use")
    p.add_argument("--backends", nargs="+", default=["ort", "openvino"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=None, help="calls per model per round (default: 1 at batch >= 8, "
                                                           "else 5)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from idlevit.runtime.bench import _cpu_name
    from idlevit.runtime.runner import available_cpus
    files, macs, how = build_files(args.out, args.num_prop, args.seed)
    load_before = os.getloadavg()
    print(f"CPU {_cpu_name()}, {available_cpus()} cores for this process; torch {torch.__version__}; "
          f"{args.rounds} rounds, calls interleaved (order reversed every round), median per call; "
          f"load average at start {load_before[0]:.2f}")
    for name in files:
        print(f"  {name}: {how[name]}; {macs[name] / 1e9:.3f} executed GMACs")
    results = []
    for backend in args.backends:
        for threads in args.threads:
            n_threads = threads or available_cpus()
            for batch in args.batches:
                calls = args.calls or (1 if batch >= 8 else 5)
                med = time_interleaved(files, backend, n_threads, batch, args.rounds, calls, args.seed)
                load = os.getloadavg()[0]
                print(f"\n{backend}, {n_threads} thread(s), batch {batch}, {args.rounds * calls} calls per model, "
                      f"load average {load:.2f}")
                print("| model | executed GMACs | MAC ratio | median ms | speedup | efficiency |")
                print("|---|---|---|---|---|---|")
                for name, ms in med.items():
                    ratio, speed = macs["baseline"] / macs[name], med["baseline"] / ms
                    print(f"| {name} | {macs[name] / 1e9:.3f} | {ratio:.3f}x | {ms:.1f} | {speed:.3f}x | "
                          f"{speed / ratio:.3f} |")
                    results.append({"backend": backend, "threads": n_threads, "batch": batch, "model": name,
                                    "gmacs": macs[name] / 1e9, "median_ms": ms, "speedup": speed,
                                    "mac_ratio": ratio, "load_average": load})
    with open(os.path.join(args.out, "gtp_side_by_side.json"), "w") as f:
        json.dump({"files": files, "how": how, "cpu": _cpu_name(), "cores": available_cpus(),
                   "torch": torch.__version__, "rounds": args.rounds, "load_average_start": load_before,
                   "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
