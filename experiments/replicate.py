"""Small replication of the IdleViT paper's Tables 2 and 4 on the synthetic task, on CPU in minutes.

Per seed: train a plain ViT from scratch (the stand-in for the pretrained DeiT), then, starting from
its weights and for the same fine-tuning budget, train IdleViT with and without the token cut loss and
the token-pruning variant (same selection, unselected tokens dropped) at each keep ratio. Accuracy
before fine-tuning comes from the same runs (the trainer evaluates the student before epoch 1).

    python experiments/replicate.py --seeds 0 1 2 --json experiments/replication.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's idlevit, also without install

import torch  # noqa: E402

from idlevit.training import TrainConfig, train  # noqa: E402


def parse_args(argv=None):
    p = task_parser(__doc__.split("\n\n")[0])
    p.add_argument("--keep-ratios", type=float, nargs="+", default=[0.7, 0.5], help="keep ratios (default: 0.7 0.5)")
    return p.parse_args(argv)


def task_parser(description: str) -> argparse.ArgumentParser:
    """The flags every synthetic-task replication shares: seeds, task, ViT shape, baseline and fine-tune budget."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    p.add_argument("--img-size", type=int, default=48, help="image size (default: 48)")
    p.add_argument("--model-kwargs", default="patch_size=8,embed_dim=48,depth=4,num_heads=3",
                   help="ViT shape on deit_tiny (default: patch_size=8,embed_dim=48,depth=4,num_heads=3)")
    p.add_argument("--classes", type=int, default=10, help="synthetic classes (default: 10)")
    p.add_argument("--train-size", type=int, default=5000, help="synthetic training images (default: 5000)")
    p.add_argument("--val-size", type=int, default=1000, help="synthetic validation images (default: 1000)")
    p.add_argument("--base-epochs", type=int, default=14, help="epochs of the baseline ViT (default: 14)")
    p.add_argument("--base-lr", type=float, default=2e-3, help="baseline peak lr (default: 2e-3)")
    p.add_argument("--ft-epochs", type=int, default=2, help="fine-tuning epochs of every variant (default: 2)")
    p.add_argument("--ft-lr", type=float, default=2e-4, help="fine-tuning peak lr (default: 2e-4)")
    p.add_argument("-b", "--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--work", default=None, help="folder for the runs' checkpoints (default: a temporary folder)")
    p.add_argument("--json", default=None, help="write every number to this JSON file (default: none)")
    return p


def shape_kwargs(text: str) -> dict:
    return {k: int(v) for k, v in (item.split("=") for item in text.split(","))}


def base_config(args, seed: int, output: str, **overrides) -> TrainConfig:
    values = dict(model="deit_tiny_patch16_224", model_kwargs=shape_kwargs(args.model_kwargs),
                  img_size=args.img_size, num_classes=args.classes, seed=seed, synthetic=True,
                  synthetic_size=args.train_size, synthetic_val_size=args.val_size, synthetic_seed=0,
                  workers=0, progress=False, no_aug=True, smoothing=0.1, drop_path=0.0,
                  batch_size=args.batch_size, output=output)
    values.update(overrides)
    return TrainConfig(**values)


def run(cfg: TrainConfig, label: str, times: dict):
    t0 = time.perf_counter()
    result = train(cfg)
    times[label] = round(time.perf_counter() - t0, 1)
    print(f"  {label:<28} {times[label]:6.1f} s   before {result.start['student']['top1']:6.2f}%   "
          f"after {result.final['val']['top1']:6.2f}%", flush=True)
    return result


def train_baseline(args, seed: int, folder: str, times: dict):
    """The plain ViT from scratch, CE only: the fine-tuning runs' starting point and teacher."""
    return run(base_config(args, seed, os.path.join(folder, "base"), keep_ratio=1.0, epochs=args.base_epochs,
                           lr=args.base_lr, min_lr=1e-5, warmup_epochs=1, alpha=0.0, beta=0.0, theta=0.0),
               "baseline ViT (from scratch)", times)


def executed_mmacs(args, variant: str, keep_ratio: float) -> float:
    """Executed MMACs per image of the eval forward (FlopCounterMode), for the table."""
    from idlevit.runtime.macs import count_executed_macs
    from idlevit.training.student import build_student
    cfg = base_config(args, 0, "", keep_ratio=keep_ratio, variant=variant)
    model, _ = build_student(cfg, args.classes, warn_random=False)
    return count_executed_macs(model.eval(), args.img_size) / 1e6


def outcome(res) -> dict:
    """Top-1 of one fine-tuning run before and after, and of its teacher, as the tables read them."""
    return {"before": res.start["student"]["top1"], "after": res.final["val"]["top1"],
            "teacher": res.start["teacher"]["top1"]}


def over_seeds(args, prefix: str, fine_tune) -> dict:
    """Per seed: the plain ViT from scratch (`train_baseline`), then `fine_tune(seed, folder, ckpt, times,
    per_seed)` from its weights; the work folder is removed afterwards, also on failure, unless `--work` names one."""
    work = args.work or tempfile.mkdtemp(prefix=prefix)
    results = {"seeds": {}, "times_s": {}}
    try:
        for seed in args.seeds:
            print(f"seed {seed}", flush=True)
            times = results["times_s"].setdefault(str(seed), {})
            per_seed = results["seeds"][str(seed)] = {}
            folder = os.path.join(work, f"seed{seed}")
            base = train_baseline(args, seed, folder, times)
            per_seed["baseline"] = base.final["val"]["top1"]
            fine_tune(seed, folder, base.final_checkpoint, times, per_seed)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return results


