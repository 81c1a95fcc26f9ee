"""Datasets (ImageFolder `train/` + `val/`, or the synthetic task), timm transforms, Mixup and loaders."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import UserError
from .config import TrainConfig
from .distributed import DistEnv, ShardSampler
from .synthetic import SyntheticObjects

SYNTHETIC_CLASSES = 10
VAL_DIRS = ("val", "validation")
PRECOMPUTE_BYTES = 1 << 30   # synthetic sets whose transformed tensors fit in this are transformed once


@dataclass
class Datasets:
    train: Dataset
    val: Dataset
    num_classes: int
    description: str


def folder_classes(root: str) -> Tuple[str, str, List[str]]:
    """(train dir, val dir, class names) of an ImageFolder root, or a one-line UserError."""
    if not os.path.isdir(root):
        raise UserError(f"--data {root} is not a folder: pass an ImageFolder root holding train/ and val/")
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):
        raise UserError(f"--data {root} has no train/ folder: it must hold train/<class>/*.jpg and "
                        "val/<class>/*.jpg (ImageFolder layout)")
    val_dir = next((os.path.join(root, d) for d in VAL_DIRS if os.path.isdir(os.path.join(root, d))), None)
    if val_dir is None:
        raise UserError(f"--data {root} has no val/ folder: add val/<class>/*.jpg beside train/")
    classes = sorted(d.name for d in os.scandir(train_dir) if d.is_dir())
    unknown = sorted({d.name for d in os.scandir(val_dir) if d.is_dir()} - set(classes))
    if unknown:
        raise UserError(f"{val_dir} has classes that {train_dir} lacks ({', '.join(unknown[:3])}): "
                        "train/ and val/ need the same class folders")
    return train_dir, val_dir, classes


def resolve_num_classes(cfg: TrainConfig) -> int:
    """Classes of the task; --num-classes must agree with an ImageFolder's class folders."""
    if cfg.synthetic:
        return cfg.num_classes or SYNTHETIC_CLASSES
    _, _, classes = folder_classes(cfg.data)
    if len(classes) < 2:
        raise UserError(f"{os.path.join(cfg.data, 'train')} has {len(classes)} class folders: ImageFolder needs "
                        "one sub-folder per class (at least 2) holding the images")
    if cfg.num_classes is not None and cfg.num_classes != len(classes):
        raise UserError(f"--num-classes {cfg.num_classes} but {cfg.data}/train has {len(classes)} class folders: "
                        "drop --num-classes or fix the data")
    return len(classes)


def build_transforms(cfg: TrainConfig, model):
    """timm train (DeiT augmentation unless --no-aug) and eval transforms at the model's input size."""
    from timm.data import create_transform, resolve_data_config
    from ..factory import image_size
    size = image_size(model)
    data_cfg = resolve_data_config({}, model=model)
    # the synthetic images are rendered at the input size; cropping would cut the object off
    crop_pct = cfg.crop_pct if cfg.crop_pct is not None else (1.0 if cfg.synthetic else data_cfg["crop_pct"])
    train_tf = create_transform((3, size, size), is_training=True, no_aug=cfg.no_aug, hflip=cfg.hflip,
                                color_jitter=cfg.color_jitter, auto_augment=cfg.aa or None,
                                interpolation="bicubic", mean=data_cfg["mean"], std=data_cfg["std"],
                                re_prob=cfg.reprob, re_mode=cfg.remode, re_count=1)
    val_tf = create_transform((3, size, size), is_training=False, interpolation=data_cfg["interpolation"],
                              mean=data_cfg["mean"], std=data_cfg["std"], crop_pct=crop_pct)
    return allow_zero_bit_posterize(train_tf), val_tf


