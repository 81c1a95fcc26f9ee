"""Feature distillation at toy scale: KD + MSE (IdleViT's objective) against KD + projector ensemble
(Chen et al., NeurIPS 2022) with and without the ReLU, on the synthetic task, on CPU.

Per seed: train a plain ViT from scratch (the teacher, as in replicate.py), then fine-tune IdleViT at one
keep ratio from its weights three times, for the same budget, changing only the feature term. The cut
loss is off in all three, so the feature term is the only difference.

    python experiments/replicate_feature_kd.py --seeds 0 1 2 --json experiments/results/feature_kd.json
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's idlevit, also without install
sys.path.insert(0, str(Path(__file__).resolve().parent))       # replicate.py: the same baseline and table helpers

from replicate import base_config, diff, outcome, over_seeds, run, run_experiment, stat, task_parser  # noqa: E402

# name -> (--feature-kd, --projector-act, --beta)
ARMS = {"kd_mse": ("mse", "relu", "beta_mse"), "kd_pe_relu": ("projector-ensemble", "relu", "beta_pe"),
        "kd_pe_none": ("projector-ensemble", "none", "beta_pe")}


def parse_args(argv=None):
    p = task_parser(__doc__.split("\n\n")[0])
    p.add_argument("--keep-ratio", type=float, default=0.5, help="IdleViT keep ratio (default: 0.5)")
    p.add_argument("--alpha", type=float, default=5.0, help="KL weight of every arm (default: 5)")
    p.add_argument("--beta-mse", type=float, default=500.0, help="MSE weight, IdleViT's (default: 500)")
    p.add_argument("--beta-pe", type=float, default=25.0, help="projector-ensemble weight, PEFD's (default: 25)")
    p.add_argument("--projectors", type=int, default=3, help="projectors in the ensemble (default: 3)")
    return p.parse_args(argv)


def replicate(args) -> dict:
    def fine_tune(seed, folder, ckpt, times, per_seed):
        for name, (feature_kd, act, beta) in ARMS.items():
            cfg = base_config(args, seed, os.path.join(folder, name), ckpt=ckpt,
                              keep_ratio=args.keep_ratio, cut_loss="none", theta=0.0, alpha=args.alpha,
                              beta=getattr(args, beta), feature_kd=feature_kd, projectors=args.projectors,
                              projector_act=act, epochs=args.ft_epochs, lr=args.ft_lr, min_lr=args.ft_lr / 20)
            res = run(cfg, f"{name} r={args.keep_ratio}", times)
            per_seed[name] = {**outcome(res), "feature_term": [r["train"]["feature"] for r in res.history]}

    return over_seeds(args, "idlevit-feature-kd-", fine_tune)


def table(results: dict, args) -> str:
    seeds = list(results["seeds"].values())
    after = {name: [s[name]["after"] for s in seeds] for name in ARMS}
    lines = [f"IdleViT r={args.keep_ratio} fine-tuned {args.ft_epochs} epochs, top-1 % on the synthetic task "
             f"(mean ± sample sd over seeds {args.seeds}; differences paired by seed)", "",
             "| baseline ViT (teacher) | IdleViT, no fine-tune | KD + MSE | KD + PE (ReLU) | KD + PE (no ReLU) "
             "| PE ReLU - MSE | PE no-ReLU - MSE | PE no-ReLU - PE ReLU |",
             "|---|---|---|---|---|---|---|---|",
             f"| {stat([s['baseline'] for s in seeds])} | {stat([s['kd_mse']['before'] for s in seeds])} "
             f"| {stat(after['kd_mse'])} | {stat(after['kd_pe_relu'])} | {stat(after['kd_pe_none'])} "
             f"| {stat(diff(after['kd_pe_relu'], after['kd_mse']))} "
             f"| {stat(diff(after['kd_pe_none'], after['kd_mse']))} "
             f"| {stat(diff(after['kd_pe_none'], after['kd_pe_relu']))} |", "",
             "per seed (after fine-tuning): " + "; ".join(
                 f"seed {seed}: " + ", ".join(f"{name} {s[name]['after']:.2f}" for name in ARMS)
                 for seed, s in results["seeds"].items())]
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_experiment(parse_args(argv), replicate, table)


if __name__ == "__main__":
    raise SystemExit(main())
