"""`idle-runtime sweep`: keep ratios (IdleViT) or P per block (GTP-ViT) x backends -> JSON, CSV and a
throughput/speed-up plot."""
from __future__ import annotations

import csv
import os

from .common import add_json_flag, add_model_args, atomic_output, model_from_args, print_table, write_json
from ..models.names import SWEEP_NUM_PROPS, is_gtp
from ..models.schedule import SWEEP_RATIOS
from .runner_args import EXACT_INT8
from .runtime_bench import add_autocast_arg, add_bench_args, check_timing_args

COLUMNS = ("backend", "{axis}", "gmacs_executed", "throughput", "latency_p50_ms", "latency_p90_ms", "speedup",
           "mac_ratio", "efficiency", "max_abs_diff", "top1_agreement")


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run keep ratios (GTP-ViT: P) on several backends; write JSON, CSV and a plot",
                       description="For each keep ratio (for a gtp_* model: each P, tokens propagated per block) "
                       "and backend: executed GMACs, throughput, latency, speed-up over keep ratio 1.0 (GTP-ViT: "
                       "over the plain backbone, P = 0), timed in alternating rounds in this process, efficiency = "
                       "speed-up / MAC ratio, and parity against PyTorch for ONNX Runtime and OpenVINO. ONNX files "
                       "are exported once into --onnx-dir and reused.")
    add_model_args(p, schedule=False)   # the keep ratios are --ratios, GTP-ViT's P is --num-props
    p.add_argument("--ratios", type=float, nargs="+", default=None,
                   help=f"IdleViT keep ratios to run (default: {SWEEP_RATIOS[0]} {SWEEP_RATIOS[1]} ... "
                        f"{SWEEP_RATIOS[-1]})")
    p.add_argument("--num-props", type=int, nargs="+", default=None, metavar="P",
                   help="GTP-ViT (gtp_* models): tokens propagated per block to run; P = 0, the plain backbone, "
                        f"is the baseline and always runs (default: {' '.join(map(str, SWEEP_NUM_PROPS))})")
    p.add_argument("--backends", nargs="+", choices=("torch", "ort", "ort-int8", "openvino", "openvino-bf16"),
                   default=["torch", "ort"],
                   help="backends; ort-int8 = each ratio's INT8 Q/DQ file (needs --calib) against the fp32 ONNX "
                        "Runtime baseline; openvino / openvino-bf16 = OpenVINO CPU in f32 / bf16 (default: torch ort)")
    p.add_argument("--calib", default=None,
                   help="calib.npz from idle-calibrate, for --backends ort-int8 (default: none)")
    p.add_argument("--int8-kernels", choices=tuple(EXACT_INT8), default="auto",
                   help="ONNX Runtime int8 GEMMs for ort-int8: auto = exact u8u8 only on x86 CPUs without VNNI "
                        "(default: auto)")
    add_bench_args(p)
    p.set_defaults(warmup=2, iters=10, rounds=2)
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the torch models (default: off)")
    add_autocast_arg(p)
    p.add_argument("--parity-samples", type=int, default=8,
                   help="inputs for the ORT parity check: bundled photos, then seeded random (default: 8; 0 = off)")
    p.add_argument("-o", "--output", default="sweep", help="output folder for sweep.json/.csv/.png (default: sweep)")
    p.add_argument("--onnx-dir", default=None, help="where exports are cached (default: <output>/onnx)")
    p.add_argument("--onnx", default=None,
                   help="an elastic file (idle-export --elastic): ONNX Runtime runs it at every ratio, nothing is "
                        "re-exported but the keep-ratio-1.0 baseline; the weights come from its metadata (pass "
                        "--ckpt if it was exported from one) (default: none, one export per ratio)")
    p.add_argument("--baseline-onnx", default=None,
                   help="plain ViT ONNX to time as the ORT baseline: idle-export --keep-ratio 1.0 of the same weights "
                        "or any plain ViT file of the same input and output shapes (default: export the "
                        "keep-ratio-1.0 model in the fastest form we know, the TorchScript exporter's graph)")
    add_json_flag(p, "sweep.json's content")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import UserError
    from ..fileio import new_output_dirs
    from ..models.schedule import check_keep_ratio
    ratios = None
    if is_gtp(args.model):
        _check_gtp_flags(args)
    elif args.num_props is not None:
        raise UserError(f"--num-props sweeps GTP-ViT's P and {args.model} is not GTP-ViT: pass --model "
                        "gtp_deit_small_patch16_224 (or another gtp_* name), or --ratios for a keep-ratio sweep")
    else:
        try:
            ratios = sorted({check_keep_ratio(r) for r in args.ratios or SWEEP_RATIOS} | {1.0}, reverse=True)
        except ValueError as e:
            raise UserError(f"--ratios: {e}") from None
    check_timing_args(args)
    if "ort-int8" in args.backends and not (args.calib and os.path.isfile(args.calib)):
        raise UserError("--backends ort-int8 needs --calib calib.npz: make one with idle-calibrate --onnx FILE "
                        "--images DIR -o calib.npz")
    onnx_dir = args.onnx_dir or os.path.join(args.output, "onnx")
    with new_output_dirs((args.output, "-o"), (onnx_dir, "--onnx-dir")):   # a failed sweep leaves no empty folder
        return _sweep(args, ratios, onnx_dir)


def _check_gtp_flags(args) -> None:
    """A GTP-ViT sweep varies P only: refuse the keep-ratio flags and a P fixed in --model-kwargs."""
    from ..errors import UserError
    if args.ratios is not None:
        raise UserError(f"--ratios sets IdleViT keep ratios and {args.model} is GTP-ViT: sweep its P with "
                        "--num-props 0 4 8")
    if args.onnx:
        raise UserError(f"--onnx takes an elastic IdleViT file and {args.model} is GTP-ViT, which has none: drop "
                        "--onnx (one file per P is exported)")
    if "num_prop" in dict(args.model_kwargs or []):
        raise UserError("--model-kwargs num_prop=... is what the sweep varies: drop it and pass --num-props")


