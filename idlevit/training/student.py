"""Student (IdleViT or the pruning baseline) and frozen teacher (the same backbone, no idling)."""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch
from torch import nn

from ..errors import UserError
from ..factory import ModelSource, create_idlevit
from .config import TrainConfig


def build_student(cfg: TrainConfig, num_classes: int, warn_random: bool = True) -> Tuple[nn.Module, ModelSource]:
    """IdleViT at `cfg.keep_ratio` (or the pruning variant), from `cfg.ckpt` or seeded weights, in train mode."""
    kwargs = dict(cfg.model_kwargs)
    if cfg.drop_path:
        kwargs["drop_path_rate"] = cfg.drop_path
    if cfg.variant == "prune":
        from ..models.pruning import make_prune
        model, source = create_idlevit(cfg.model, 1.0, None, cfg.ckpt, cfg.img_size, cfg.seed, num_classes,
                                       warn_random=warn_random, **kwargs)
        try:
            make_prune(model, cfg.keep_ratio, cfg.keep_ratios)
        except ValueError as e:
            raise UserError(str(e)) from None
        source.keep_ratios = list(model.keep_ratios)
    else:
        model, source = create_idlevit(cfg.model, cfg.keep_ratio, cfg.keep_ratios, cfg.ckpt, cfg.img_size,
                                       cfg.seed, num_classes, warn_random=warn_random, **kwargs)
    return model.train(), source


def build_teacher(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """The backbone without idling (keep ratio 1.0), same weights as the student, frozen in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # the student already warned about random weights
        teacher, _ = create_idlevit(cfg.model, 1.0, None, cfg.ckpt, cfg.img_size, cfg.seed, num_classes,
                                    warn_random=False, **cfg.model_kwargs)
    teacher.requires_grad_(False)
    return teacher.eval()


class MaskedForward(nn.Module):
    """`model.forward_masked` as a module forward returning a tuple, so DDP can wrap it.

    DDP synchronises gradients only for computations run through its own forward, and walks
    tuples (not dataclasses) for tensors. So the training-only projectors of feature distillation
    run here too: the features returned are the projected ones when `projectors` is given.
    """

    def __init__(self, model: nn.Module, attn_map: str = "mean_softmax", projectors: Optional[nn.Module] = None):
        super().__init__()
        self.model = model
        self.attn_map = attn_map
        self.projectors = projectors

    def forward(self, x: torch.Tensor):
        out = self.model.forward_masked(x, attn_map=self.attn_map)
        features = out.features if self.projectors is None else self.projectors(out.features)
        return out.logits, features, out.attn_maps, out.masks


@torch.no_grad()
def teacher_outputs(teacher: Optional[nn.Module], x: torch.Tensor):
    """(logits, final [CLS] feature) of the frozen teacher, or (None, None) without one."""
    if teacher is None:
        return None, None
    out = teacher.forward_masked(x)   # keep ratio 1.0: timm's plain blocks, no maps
    return out.logits, out.features
