"""IdleViT-DeiT-S on ONNX Runtime CPU against the fastest plain DeiT-S ONNX and a token-merging DeiT-S.

Every model shares one set of dense random weights (every weight, bias and norm parameter non-zero, as in a
trained checkpoint: seeded timm init leaves biases at zero, and a simplifier then drops their Adds, which
would flatter our files). Files:
  baseline      timm deit_small_patch16_224, torch.onnx.export(dynamo=False, opset 18, dynamic batch), no
                simplifier: the fastest plain DeiT-S ONNX we know of
  idle r=1.0    `idle-export --keep-ratio 1.0` (default exporter and passes), to check it is not slower
  idle r=X      `idle-export --keep-ratio X`
  merging r=M   benchmarks/tome_vit.py merging M tokens per block, exported like the baseline; by default two:
                at the published-method MACs of idle r=0.7 (3.0 GMACs, the issue's token-merging row) and at
                its executed MACs (2.88 GMACs)
All sessions: 1 intra-op thread, calls interleaved round-robin (order rotated each round), median per call.
The baseline runs in two sessions; paired efficiency divides call by call within a round; "baseline (copy)" vs "baseline" is the noise floor.
Speedups are against the faster of the two plain files (baseline, idle r=1.0) in the same run.
Efficiency = speedup / executed-MAC ratio (analytic executed MACs, idlevit.runtime.macs.analytic_macs, equal to
torch's FlopCounterMode count); "published-method efficiency" divides by the MAC ratio of the method as published
(keys of every token for the scores: 3.005 GMACs at r = 0.7), the 1.53x ceiling the targets were first stated in.

Usage: python benchmarks/cpu_efficiency.py [--out DIR] [--batches 16 1] [--ratios 0.9 0.7 0.5] [--rounds 8]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODEL = "idlevit_deit_small_patch16_224"
BACKBONE = "deit_small_patch16_224"


def dense_weights(path: str, seed: int) -> None:
    import timm
    torch.manual_seed(seed)
    model = timm.create_model(BACKBONE, pretrained=False)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:   # biases, norm scales and shifts
                base = 1.0 if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")) else 0.0
                p.copy_(base + 0.05 * torch.randn(p.shape, generator=gen))
    torch.save(model.state_dict(), path)


def plain_export(model: torch.nn.Module, path: str) -> None:
    """What a timm user does: the TorchScript exporter, opset 18, dynamic batch, no simplifier."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(2, 3, 224, 224),), path, dynamo=False, opset_version=18,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def build_files(out: str, ratios, merge_rs, exporter: str, seed: int):
    import timm
    from idlevit.workflows.export import export_model
    from idlevit.factory import create_idlevit
    from idlevit.runtime.macs import analytic_macs
    from tome_vit import make_merging, merging_macs
    ckpt = os.path.join(out, "deit_s_dense.pth")
    if not os.path.exists(ckpt):
        dense_weights(ckpt, seed)
    files, macs, how, ref_macs = {}, {}, {}, {}
    backbone = timm.create_model(BACKBONE, pretrained=False)
    backbone.load_state_dict(torch.load(ckpt, weights_only=True))
    files["baseline"] = os.path.join(out, "deit_s_plain_torchscript.onnx")
    how["baseline"] = "timm DeiT-S, torch.onnx.export(dynamo=False, opset_version=18), dynamic batch, no simplifier"
    if not os.path.exists(files["baseline"]):
        plain_export(backbone, files["baseline"])
    for r in [1.0] + list(ratios):
        model, source = create_idlevit(MODEL, keep_ratio=r, ckpt=ckpt, warn_random=False)
        name = f"idle r={r:g}"
        files[name] = os.path.join(out, f"idle_r{r:g}_{exporter}.onnx")
        how[name] = f"idle-export --keep-ratio {r:g} --exporter {exporter} (default passes)"
        macs[name] = analytic_macs(model, "executed")
        ref_macs[name] = analytic_macs(model, "reference")
        if r == 1.0:
            macs["baseline"] = ref_macs["baseline"] = macs[name]
        if not os.path.exists(files[name]):
            t = time.perf_counter()
            export_model(model, MODEL, source, files[name], exporter=exporter, check_forward=True)
            print(f"exported {name} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    for merge_r in merge_rs:
        merging = make_merging(timm.create_model(BACKBONE, pretrained=False), merge_r)
        merging.blocks.load_state_dict({f"{k.split('.', 1)[0]}.block.{k.split('.', 1)[1]}": v
                                        for k, v in backbone.blocks.state_dict().items()})
        merging.load_state_dict({k: v for k, v in backbone.state_dict().items() if not k.startswith("blocks.")},
                                strict=False)
        name = f"merging r={merge_r}"
        files[name] = os.path.join(out, f"deit_s_merging_r{merge_r}.onnx")
        how[name] = f"token merging, {merge_r} tokens per block, exported like the baseline"
        macs[name] = ref_macs[name] = merging_macs(merging, merge_r)
        if not os.path.exists(files[name]):
            plain_export(merging, files[name])
    return files, macs, ref_macs, how


def time_interleaved(files, batch: int, rounds: int, calls: int, seed: int = 0):
    import onnxruntime as ort
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    sessions = {}
    for name, path in list(files.items()) + [("baseline (copy)", files["baseline"])]:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        sessions[name] = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = list(sessions)
    for s in sessions.values():
        s.run(None, {s.get_inputs()[0].name: x})
    lat = {n: [] for n in names}
    for i in range(rounds):
        k = i % len(names)
        for n in names[k:] + names[:k]:
            s = sessions[n]
            feed = {s.get_inputs()[0].name: x}
            for _ in range(calls):
                t = time.perf_counter()
                s.run(None, feed)
                lat[n].append((time.perf_counter() - t) * 1e3)
        print(f"batch {batch}: round {i + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {n: float(np.median(v)) for n, v in lat.items()}, lat


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cpu_efficiency")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 1])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.9, 0.7, 0.5])
    p.add_argument("--merge-r", type=int, nargs="+", default=None,
                   help="tokens merged per block, one model each (default: the two that match idle r=0.7's "
                        "published-method and executed MACs)")
    p.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"))
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--calls", type=int, default=None, help="calls per model per round (default: 1 at batch >= 8, "
                                                           "else 5)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import onnxruntime as ort
    from tome_vit import merging_macs, make_merging
    import timm
    merge_rs = args.merge_r
    if merge_rs is None:   # the r whose MACs are nearest idle r = 0.7's, published method and executed
        from idlevit.factory import create_idlevit
        from idlevit.runtime.macs import analytic_macs
        idle = create_idlevit(MODEL, keep_ratio=0.7, warn_random=False)[0]
        probe = make_merging(timm.create_model(BACKBONE, pretrained=False), 0)
        merge_rs = sorted({min(range(1, 40), key=lambda r: abs(merging_macs(probe, r) - analytic_macs(idle, c)))
                           for c in ("reference", "executed")})
    files, macs, ref_macs, how = build_files(args.out, args.ratios, merge_rs, args.exporter, args.seed)
    from idlevit.runtime.bench import _cpu_name
    print(f"CPU {_cpu_name()}; torch {torch.__version__}, onnxruntime {ort.__version__}; 1 intra-op thread; "
          f"{args.rounds} rounds, calls interleaved (order rotated each round), median per call")
    for name, h in how.items():
        print(f"  {name}: {files[name]} ({h}; {macs[name] / 1e9:.3f} executed GMACs)")
    results = {}
    for batch in args.batches:
        calls = args.calls or (1 if batch >= 8 else 5)
        med, lat = time_interleaved(files, batch, args.rounds, calls)
        n = {k: len(v) for k, v in lat.items()}
        fastest = min(("baseline", "idle r=1"), key=med.get)   # both are plain DeiT-S graphs of the same weights
        base = med[fastest]
        print(f"\nbatch {batch} ({n['baseline']} calls per model); speedups against the faster plain file: {fastest}")
        print("| model | GMACs | median ms | speedup | MAC ratio | efficiency | paired efficiency | "
              "published-method GMACs | published-method paired efficiency |")
        print("|---|---|---|---|---|---|---|---|---|")
        rows = {}
        for name, ms in med.items():
            key = "baseline" if name == "baseline (copy)" else name
            g, g_ref = macs[key], ref_macs[key]
            speed, ratio = base / ms, macs["baseline"] / g
            # median over calls of (the baseline's call at the same position of the same round) / this call:
            # drift between rounds cancels
            paired = float(np.median(np.array(lat[fastest]) / np.array(lat[name])))
            rows[name] = {"gmacs": g / 1e9, "median_ms": ms, "speedup": speed, "mac_ratio": ratio,
                          "efficiency": speed / ratio, "paired_speedup": paired, "paired_efficiency": paired / ratio,
                          "published_gmacs": g_ref / 1e9,
                          "published_paired_efficiency": paired * g_ref / macs["baseline"]}
            print(f"| {name} | {g / 1e9:.3f} | {ms:.1f} | {speed:.3f}x | {ratio:.3f}x | {speed / ratio:.3f} | "
                  f"{paired / ratio:.3f} | {g_ref / 1e9:.3f} | {paired * g_ref / macs['baseline']:.3f} |")
        print(f"noise floor: baseline (copy) / baseline = {med['baseline (copy)'] / med['baseline']:.3f}")
        for m in (n for n in med if n.startswith("merging") and "idle r=0.7" in med):
            paired_vs = float(np.median(np.array(lat[m]) / np.array(lat["idle r=0.7"])))
            print(f"idle r=0.7 vs {m}: {med[m] / med['idle r=0.7']:.3f}x faster (paired {paired_vs:.3f}x)")
        results[batch] = {"fastest_baseline": fastest, "rows": rows}
    with open(os.path.join(args.out, "cpu_efficiency.json"), "w") as f:
        json.dump({"files": files, "how": how, "results": results, "merge_r": merge_rs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
