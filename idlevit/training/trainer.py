"""The fine-tuning loop: distillation + cut loss, AMP on CUDA, DDP under torchrun, per-epoch validation,
atomic checkpoints, JSONL log and exact resume."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..factory import check_build_args
from ..fileio import atomic_output, make_output_dir, remove_stale_temps
from ..limits import check_count, check_finite
from ..models.schedule import KeepSchedule
from . import checkpointing as ckpt_io
from .config import (AMP_DTYPES, ATTN_MAPS, CUT_LOSSES, FEATURE_KDS, PROJECTOR_ACTS, VARIANTS, TrainConfig,
                     resume_keys)
from .data import build_datasets, build_loaders, build_mixup, resolve_num_classes
from .distributed import DistEnv, all_reduce_sum, barrier, cleanup, init_distributed
from .losses import DistillationLoss
from .projectors import build_projectors
from .student import MaskedForward, build_student, build_teacher, teacher_outputs

log = logging.getLogger("idlevit.training")
LOG_NAME = "log.jsonl"
TERMS = ("total", "ce", "kl", "feature", "cut")


@dataclass
class TrainResult:
    student: nn.Module                  # unwrapped, trained weights (eval mode)
    history: List[Dict]                 # one record per epoch, as in log.jsonl
    start: Dict                         # teacher and student accuracy before training
    output: str
    final_checkpoint: Optional[str]     # model.pth (rank 0 only; None on other ranks)
    projectors: Optional[nn.Module] = None   # --feature-kd projector-ensemble: trained, not in model.pth

    @property
    def final(self) -> Dict:
        return self.history[-1] if self.history else {}


def check_config(cfg: TrainConfig) -> None:
    """Reject bad settings before any work, with one-line errors."""
    if (cfg.data is None) == (not cfg.synthetic):
        raise UserError("pass exactly one of --data <ImageFolder root> or --synthetic")
    try:
        KeepSchedule(cfg.keep_ratio, cfg.keep_ratios)
    except ValueError as e:
        raise UserError(str(e)) from None
    for name, value, allowed in (("--cut-loss", cfg.cut_loss, CUT_LOSSES), ("--attn-map", cfg.attn_map, ATTN_MAPS),
                                 ("--variant", cfg.variant, VARIANTS), ("--amp-dtype", cfg.amp_dtype, AMP_DTYPES),
                                 ("--feature-kd", cfg.feature_kd, FEATURE_KDS),
                                 ("--projector-act", cfg.projector_act, PROJECTOR_ACTS)):
        if value not in allowed:
            raise UserError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    for name in ("epochs", "batch_size", "synthetic_size", "synthetic_val_size", "projectors"):
        check_count(getattr(cfg, name), _flag(name))
    for name in ("workers", "synthetic_clutter", "warmup_epochs"):
        check_count(getattr(cfg, name), _flag(name), minimum=0)
    if cfg.warmup_epochs and cfg.warmup_epochs >= cfg.epochs:
        raise UserError(f"--warmup-epochs {cfg.warmup_epochs} must be in [0, --epochs {cfg.epochs})")
    check_finite(cfg.lr, "--lr", positive=True)
    check_finite(cfg.clip_grad, "--clip-grad", positive=True)
    check_finite(cfg.crop_pct, "--crop-pct", positive=True)
    for name in ("min_lr", "warmup_lr", "weight_decay", "alpha", "beta", "theta", "mixup", "cutmix", "color_jitter"):
        check_finite(getattr(cfg, name), _flag(name), minimum=0.0)
    for name in ("drop_path", "hflip", "reprob", "smoothing", "mixup_prob", "mixup_switch_prob"):
        if not 0.0 <= check_finite(getattr(cfg, name), _flag(name)) <= 1.0:
            raise UserError(f"{_flag(name)} {getattr(cfg, name):g} is outside [0, 1]: pass a fraction such as 0.1")
    check_build_args(cfg.model, cfg.img_size, **cfg.model_kwargs)   # image size and model arguments


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_param_groups(optimizer, module: nn.Module, weight_decay: float) -> None:
    """`module`'s parameters as parameter groups of their own, decayed as timm decays the student's:
    matrices by `weight_decay`, biases (1-d) not at all."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer.add_param_group({"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay})
    optimizer.add_param_group({"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0})


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Independent seed per (run seed, epoch, rank): an epoch's randomness does not depend on history."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def prepare_output(cfg: TrainConfig, env: DistEnv) -> None:
    last = os.path.join(cfg.output, ckpt_io.LAST)
    if os.path.exists(last) and not cfg.resume:
        raise UserError(f"{cfg.output} already holds a run ({ckpt_io.LAST}): pass --resume to continue it, "
                        "or another --output")
    if env.is_main:
        make_output_dir(cfg.output, "--output")
        for name in (ckpt_io.LAST, ckpt_io.FINAL, LOG_NAME):   # temp files of a killed run
            remove_stale_temps(os.path.join(cfg.output, name))
    barrier(env)


def check_resume_args(saved: Dict, cfg: TrainConfig, path: str) -> None:
    """Refuse a resume whose settings differ from the run's: the result would match neither run.

    A setting that a checkpoint lacks did not exist when it was written: that run had its default."""
    now, default = dataclasses.asdict(cfg), dataclasses.asdict(TrainConfig())
    saved = {key: saved.get(key, default[key]) for key in resume_keys()}
    changed = [key for key in resume_keys() if saved[key] != now[key]]
    if changed:
        key = changed[0]
        more = f" (and {', '.join(changed[1:])})" if changed[1:] else ""
        raise UserError(f"--resume: {key} is {saved.get(key)!r} in {path} but {now[key]!r} now{more}: "
                        "pass the settings of the run being resumed, or start a new run in another --output")


def write_log(path: str, records: List[Dict]) -> None:
    """Rewrite the JSONL log (atomically) from the records the checkpoint holds."""
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")


def append_log(path: str, record: Dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def autocast_for(env: DistEnv, cfg: TrainConfig):
    use = cfg.amp if cfg.amp is not None else env.device.type == "cuda"
    if not use:
        return nullcontext, False
    dtype = getattr(torch, cfg.amp_dtype)
    return (lambda: torch.autocast(env.device.type, dtype=dtype)), dtype == torch.float16


@torch.no_grad()
def evaluate(model: nn.Module, loader, env: DistEnv, autocast=nullcontext) -> Dict[str, float]:
    """Top-1 / top-5 accuracy (%) and CE loss of `model`'s eval forward over the whole val set (all ranks)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)   # top1, top5, loss, count
    for x, y in loader:
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        with autocast():
            logits = model(x)
        logits = logits.float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hit = top == y[:, None]
        sums += torch.stack([hit[:, 0].sum(), hit.any(1).sum(),
                             nn.functional.cross_entropy(logits, y, reduction="sum"),
                             torch.tensor(len(y), device=env.device)]).double()
    all_reduce_sum(sums, env)
    model.train(was_training)
    n = max(sums[3].item(), 1.0)
    return {"top1": 100 * sums[0].item() / n, "top5": 100 * sums[1].item() / n, "loss": sums[2].item() / n}


def train_one_epoch(forward: nn.Module, teacher, loss_fn: DistillationLoss, loader, optimizer, scheduler, scaler,
                    mixup, env: DistEnv, autocast, epoch: int, num_updates: int, cfg: TrainConfig):
    """One pass over the training shard; returns (mean loss terms over all ranks, num_updates)."""
    from tqdm import tqdm
    forward.train()
    sums = torch.zeros(len(TERMS), dtype=torch.float64, device=env.device)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (env.is_main and cfg.progress),
               leave=False, dynamic_ncols=True)
    steps = 0
    for x, y in bar:
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        if mixup is not None:
            x, y = mixup(x, y)
        with autocast():
            t_logits, t_feats = teacher_outputs(teacher, x)
            logits, feats, maps, masks = forward(x)
            terms = loss_fn(logits, feats, maps, masks, y, t_logits, t_feats)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms.total).backward()
        if cfg.clip_grad:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(forward.parameters(), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        num_updates += 1
        scheduler.step_update(num_updates=num_updates)
        sums += torch.stack([getattr(terms, t).detach().float() for t in TERMS]).double()
        steps += 1
        if steps % 10 == 0 or steps == len(loader):
            means = (sums / steps).tolist()       # one sync every 10 steps, not every step
            if not math.isfinite(means[0]) and not scaler.is_enabled():
                raise UserError(f"the loss became {means[0]} in epoch {epoch + 1}: lower --lr or set --clip-grad")
            bar.set_postfix({t: f"{v:.4g}" for t, v in zip(TERMS, means)}, refresh=False)
    bar.close()
    all_reduce_sum(sums, env)
    return {t: v / (steps * env.world_size) for t, v in zip(TERMS, sums.tolist())}, num_updates


def train(cfg: TrainConfig, on_epoch_end: Optional[Callable[[int, Dict], None]] = None) -> TrainResult:
    """Fine-tune `cfg.model` as IdleViT (or the pruning baseline) with distillation from its own backbone.

    Single process, or one process per device under torchrun (DDP; only rank 0 writes). After every
    epoch: validation of the student, `last.pth` (full state, atomic) and one line of `log.jsonl`;
    at the end `model.pth` (weights, args, metrics). `on_epoch_end(epoch, record)` runs on every rank.
    """
    check_config(cfg)
    env = init_distributed(cfg.device)
    try:
        return _train(cfg, env, on_epoch_end)
    finally:
        cleanup(env)


def _train(cfg: TrainConfig, env: DistEnv, on_epoch_end) -> TrainResult:
    if cfg.batch_size % env.world_size:
        raise UserError(f"-b/--batch-size {cfg.batch_size} does not split over {env.world_size} processes: "
                        f"pass a multiple of {env.world_size}")
    per_process = cfg.batch_size // env.world_size
    if cfg.mixup_active and per_process % 2:
        raise UserError(f"Mixup/CutMix needs an even batch per process, got {per_process}: change -b or pass "
                        "--mixup 0 --cutmix 0")
    prepare_output(cfg, env)
    last_path = os.path.join(cfg.output, ckpt_io.LAST)
    log_path = os.path.join(cfg.output, LOG_NAME)
    state = None
    if cfg.resume:
        state = ckpt_io.load_training_state(last_path)
        check_resume_args(state["args"], cfg, last_path)

    num_classes = resolve_num_classes(cfg)
    student, source = build_student(cfg, num_classes, warn_random=env.is_main and not cfg.resume)
    loss_fn = DistillationLoss(cfg.alpha, cfg.beta, cfg.theta, cfg.cut_loss, cfg.mixup_active, cfg.smoothing,
                               cfg.feature_kd)
    teacher = build_teacher(cfg, num_classes).to(env.device) if loss_fn.needs_teacher else None
    projectors = None
    if cfg.feature_kd == "projector-ensemble" and cfg.beta:
        projectors = build_projectors(student, teacher, cfg.projectors, cfg.projector_act, cfg.seed).to(env.device)
    student.to(env.device)
    datasets = build_datasets(cfg, student, num_classes)
    train_loader, sampler, val_loader = build_loaders(datasets, per_process, cfg, env)
    mixup = build_mixup(cfg, num_classes)

    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    optimizer = create_optimizer_v2(student, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if projectors is not None:
        add_param_groups(optimizer, projectors, cfg.weight_decay)   # before the scheduler reads the groups
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.min_lr,
                                       warmup_lr=cfg.warmup_lr, warmup_epochs=cfg.warmup_epochs,
                                       step_on_epochs=False, updates_per_epoch=len(train_loader))
    autocast, fp16 = autocast_for(env, cfg)
    scaler = torch.amp.GradScaler(env.device.type, enabled=fp16)

    start_epoch, history, start = 0, [], {}
    if state is not None:
        student.load_state_dict(state["model"])
        if projectors is not None:
            if "projectors" not in state:
                raise UserError(f"{last_path} holds no projectors although its run used --feature-kd "
                                "projector-ensemble: the file is damaged; start a new run in another --output")
            projectors.load_state_dict(state["projectors"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history, start = state["epoch"], list(state.get("history", [])), dict(state.get("start", {}))
        ckpt_io.set_rng_states(state["rng"])
        if env.is_main:
            write_log(log_path, [start] + history)
            log.info("resuming %s at epoch %d of %d", last_path, start_epoch + 1, cfg.epochs)
        del state

    if env.is_main:
        log.info("student %s (%s, keep ratios %s) on %s, world size %d; data: %s (%d train / %d val)",
                 cfg.model, cfg.variant, [round(r, 4) for r in source.keep_ratios], env.device, env.world_size,
                 datasets.description, len(datasets.train), len(datasets.val))
    if not start:
        start = {"epoch": 0, "student": evaluate(student, val_loader, env, autocast)}
        if teacher is not None:
            start["teacher"] = evaluate(teacher, val_loader, env, autocast)
        if env.is_main:
            write_log(log_path, [start])
            log.info("before training: student top-1 %.2f%%%s", start["student"]["top1"],
                     f", teacher top-1 {start['teacher']['top1']:.2f}%" if teacher is not None else "")

    forward = MaskedForward(student, cfg.attn_map, projectors)
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel
        forward = DistributedDataParallel(forward, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
    args = dataclasses.asdict(cfg)
    num_updates = start_epoch * len(train_loader)
    for epoch in range(start_epoch, cfg.epochs):
        ckpt_io.seed_everything(epoch_seed(cfg.seed, epoch, env.rank))
        sampler.set_epoch(epoch)
        train_loader.generator.manual_seed(epoch_seed(cfg.seed, epoch, env.rank))
        scheduler.step_update(num_updates=num_updates)
        t0 = time.perf_counter()
        terms, num_updates = train_one_epoch(forward, teacher, loss_fn, train_loader, optimizer, scheduler, scaler,
                                             mixup, env, autocast, epoch, num_updates, cfg)
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train": terms,
                  "val": evaluate(student, val_loader, env, autocast), "train_s": round(seconds, 3),
                  "images_per_s": round(len(train_loader) * cfg.batch_size / seconds, 1)}
        history.append(record)
        if env.is_main:
            extra = {"history": history, "start": start}
            if projectors is not None:     # resume state only: model.pth stays the plain timm model
                extra["projectors"] = projectors.state_dict()
            ckpt_io.save_atomic(ckpt_io.training_state(student, optimizer, scheduler, scaler, epoch + 1, args,
                                                       extra), last_path)
            append_log(log_path, record)
            log.info("epoch %d/%d: loss %.4f (ce %.4f kl %.4f %s %.5f cut %.4f), val top-1 %.2f%% top-5 %.2f%%",
                     epoch + 1, cfg.epochs, terms["total"], terms["ce"], terms["kl"], cfg.feature_kd,
                     terms["feature"], terms["cut"], record["val"]["top1"], record["val"]["top5"])
        barrier(env)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)

    final = None
    if env.is_main:
        final = os.path.join(cfg.output, ckpt_io.FINAL)
        ckpt_io.save_atomic({"model": student.state_dict(), "args": args, "start": start, "history": history}, final)
        log.info("wrote %s (weights for idle-export --ckpt) and %s", final, last_path)
    barrier(env)
    return TrainResult(student.eval(), history, start, cfg.output, final, projectors)
