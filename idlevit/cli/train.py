"""`idle-train`: fine-tune IdleViT with distillation + token cut loss (one process, or DDP under torchrun)."""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from ..training.config import AMP_DTYPES, ATTN_MAPS, CUT_LOSSES, FEATURE_KDS, PROJECTOR_ACTS, VARIANTS, TrainConfig
from .common import ArgumentParser, add_json_flag, add_model_args, print_table, run_cli, write_json

D = TrainConfig()   # defaults live in one place: the paper's recipe


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="idle-train", description="Fine-tune IdleViT from a ViT checkpoint: CE + alpha*KL to "
                       "the frozen backbone + beta*feature distillation (MSE of [CLS] features, or a projector "
                       "ensemble) + theta*token cut loss (paper eq. 12). "
                       "Under torchrun it runs DDP. Writes <output>/last.pth, model.pth and log.jsonl.")
    add_model_args(p, keep_ratio=D.keep_ratio)
    p._option_string_actions["--seed"].help = (f"seed of the random weights without --ckpt, of data order, "
                                               f"augmentation and drop-path (default: {D.seed})")
    p._option_string_actions["--num-classes"].help = ("classifier classes; must match --ckpt's head "
                                                      "(default: the class folders of --data; 10 for --synthetic)")
    g = p.add_argument_group("student")
    g.add_argument("--variant", choices=VARIANTS, default=D.variant,
                   help="idle = IdleViT; prune = the same selection but unselected tokens are dropped "
                        f"(EViT/DynamicViT without fusion, for comparison) (default: {D.variant})")
    g.add_argument("--drop-path", type=float, default=D.drop_path,
                   help=f"stochastic depth rate of the student (default: {D.drop_path})")

    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", default=None, help="ImageFolder root with train/<class>/ and val/<class>/ (default: none)")
    src.add_argument("--synthetic", action="store_true",
                     help="seeded in-memory task: a small class-coloured shape among grey clutter (default: off)")
    g.add_argument("--synthetic-size", type=int, default=D.synthetic_size,
                   help=f"synthetic training images (default: {D.synthetic_size})")
    g.add_argument("--synthetic-val-size", type=int, default=D.synthetic_val_size,
                   help=f"synthetic validation images (default: {D.synthetic_val_size})")
    g.add_argument("--synthetic-seed", type=int, default=D.synthetic_seed,
                   help=f"seed of the synthetic images (default: {D.synthetic_seed})")
    g.add_argument("--synthetic-clutter", type=int, default=D.synthetic_clutter,
                   help=f"grey distractor shapes per synthetic image (default: {D.synthetic_clutter})")
    g.add_argument("-j", "--workers", type=int, default=D.workers,
                   help=f"data-loading processes per training process (default: {D.workers})")
    g.add_argument("--crop-pct", type=float, default=None,
                   help="validation centre-crop fraction (default: the model's; 1.0 for --synthetic)")

    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, default=D.epochs, help=f"training epochs (default: {D.epochs})")
    g.add_argument("-b", "--batch-size", type=int, default=D.batch_size,
                   help=f"global batch size, split evenly over torchrun processes (default: {D.batch_size})")
    g.add_argument("--opt", default=D.opt, help=f"timm optimizer name (default: {D.opt})")
    g.add_argument("--lr", type=float, default=D.lr, help=f"peak learning rate (default: {D.lr:g})")
    g.add_argument("--min-lr", type=float, default=D.min_lr, help=f"cosine floor (default: {D.min_lr:g})")
    g.add_argument("--warmup-epochs", type=int, default=D.warmup_epochs,
                   help=f"linear warmup epochs (default: {D.warmup_epochs})")
    g.add_argument("--warmup-lr", type=float, default=D.warmup_lr,
                   help=f"learning rate at the start of warmup (default: {D.warmup_lr:g})")
    g.add_argument("--weight-decay", type=float, default=D.weight_decay,
                   help=f"AdamW weight decay, none on biases/norms/tokens (default: {D.weight_decay})")
    g.add_argument("--clip-grad", type=float, default=None, help="gradient-norm clipping (default: off)")

    g = p.add_argument_group("objective (L = CE + alpha*KL + beta*feature term + theta*cut)")
    g.add_argument("--alpha", type=float, default=D.alpha, help=f"KL-to-teacher weight (default: {D.alpha:g})")
    g.add_argument("--beta", type=float, default=D.beta,
                   help=f"weight of the feature term (--feature-kd) (default: {D.beta:g})")
    g.add_argument("--feature-kd", choices=FEATURE_KDS, default=D.feature_kd,
                   help="feature term: mse = MSE of the L2-normalised [CLS] features (paper); projector-ensemble = "
                        "1 - cos(teacher feature, mean of --projectors linear projections of the student's), "
                        "the projectors training with the student and kept out of model.pth; its published "
                        f"weight is 25 (default: {D.feature_kd})")
    g.add_argument("--projectors", type=int, default=D.projectors,
                   help=f"projectors in the ensemble of --feature-kd projector-ensemble (default: {D.projectors})")
    g.add_argument("--projector-act", choices=PROJECTOR_ACTS, default=D.projector_act,
                   help="activation after each projector: relu as published, none for post-norm ViT features, "
                        f"which have negative entries (default: {D.projector_act})")
    g.add_argument("--theta", type=float, default=D.theta, help=f"token cut loss weight (default: {D.theta:g})")
    g.add_argument("--cut-loss", choices=CUT_LOSSES, default=D.cut_loss,
                   help=f"cut-loss terms: paper = inter + intra (default: {D.cut_loss})")
    g.add_argument("--attn-map", choices=ATTN_MAPS, default=D.attn_map,
                   help="attention map W of the cut loss: mean of per-head softmax (paper) or softmax of the "
                        f"head-mean logits (authors' code) (default: {D.attn_map})")

    g = p.add_argument_group("augmentation (DeiT recipe)")
    g.add_argument("--no-aug", action="store_true",
                   help="no training augmentation at all: no crop/flip/RandAugment/erasing/Mixup/CutMix (default: off)")
    g.add_argument("--aa", default=D.aa, help=f"timm auto-augment policy, 'none' for off (default: {D.aa})")
    g.add_argument("--hflip", type=float, default=D.hflip, help=f"horizontal flip probability (default: {D.hflip})")
    g.add_argument("--color-jitter", type=float, default=D.color_jitter,
                   help=f"colour jitter without --aa (default: {D.color_jitter})")
    g.add_argument("--reprob", type=float, default=D.reprob, help=f"random erasing probability (default: {D.reprob})")
    g.add_argument("--remode", default=D.remode, help=f"random erasing mode (default: {D.remode})")
    g.add_argument("--smoothing", type=float, default=D.smoothing, help=f"label smoothing (default: {D.smoothing})")
    g.add_argument("--mixup", type=float, default=D.mixup, help=f"Mixup alpha, 0 = off (default: {D.mixup})")
    g.add_argument("--cutmix", type=float, default=D.cutmix, help=f"CutMix alpha, 0 = off (default: {D.cutmix})")
    g.add_argument("--mixup-prob", type=float, default=D.mixup_prob,
                   help=f"probability of mixing a batch (default: {D.mixup_prob})")
    g.add_argument("--mixup-switch-prob", type=float, default=D.mixup_switch_prob,
                   help=f"probability of CutMix instead of Mixup (default: {D.mixup_switch_prob})")

    g = p.add_argument_group("run")
    g.add_argument("-o", "--output", default=D.output,
                   help=f"run folder for last.pth, model.pth and log.jsonl (default: {D.output})")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --output from its last.pth, with the same settings (default: off)")
    g.add_argument("--device", choices=("cpu", "cuda"), default=None, help="device (default: cuda when available)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA, off on CPU)")
    g.add_argument("--amp-dtype", choices=AMP_DTYPES, default=D.amp_dtype,
                   help=f"autocast dtype; float16 uses a GradScaler (default: {D.amp_dtype})")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (default: bars on rank 0)")
    add_json_flag(g, "the epochs and where the weights went")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["model_kwargs"] = dict(args.model_kwargs)
    values["aa"] = None if str(args.aa).lower() in ("none", "") else args.aa
    values["progress"] = not args.no_progress
    return TrainConfig(**values)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    from ..training import train
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    resume, log = os.path.join(result.output, "last.pth"), os.path.join(result.output, "log.jsonl")
    if args.json:
        write_json({"before": result.start, "history": result.history, "weights": result.final_checkpoint,
                    "resume_state": resume, "log": log})
        return 0
    rows = [[r["epoch"], f"{r['train']['total']:.4f}", f"{r['val']['top1']:.2f}", f"{r['val']['top5']:.2f}",
             f"{r['lr']:.3g}", f"{r['images_per_s']:.0f}"] for r in result.history]
    print_table(rows, ["epoch", "train loss", "val top-1 %", "val top-5 %", "lr", "img/s"])
    start = result.start
    print(f"before fine-tuning: student top-1 {start['student']['top1']:.2f}%"
          + (f", teacher (no idling) top-1 {start['teacher']['top1']:.2f}%" if "teacher" in start else ""))
    print(f"weights: {result.final_checkpoint} (loads with idle-export --ckpt); resume state: {resume}; log: {log}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
