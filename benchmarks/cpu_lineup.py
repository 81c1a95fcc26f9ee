"""What a user gets on this CPU, at 1 thread and at all cores: plain DeiT-S on ONNX Runtime fp32 against every
IdleViT artifact, with parity, the threads-scaling check, an ONNX Runtime per-op profile and --backend auto's pick.

Files (built once into --out, reused when present; every one from the seeded DeiT-S weights, seed 0):
  baseline   idle-export --keep-ratio 1.0 --exporter torchscript: the plain backbone graph through the TorchScript
             exporter, the fastest plain DeiT-S ONNX we know of (what a user has without us)
  idle       idle-export --keep-ratio 0.7 (the default export)
  int8       idle-calibrate --quantizer ort on 144 crops of the bundled photographs (S8S8 Q/DQ, per-channel, the
             selection path and Softmax in float)
  int8_w7    the same with --weight-bits 7 (x86 CPUs without VNNI/AMX, or --weight-bits-7 yes)
  base_int8  the baseline file calibrated the same way, on the same crops (plain DeiT-S INT8)
Entries: the baseline twice (the second is the noise floor), IdleViT fp32 on ONNX Runtime and OpenVINO f32,
OpenVINO bf16 (only on CPUs with AVX-512 BF16 or AMX: without them OpenVINO emulates bf16, tens of times slower),
the INT8 file on ONNX Runtime with the kernels the runner picks for this CPU and with the other ones (exact u8u8
with VNNI/AMX, saturating u8s8 without), the INT8 file with 7-bit weights where the CPU has no VNNI, and the INT8
file on OpenVINO. Each IdleViT precision and backend has its plain counterpart in the lineup (the plain file on
OpenVINO f32 and bf16, plain INT8 on ONNX Runtime and OpenVINO) for its scaling check.

Per thread count (1 and all the CPUs this process may use) and batch (1 and 16): every entry loaded at once,
called in turn call by call in alternating order, median latency per entry; speed-up = the baseline's median /
the entry's; paired speed-up = median over rounds of the baseline's call / the entry's call in the same round.
Parity: each entry against the PyTorch fp32 model it was made from on the photographs (benchmarks/make_photos.py),
with its precision's limits (fp32; int8: cosine >= 0.99, top-1 >= 97 %; bf16: the fp16 limits).
Scaling: an IdleViT entry keeps (speed-up over the plain model of its backend and precision at all cores) / (the
same at 1 thread) of its 1-thread speed-up; the target is >= 0.95. (Against the fp32 plain model an INT8 entry
would also be charged for its shorter GEMMs scaling worse, which is quantization, not idling.) The entries with
the other int8 kernels have no plain counterpart and no scaling verdict.

Prints a self-describing report (CPU and flags, versions, load average before and after, iterations) and writes
cpu_lineup.json into --out. The scaling verdicts compare ratios a few per cent apart, so each entry gets 12 timed
calls by default (with 6, two runs on the same quiet machine differed by 3 % in one entry's kept share). About 7
minutes on a quiet 2-core machine once the files exist (the first run exports and calibrates: add about 3 minutes).

Usage: python benchmarks/cpu_lineup.py [--out DIR] [--threads 1 0] [--batches 1 16] [--iters 12] [--warmup 2]
       [--profile-calls 3] [--auto-iters 4]      (--threads 0 = all the CPUs this process may use)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = {"baseline": "deit_s_r10_ts.onnx", "idle": "deit_s_r07.onnx", "int8": "deit_s_r07.qdq.onnx",
         "int8_w7": "deit_s_r07.qdq_w7.onnx", "base_int8": "deit_s_r10_ts.qdq.onnx"}
SCALING_TARGET = 0.95
SPEEDUP_TARGET = 3.0


def cli(tool: str, *argv: str) -> None:
    """Run an idle-* console command (through idlevit_launch, so the idlevit on sys.path is the one used)."""
    code = f"import sys, idlevit_launch; sys.exit(idlevit_launch.launch({tool!r}, sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", code, *argv], check=True)


def build_files(out: str, weight_bits_7: bool) -> dict:
    paths = {k: os.path.join(out, v) for k, v in FILES.items()}
    if not os.path.isdir(os.path.join(out, "photos")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py")], check=True, cwd=out)
    if not os.path.exists(paths["idle"]):
        cli("export", "--keep-ratio", "0.7", "--seed", "0", "-o", paths["idle"])
    if not os.path.exists(paths["baseline"]):
        cli("export", "--keep-ratio", "1.0", "--seed", "0", "--exporter", "torchscript", "-o", paths["baseline"])
    if not os.path.exists(paths["int8"]):
        cli("calibrate", "--onnx", paths["idle"], "--images", os.path.join(out, "calib_photos"), "--num-images",
            "144", "-o", os.path.join(out, "calib.npz"), "--qdq-output", paths["int8"], "--quantizer", "ort")
    if weight_bits_7 and not os.path.exists(paths["int8_w7"]):
        cli("calibrate", "--onnx", paths["idle"], "--calib", os.path.join(out, "calib.npz"), "--qdq-output",
            paths["int8_w7"], "--quantizer", "ort", "--weight-bits", "7")
    if not os.path.exists(paths["base_int8"]):
        cli("calibrate", "--onnx", paths["baseline"], "--calib", os.path.join(out, "calib.npz"), "--qdq-output",
            paths["base_int8"], "--quantizer", "ort")
    if not weight_bits_7:
        del paths["int8_w7"]
    return paths


def versions() -> dict:
    import onnxruntime
    import torch
    v = {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import openvino
        v["openvino"] = openvino.get_version().split("-")[0]
    except ImportError:
        v["openvino"] = None
    return v


def entries(paths: dict, have_openvino: bool, cpu, threads: int, with_parity: bool):
    """The lineup: (label, the key of its plain counterpart: backend and precision) and Entry; the first entry is
    the baseline."""
    from idlevit.onnx_file.metadata import read_metadata
    from idlevit.runtime.lineup import Entry
    from idlevit.runtime.parity import thresholds_for
    from idlevit.runtime.reference import baseline_of, reference_from_metadata
    from idlevit.runtime.runner import make_runner
    meta = read_metadata(paths["idle"])
    model, _ = reference_from_metadata(meta, paths["idle"], warn_random=False)
    base_model = baseline_of(model)

    def torch_of(m):
        return (lambda selection: make_runner("torch", model=m, selection=selection)) if with_parity else None

    def ort(path, exact=None):
        return lambda selection: make_runner("ort", onnx=path, selection=selection, exact_int8=exact,
                                             threads=threads)

    def ov(path, precision="f32"):
        return lambda selection: make_runner("openvino", onnx=path, selection=selection, precision=precision,
                                             threads=threads)

    def plain(label, key, make, precision):
        return label, key, Entry(label, make, torch_of(base_model), thresholds_for(precision))

    def idling(label, key, make, precision):   # parity of an IdleViT file compares the selected tokens too
        return label, key, Entry(label, make, torch_of(model), thresholds_for(precision), True)

    idle = "IdleViT r = 0.7"
    out = [plain("DeiT-S fp32, ONNX Runtime (plain TorchScript export)", "ort", ort(paths["baseline"]), "fp32"),
           idling(f"{idle} fp32, ONNX Runtime", "ort", ort(paths["idle"]), "fp32"),
           plain("DeiT-S INT8 Q/DQ, ONNX Runtime (kernels picked for this CPU)", "ort int8", ort(paths["base_int8"]),
                 "int8"),
           idling(f"{idle} INT8, ONNX Runtime (kernels picked for this CPU)", "ort int8", ort(paths["int8"]), "int8")]
    if cpu.int8_dot:  # with VNNI/AMX the runner uses the default kernels: time the exact u8u8 ones beside them
        out.append(idling(f"{idle} INT8, ONNX Runtime (exact u8u8 kernels)", "ort int8 other kernels",
                          ort(paths["int8"], True), "int8"))
    else:             # without, the runner uses the exact ones: time the saturating default ones beside them
        out.append(idling(f"{idle} INT8, ONNX Runtime (default u8s8 kernels, saturating)", "ort int8 other kernels",
                          ort(paths["int8"], False), "int8"))
    if "int8_w7" in paths:  # 7-bit weights: the fast default kernels cannot saturate (idle-calibrate --weight-bits 7)
        out.append(idling(f"{idle} INT8 7-bit weights, ONNX Runtime (default u8s8 kernels)", "ort int8 other kernels",
                          ort(paths["int8_w7"], False), "int8"))
    if have_openvino:
        out += [plain("DeiT-S f32, OpenVINO (the same plain file)", "openvino", ov(paths["baseline"]), "fp32"),
                idling(f"{idle} f32, OpenVINO", "openvino", ov(paths["idle"]), "fp32"),
                plain("DeiT-S INT8 Q/DQ file, OpenVINO", "openvino int8", ov(paths["base_int8"]), "int8"),
                idling(f"{idle} INT8 Q/DQ file, OpenVINO", "openvino int8", ov(paths["int8"]), "int8")]
        if cpu.bf16:
            bf16 = '/'.join(cpu.bf16)
            out += [plain(f"DeiT-S bf16, OpenVINO ({bf16})", "openvino bf16", ov(paths["baseline"], "bf16"), "bf16"),
                    idling(f"{idle} bf16, OpenVINO ({bf16})", "openvino bf16", ov(paths["idle"], "bf16"), "bf16")]
    return out, meta


def parity_batches(out: str, meta):
    from idlevit.images import eval_transform
    from idlevit.runtime.inputs import batched, image_files, parity_inputs
    x = parity_inputs(meta.img_size, eval_transform(meta.data_config), image_files(os.path.join(out, "photos")))
    return batched(x, 6), len(x)


def profile(paths: dict, threads: list, batches: list, calls: int) -> dict:
    """ONNX Runtime ms per call by op type, idle and baseline, per batch and thread count."""
    from idlevit.runtime.ort_profile import profile_op_types
    result = {}
    for batch in batches:
        for t in threads:
            for what in ("idle", "baseline"):
                print(f"profiling {what}, batch {batch}, {t} thread(s)...", file=sys.stderr, flush=True)
                result[f"{what} b{batch} t{t}"] = profile_op_types(paths[what], batch=batch, img_size=224,
                                                                   calls=calls, threads=t)
    return result


# ONNX Runtime session settings compared at all cores (the runner's: with > 1 thread the workers spin only while a
# Run is in flight, ORT_ENABLE_ALL, sequential execution); ONNX Runtime's own default spins and never stops
ORT_VARIANTS = {"runner's settings": {}, "spinning off": {"session.intra_op.allow_spinning": "0"},
                "spinning that never stops (ORT's default)": {"session.force_spinning_stop": "0"},
                "dynamic block base 4": {"session.dynamic_block_base": "4"}}


def ort_variants(paths: dict, threads: int, batch: int, iters: int, warmup: int) -> dict:
    """IdleViT and the plain file on ONNX Runtime under each ORT_VARIANTS setting, interleaved: median ms."""
    from idlevit.runtime.bench import time_rounds
    from idlevit.runtime.runner import make_runner
    runners = {f"{what} {name}": make_runner("ort", onnx=paths[what], threads=threads, session_config=cfg).load()
               for name, cfg in ORT_VARIANTS.items() for what in ("idle", "baseline")}
    try:
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        t = time_rounds(runners, x, warmup=warmup, iters=iters, rounds=iters)
    finally:
        for r in runners.values():
            r.close()
    return {name: {what: t[f"{what} {name}"].percentile(50) for what in ("idle", "baseline")} for name in ORT_VARIANTS}


def auto_check(paths: dict, threads: list, batches: list, iters: int) -> dict:
    """--backend auto's pick for the fp32 IdleViT file (measured afresh) per thread count and batch."""
    from idlevit.runtime.auto_backend import pick_backend
    return {f"b{b} t{t}": pick_backend(paths["idle"], threads=t, batch=b, refresh=True, iters=iters).to_json()
            for t in threads for b in batches}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cpu_lineup", help="files and cpu_lineup.json go here")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts; 0 = all CPUs")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--iters", type=int, default=12, help="timed calls per entry, batch and thread count")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--profile-calls", type=int, default=3, help="ORT profile calls per file (0: no profile)")
    p.add_argument("--auto-iters", type=int, default=4, help="--backend auto's timed calls (0: no auto check)")
    p.add_argument("--weight-bits-7", choices=("auto", "yes", "no"), default="auto",
                   help="also time an INT8 file with 7-bit weights (idle-calibrate --weight-bits 7); auto: only on "
                        "x86 CPUs without VNNI/AMX, where it lets the fast kernels run without saturating")
    p.add_argument("--variant-iters", type=int, default=8,
                   help="timed calls per ORT session-settings variant at all cores, batch 1 (0: skip)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from idlevit.runtime.auto_backend import openvino_installed
    from idlevit.runtime.cpu_features import cpu_features
    from idlevit.runtime.lineup import NOISE_SUFFIX, run_lineup
    from idlevit.runtime.runner import available_cpus
    t_start, load_start = time.time(), os.getloadavg()
    cpu, have_ov = cpu_features(), openvino_installed()
    threads = [t or available_cpus() for t in args.threads]
    paths = build_files(args.out, args.weight_bits_7 == "yes" or (args.weight_bits_7 == "auto" and cpu.is_x86
                                                                    and not cpu.int8_dot))
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu.summary(), "cpu_flags": sorted(cpu.flags or ()), "cpus_available": available_cpus(),
              "versions": versions(), "threads": threads, "batches": args.batches, "iters": args.iters,
              "warmup": args.warmup, "load_average_start": load_start, "files": paths, "lineup": {}}
    parity, labels = None, None
    for t in threads:
        listed, meta = entries(paths, have_ov, cpu, t, with_parity=parity is None)
        batches, n_photos = parity_batches(args.out, meta) if parity is None else (None, None)
        print(f"== {t} thread(s)", file=sys.stderr, flush=True)
        result = run_lineup([e for _, _, e in listed], batches or [], batches=args.batches, img_size=meta.img_size,
                            warmup=args.warmup, iters=args.iters, progress=True,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
        if parity is None:
            parity, described, report["parity_inputs"] = result.parity, result.described, n_photos
        labels = [(label, backend) for label, backend, _ in listed]
        report["lineup"][str(t)] = result.to_json()
        report["lineup"][str(t)]["_result"] = result
    if args.profile_calls:
        report["ort_profile_ms"] = profile(paths, threads, args.batches, args.profile_calls)
    if args.variant_iters:
        print(f"ORT session settings at {threads[-1]} threads, batch 1...", file=sys.stderr, flush=True)
        report["ort_variants_ms"] = {"threads": threads[-1], "batch": 1, "iters": args.variant_iters,
                                     "settings": ORT_VARIANTS,
                                     "median_ms": ort_variants(paths, threads[-1], 1, args.variant_iters, 1)}
    if args.auto_iters and len(threads):
        report["backend_auto"] = auto_check(paths, threads, args.batches, args.auto_iters)
    report["load_average_end"], report["seconds"] = os.getloadavg(), round(time.time() - t_start)
    print_report(report, labels, parity, described, NOISE_SUFFIX)
    for t in threads:
        report["lineup"][str(t)].pop("_result")
    with open(os.path.join(args.out, "cpu_lineup.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    print(f"\nwrote {os.path.join(args.out, 'cpu_lineup.json')}")
    return 0


def _parity_text(p) -> str:
    if p is None:
        return "-"
    sel = f", selection {p.selection_agreement:.3f}" if p.selection_agreement is not None else ""
    verdict = "pass" if p.passed else "FAIL (" + ", ".join(c.name for c in p.checks if not c.passed) + ")"
    return f"cos {p.cosine_mean:.5f}, top-1 {p.top1_agreement:.3f}{sel}, max abs {p.max_abs_diff:.1e}: {verdict}"


def print_report(report, labels, parity, described, noise_suffix) -> None:
    threads, batches = report["threads"], report["batches"]
    v = report["versions"]
    print(f"# What a user gets on this CPU ({report['date']})\n")
    print(f"CPU: {report['cpu']} ({report['cpus_available']} CPUs for this process)")
    print(f"versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in report['load_average_start'])}, "
          f"at end {'/'.join(f'{x:.2f}' for x in report['load_average_end'])}; {report['seconds']} s in all")
    print(f"timing: {report['warmup']} warm-up + {report['iters']} timed calls per entry, batch and thread count, "
          f"all entries loaded at once and called call by call in alternating order; speed-up = median latency of "
          f"the first row / median latency (paired: median of per-round ratios); parity vs PyTorch fp32 on "
          f"{report.get('parity_inputs')} photographs")
    for label, d in described.items():
        print(f"  {label}: " + ", ".join(f"{k} {val}" for k, val in d.items() if k not in ("providers", "threads")))
    head = " | ".join(f"{t} thr, batch {b}" for t in threads for b in batches)
    print(f"\n| deployment | {head} | parity vs PyTorch fp32 |")
    print("|---|" + "---|" * (len(threads) * len(batches)) + "---|")
    base = labels[0][0]
    rows = [(base, "ort"), (base + noise_suffix, "ort")] + labels[1:]
    for label, _ in rows:
        cells = []
        for t in threads:
            r = report["lineup"][str(t)]["_result"]
            for b in batches:
                cells.append(f"{r.speedup(b, label):.2f}x (paired {r.paired_speedup(b, label):.2f}x, "
                             f"{r.timings[b][label].percentile(50):.1f} ms)")
        print(f"| {label} | " + " | ".join(cells) + f" | {_parity_text(parity.get(label))} |")
    print(f"\nnoise floor: the baseline's second copy runs at "
          + ", ".join(f"{report['lineup'][str(t)]['_result'].speedup(b, base + noise_suffix):.3f}x"
                      f" ({t} thr, b{b})" for t in threads for b in batches) + " of the first")
    if len(threads) > 1:
        print_scaling(report, labels, threads, batches)
    print_targets(report, labels, parity, threads, batches)
    if "ort_profile_ms" in report:
        print_profile(report["ort_profile_ms"], threads, batches)
    if "ort_variants_ms" in report:
        print_variants(report["ort_variants_ms"])
    if "backend_auto" in report:
        print_auto(report, labels, threads, batches)


def print_variants(v) -> None:
    print(f"\n## ONNX Runtime session settings, {v['threads']} threads, batch {v['batch']} ({v['iters']} calls each, "
          "interleaved; median ms)\n")
    print("| setting | session config | IdleViT r = 0.7 ms | DeiT-S ms | IdleViT speed-up |")
    print("|---|---|---|---|---|")
    for name, ms in v["median_ms"].items():
        cfg = ", ".join(f"{k}={val}" for k, val in v["settings"][name].items()) or "(the runner's)"
        print(f"| {name} | {cfg} | {ms['idle']:.1f} | {ms['baseline']:.1f} | {ms['baseline'] / ms['idle']:.2f}x |")


def print_scaling(report, labels, threads, batches) -> None:
    lo, hi = threads[0], threads[-1]
    r_lo, r_hi = (report["lineup"][str(t)]["_result"] for t in (lo, hi))
    plain = {backend: label for label, backend in labels if not label.startswith("IdleViT")}
    print(f"\n## Scaling from {lo} to {hi} threads (target: an IdleViT entry keeps >= {SCALING_TARGET} of its "
          f"{lo}-thread speed-up over the plain model of its backend and precision)\n")
    print("| entry | batch | median ms at " + f"{lo} / {hi} threads | own scaling | plain model's scaling | "
          "speed-up over its plain model, " + f"{lo} -> {hi} | kept | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    scaling = {}
    for label, backend in labels:
        if not label.startswith("IdleViT") or backend not in plain:
            continue
        own_plain = plain[backend]
        for b in batches:
            m_lo, m_hi = r_lo.timings[b][label].percentile(50), r_hi.timings[b][label].percentile(50)
            p_lo, p_hi = r_lo.timings[b][own_plain].percentile(50), r_hi.timings[b][own_plain].percentile(50)
            s_lo, s_hi = p_lo / m_lo, p_hi / m_hi
            kept = s_hi / s_lo
            scaling[f"{label} b{b}"] = {"kept": kept, "speedup_lo": s_lo, "speedup_hi": s_hi}
            print(f"| {label} | {b} | {m_lo:.1f} / {m_hi:.1f} | {m_lo / m_hi:.2f}x | {p_lo / p_hi:.2f}x | "
                  f"{s_lo:.2f}x -> {s_hi:.2f}x | {kept:.3f} | {'ok' if kept >= SCALING_TARGET else 'BELOW'} |")
    report["scaling"] = scaling


def print_targets(report, labels, parity, threads, batches) -> None:
    print(f"\n## Best IdleViT artifact per thread count and batch (target >= {SPEEDUP_TARGET}x the first row, "
          f"cosine >= 0.99 to its fp32 model on the photographs)\n")
    best = {}
    for t in threads:
        r = report["lineup"][str(t)]["_result"]
        for b in batches:
            ok = [label for label, _ in labels if label.startswith("IdleViT") and parity.get(label) is not None
                  and parity[label].cosine_mean >= 0.99]
            if not ok:
                continue
            label = max(ok, key=lambda lab: r.speedup(b, lab))
            s = r.speedup(b, label)
            best[f"t{t} b{b}"] = {"entry": label, "speedup": s, "paired_speedup": r.paired_speedup(b, label)}
            print(f"- {t} thread(s), batch {b}: {label}: {s:.2f}x (paired {r.paired_speedup(b, label):.2f}x): "
                  f"{'meets' if s >= SPEEDUP_TARGET else 'below'} {SPEEDUP_TARGET}x")
    report["best"] = best


def print_profile(prof, threads, batches) -> None:
    lo, hi = threads[0], threads[-1]
    for b in batches:
        idle_lo, idle_hi = prof.get(f"idle b{b} t{lo}", {}), prof.get(f"idle b{b} t{hi}", {})
        base_lo, base_hi = prof.get(f"baseline b{b} t{lo}", {}), prof.get(f"baseline b{b} t{hi}", {})
        print(f"\n## ONNX Runtime kernel time per call by op type, batch {b}, {lo} -> {hi} threads "
              "(profiler; sums of node kernel times)\n")
        print(f"| op type | idle {lo} thr ms | idle {hi} thr ms | idle scaling | baseline {lo} thr ms | "
              f"baseline {hi} thr ms | baseline scaling |")
        print("|---|---|---|---|---|---|---|")
        ops = sorted(set(idle_lo) | set(base_lo), key=lambda op: -(idle_lo.get(op, 0) + base_lo.get(op, 0)))
        for op in ops + ["total"]:
            vals = ([sum(d.values()) for d in (idle_lo, idle_hi, base_lo, base_hi)] if op == "total" else
                    [d.get(op, 0.0) for d in (idle_lo, idle_hi, base_lo, base_hi)])
            sc = [f"{a / c:.2f}x" if c > 0 else "-" for a, c in ((vals[0], vals[1]), (vals[2], vals[3]))]
            print(f"| {op} | {vals[0]:.2f} | {vals[1]:.2f} | {sc[0]} | {vals[2]:.2f} | {vals[3]:.2f} | {sc[1]} |")


def print_auto(report, labels, threads, batches) -> None:
    print("\n## --backend auto on the fp32 IdleViT file (measured afresh), against the fastest fp32-file entry "
          "of the lineup above (target: within 5 %)\n")
    names = {("ort", "fp32"): "IdleViT r = 0.7 fp32, ONNX Runtime",
             ("openvino", "fp32"): "IdleViT r = 0.7 f32, OpenVINO"}
    names.update({("openvino", "bf16"): label for label, _ in labels
                  if label.startswith("IdleViT") and "bf16, OpenVINO" in label})
    for t in threads:
        r = report["lineup"][str(t)]["_result"]
        for b in batches:
            pick = report["backend_auto"][f"b{b} t{t}"]
            chosen = names.get((pick["picked"]["backend"], pick["picked"]["precision"]))
            comparable = [n for n in names.values() if n in r.timings[b]]
            fastest = min(comparable, key=lambda n: r.timings[b][n].percentile(50))
            gap = r.timings[b][chosen].percentile(50) / r.timings[b][fastest].percentile(50) - 1 if chosen else None
            pick["lineup_gap"] = gap
            print(f"- {t} thread(s), batch {b}: picked {pick['picked']['backend']} {pick['picked']['precision']} "
                  f"({pick['why']}); fastest in the lineup: {fastest}; the pick is "
                  + (f"{gap:+.1%} slower in the lineup: {'ok' if gap <= 0.05 else 'BEYOND 5 %'}" if chosen is not None
                     else "not in the lineup"))


if __name__ == "__main__":
    sys.exit(main())