def replicate(args) -> dict:
    def fine_tune(seed, folder, ckpt, times, per_seed):
        # control: the plain ViT fine-tuned the same way, so the gain of extra training alone is visible
        res = run(base_config(args, seed, os.path.join(folder, "full_r1.0"), ckpt=ckpt, keep_ratio=1.0,
                              cut_loss="none", epochs=args.ft_epochs, lr=args.ft_lr, min_lr=args.ft_lr / 20),
                  "plain ViT r=1.0 (control)", times)
        per_seed["full_r1.0"] = outcome(res)
        for r in args.keep_ratios:
            for name, variant, cut in (("idle_cut", "idle", "paper"), ("idle_nocut", "idle", "none"),
                                       ("prune", "prune", "none")):
                cfg = base_config(args, seed, os.path.join(folder, f"{name}_r{r}"), ckpt=ckpt, keep_ratio=r,
                                  variant=variant, cut_loss=cut, epochs=args.ft_epochs, lr=args.ft_lr,
                                  min_lr=args.ft_lr / 20)
                per_seed[f"{name}_r{r}"] = outcome(run(cfg, f"{name} r={r}", times))

    results = over_seeds(args, "idlevit-replicate-", fine_tune)
    results["mmacs"] = {f"{v}_r{r}": executed_mmacs(args, v, r) for v in ("idle", "prune")
                        for r in [1.0] + list(args.keep_ratios)}
    return results


def stat(values) -> str:
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:5.2f} ± {spread:4.2f}"


def diff(a, b):
    return [x - y for x, y in zip(a, b)]


def tables(results: dict, args) -> str:
    seeds = list(results["seeds"].values())
    col = lambda key, when: [s[key][when] for s in seeds]  # noqa: E731
    base = [s["baseline"] for s in seeds]
    lines = [f"Table 2 analogue: top-1 % on the synthetic task (mean ± std over seeds {args.seeds})", "",
             "| keep ratio | MMACs idle / prune | IdleViT, no fine-tune | prune, no fine-tune "
             "| IdleViT fine-tuned (full loss) | prune fine-tuned | idle - prune (paired by seed) "
             "| idle - prune, both without cut loss |",
             "|---|---|---|---|---|---|---|---|",
             f"| 1.0 (baseline ViT) | {results['mmacs']['idle_r1.0']:.2f} / {results['mmacs']['prune_r1.0']:.2f} "
             f"| {stat(base)} | {stat(base)} | {stat(col('full_r1.0', 'after'))} (control) | – | – | – |"]
    for r in args.keep_ratios:
        lines.append(f"| {r} | {results['mmacs'][f'idle_r{r}']:.2f} / {results['mmacs'][f'prune_r{r}']:.2f} "
                     f"| {stat(col(f'idle_cut_r{r}', 'before'))} | {stat(col(f'prune_r{r}', 'before'))} "
                     f"| {stat(col(f'idle_cut_r{r}', 'after'))} | {stat(col(f'prune_r{r}', 'after'))} "
                     f"| {stat(diff(col(f'idle_cut_r{r}', 'after'), col(f'prune_r{r}', 'after')))} "
                     f"| {stat(diff(col(f'idle_nocut_r{r}', 'after'), col(f'prune_r{r}', 'after')))} |")
    lines += ["", "Table 4 analogue: IdleViT top-1 % after fine-tuning, token cut loss off / on", "",
              "| keep ratio | cut loss off | cut loss on (paper, theta=20) | on - off |", "|---|---|---|---|"]
    for r in args.keep_ratios:
        off, on = col(f"idle_nocut_r{r}", "after"), col(f"idle_cut_r{r}", "after")
        lines.append(f"| {r} | {stat(off)} | {stat(on)} | {stat(diff(on, off))} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_experiment(parse_args(argv), replicate, tables)


def run_experiment(args, replicate_fn, tables_fn) -> int:
    """Run `replicate_fn(args)`, print `tables_fn(results, args)` with the wall and CPU time, write the JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.simplefilter("ignore")            # the baseline starts from seeded random weights on purpose
    torch.set_num_threads(args.threads)
    t0, cpu0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()
    results = replicate_fn(args)
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    results["cpu_s"] = round(time.process_time() - cpu0, 1)     # the machine is shared: CPU time is the cost
    results["load_average"] = {"start": [round(x, 2) for x in load0], "end": [round(x, 2) for x in os.getloadavg()]}
    results["machine"] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpu_count": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__}
    results["args"] = vars(args)
    text = tables_fn(results, args)
    print()
    print(text)
    print(f"\nwall time {results['wall_s'] / 60:.1f} min (CPU time {results['cpu_s'] / 60:.1f} min) on "
          f"{results['machine']['processor']}, {args.threads} torch thread(s), {os.cpu_count()} CPUs; "
          f"load average {results['load_average']['start']} at start, {results['load_average']['end']} at end")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({**results, "table": text}, f, indent=2)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