def posterize_any_bits(img, bits_to_keep, **_):
    """timm's posterize, but 0 bits gives the black image it gave before Pillow 11 started to refuse it."""
    from PIL import Image, ImageOps
    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def allow_zero_bit_posterize(transform):
    """DeiT's RandAugment ('rand-m9-mstd0.5-inc1') samples magnitude 10 now and then, which asks for
    0-bit posterize; current Pillow raises ValueError for that and would stop the run."""
    from timm.data.auto_augment import RandAugment
    for t in getattr(transform, "transforms", []):
        if isinstance(t, RandAugment):
            for op in t.ops:
                if op.name.startswith("Posterize"):
                    op.aug_fn = posterize_any_bits
    return transform


def build_datasets(cfg: TrainConfig, model, num_classes: int) -> Datasets:
    from ..factory import image_size
    train_tf, val_tf = build_transforms(cfg, model)
    if cfg.synthetic:
        size = image_size(model)
        common = dict(num_classes=num_classes, img_size=size, clutter=cfg.synthetic_clutter)
        small = 3 * size * size * 4 * (cfg.synthetic_size + cfg.synthetic_val_size) <= PRECOMPUTE_BYTES
        try:
            train = SyntheticObjects(cfg.synthetic_size, seed=2 * cfg.synthetic_seed, transform=train_tf,
                                     precompute=small and cfg.no_aug, **common)
            val = SyntheticObjects(cfg.synthetic_val_size, seed=2 * cfg.synthetic_seed + 1, transform=val_tf,
                                   precompute=small, **common)
        except ValueError as e:
            raise UserError(str(e)) from None
        return Datasets(train, val, num_classes, f"synthetic objects {size}px, {num_classes} classes")
    from timm.data import create_dataset
    train_dir, val_dir, classes = folder_classes(cfg.data)
    class_map = {c: i for i, c in enumerate(classes)}
    sets = []
    for folder, tf in ((train_dir, train_tf), (val_dir, val_tf)):
        try:
            ds = create_dataset("", root=folder, search_split=False, class_map=class_map, transform=tf)
        except RuntimeError as e:  # timm: "Found 0 images in subfolders of ..."
            raise UserError(f"no images in {folder} ({str(e).split('.')[0]}): put .jpg/.png files in one "
                            "sub-folder per class") from None
        if len(ds) == 0:
            raise UserError(f"no images in {folder}: put .jpg/.png files in one sub-folder per class")
        sets.append(ds)
    return Datasets(sets[0], sets[1], len(classes), f"ImageFolder {cfg.data}, {len(classes)} classes")


def build_mixup(cfg: TrainConfig, num_classes: int):
    """timm Mixup/CutMix with label smoothing in the soft targets, or None when off."""
    if not cfg.mixup_active:
        return None
    from timm.data import Mixup
    return Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob,
                 switch_prob=cfg.mixup_switch_prob, mode="batch", label_smoothing=cfg.smoothing,
                 num_classes=num_classes)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it
    seed = torch.initial_seed() % (2 ** 32)
    np.random.seed(seed)
    random.seed(seed)


def build_loaders(datasets: Datasets, per_process_batch: int, cfg: TrainConfig, env: DistEnv):
    """Train loader (DistributedSampler, seeded per epoch, full batches only) and sharded val loader."""
    if len(datasets.train) < per_process_batch * env.world_size:
        raise UserError(f"the training set has {len(datasets.train)} images, fewer than one global batch of "
                        f"{per_process_batch * env.world_size}: lower -b/--batch-size")
    sampler = DistributedSampler(datasets.train, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    pin = env.device.type == "cuda"
    train = DataLoader(datasets.train, batch_size=per_process_batch, sampler=sampler, num_workers=cfg.workers,
                       drop_last=True, pin_memory=pin, worker_init_fn=_seed_worker,
                       generator=torch.Generator(), persistent_workers=False)
    val = DataLoader(datasets.val, batch_size=per_process_batch,
                     sampler=ShardSampler(len(datasets.val), env.rank, env.world_size),
                     num_workers=cfg.workers, pin_memory=pin)
    return train, sampler, val