def _sweep(args, ratios, onnx_dir) -> int:
    from tqdm import tqdm

    from ..factory import check_batch_fits, model_data_config
    from ..images import eval_transform
    from ..runtime.inputs import parity_inputs, photos_array
    from ..workflows.sweep import SweepConfig, check_num_props, elastic_reference, run_sweep, sweep_axis
    num_props = ()
    if args.onnx:
        model, source = elastic_reference(args.onnx, args.ratios or SWEEP_RATIOS, ckpt=args.ckpt)
        args.model = source.model_name
    elif is_gtp(args.model):
        model, source = model_from_args(args, num_prop=0)   # P is set per point
        num_props = check_num_props(model, args.num_props or SWEEP_NUM_PROPS)
    else:
        model, source = model_from_args(args, keep_ratio=1.0)   # the schedule is set per ratio
    check_batch_fits(model, args.batch_size, forward_on_cpu=args.device == "cpu")
    img = int(model.patch_embed.img_size[0])
    inputs = None
    if args.parity_samples > 0 and set(args.backends) - {"torch"}:
        photos = photos_array(eval_transform(model_data_config(model)))[:args.parity_samples]
        inputs = photos
        if len(photos) < args.parity_samples:
            import numpy as np
            inputs = np.concatenate([photos, parity_inputs(img, num_random=args.parity_samples - len(photos))])
    if args.baseline_onnx:
        from ..workflows.baseline_onnx import resolve_baseline
        from ..runtime.reference import baseline_of
        from ..runtime.same_weights import check_baseline_onnx
        resolve_baseline(args.baseline_onnx, export_to="", baseline_model=baseline_of(model), model_name=args.model,
                         source=source, img_size=img,
                         check_same=lambda p: check_baseline_onnx(p, args.model, source, img))
    cfg = SweepConfig(backends=args.backends, ratios=ratios or (), num_props=num_props, batch=args.batch_size,
                      warmup=args.warmup,
                      iters=args.iters, rounds=args.rounds, threads=args.threads, device=args.device,
                      compile=args.compile, fp16=args.autocast == "fp16", onnx_dir=onnx_dir, parity_inputs=inputs,
                      calib=args.calib, exact_int8=EXACT_INT8[args.int8_kernels],
                      baseline_onnx=args.baseline_onnx,
                      elastic_onnx=args.onnx)
    axis = sweep_axis(model)
    label, against = ("P", "the plain backbone (P = 0)") if axis == "num_prop" else ("r", "keep ratio 1.0")
    bar = tqdm(total=len(num_props or ratios) * len(args.backends), desc="sweep", unit="run")
    records = run_sweep(model, args.model, source, cfg, progress=lambda r: (bar.update(), bar.set_postfix(
        {"backend": r["backend"], label: r[axis], "speedup": f"{r['speedup']:.2f}"})))
    bar.close()
    setup = records[0]["setup"]
    threads = setup.get("threads", "?")
    machine = (f"{setup.get('cpu', '?')}, {threads} thread{'' if threads == 1 else 's'}" if args.device == "cpu"
               else args.device)
    summary = _write(args, records, setup, machine, axis)
    if args.json:
        write_json(summary)
        return 0
    rows = [[r["backend"], f"{r[axis]:g}", f"{r['gmacs_executed']:.3f}", f"{r['throughput']:.1f}",
             f"{r['latency_p50_ms']:.1f}", f"{r['speedup']:.3f}", f"{r['mac_ratio']:.3f}", f"{r['efficiency']:.3f}",
             f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-",
             f"{r['top1_agreement']:.3f}" if "top1_agreement" in r else "-"] for r in records]
    print(f"{args.model} at {img} px, batch {args.batch_size}; {machine}; {args.warmup} warmup + {args.iters} timed "
          f"calls per model in {args.rounds} alternating rounds against {against}")
    print_table(rows, ["backend", label, "GMACs", "img/s", "p50 ms", "speed-up", "MAC ratio", "efficiency",
                       "max|diff|", "top-1 agr"])
    base = next((r["baseline_file"] for r in records if "baseline_file" in r), None)
    if base:
        from ..workflows.baseline_onnx import BaselineFile
        print(f"ort speed-ups are against the {BaselineFile(**base).describe()}")
    print(f"wrote {args.output}/sweep.json, sweep.csv, sweep.png")
    return 0


def _write(args, records, setup, machine, axis) -> dict:
    """Write sweep.json, sweep.csv and sweep.png into -o; returns what sweep.json holds."""
    from ..runtime.sweep_plot import plot_sweep
    out = args.output
    summary = {"model": args.model, "axis": axis, "machine": machine, "setup": setup,
               "baseline_file": next((r["baseline_file"] for r in records if "baseline_file" in r), None),
               "records": [{k: v for k, v in r.items() if k != "setup"} for r in records]}
    write_json(summary, os.path.join(out, "sweep.json"))
    with atomic_output(os.path.join(out, "sweep.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[c.format(axis=axis) for c in COLUMNS], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
    with atomic_output(os.path.join(out, "sweep.png"), suffix=".png") as tmp:
        # the paper's Table 1 has DeiT-S and LV-ViT-S at 224 px: its points mean nothing on another model
        from ..runtime.paper import paper_table1
        paper = None if axis == "num_prop" else paper_table1(args.model, args.img_size)
        plot_sweep(records, tmp, title=f"{args.model}, batch {args.batch_size}", machine=machine, paper_points=paper,
                   axis=axis)
    return summary
