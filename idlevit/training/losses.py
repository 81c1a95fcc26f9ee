"""IdleViT fine-tuning objective (paper eq. 12): CE + a*KL to the teacher + b*feature term + t*token cut
loss, with every term returned for logging. The feature term is the paper's MSE of [CLS] features or the
projector ensemble's cosine distance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.cut_loss import TokenCutLoss
from .projectors import cosine_distance


@dataclass
class LossTerms:
    """The total loss (for backward) and its unweighted terms (for logging)."""
    total: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor
    feature: torch.Tensor     # MSE or projector-ensemble cosine distance, whichever the loss computes
    cut: torch.Tensor

    def detached(self) -> Dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in ("total", "ce", "kl", "feature", "cut")}


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL at temperature 1 between the teacher's and the student's class distributions, as in
    DeiT's soft distillation: `kl_div(log p_s, log p_t, batchmean, log_target=True)`."""
    return F.kl_div(F.log_softmax(student_logits.float(), -1), F.log_softmax(teacher_logits.float(), -1),
                    reduction="batchmean", log_target=True)


def feature_mse(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """MSE (mean over batch and channels) of the L2-normalised final [CLS] features."""
    return F.mse_loss(F.normalize(student_features.float(), dim=-1), F.normalize(teacher_features.float(), dim=-1))


def classification_loss(mixup_active: bool, smoothing: float) -> nn.Module:
    """Soft-target CE under Mixup/CutMix (the targets carry the smoothing), else label-smoothed CE."""
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    if mixup_active:
        return SoftTargetCrossEntropy()
    if smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=smoothing)
    return nn.CrossEntropyLoss()


# --feature-kd: how the student's feature is compared with the teacher's. For "projector-ensemble" the
# student's feature has already gone through the projectors (they train with it, inside its forward)
FEATURE_LOSSES = {"mse": feature_mse, "projector-ensemble": cosine_distance}


class DistillationLoss(nn.Module):
    """L = CE(student, y) + alpha*KL + beta*feature term + theta*L_cut (docs/design.md §1.5).

    Args:
        alpha, beta, theta: weights of the KL, feature and cut-loss terms (paper: 5, 500, 20).
        cut_loss: "paper" (inter + intra), "inter", "intra" or "none".
        mixup_active: targets are soft (Mixup/CutMix), so CE takes probabilities.
        smoothing: label smoothing when targets are hard.
        feature_kd: "mse" (the paper's) or "projector-ensemble" (1 - cos of the projected feature).
    A term whose weight is 0 is neither computed nor needs its inputs (a teacher, attention maps).
    """

    def __init__(self, alpha: float = 5.0, beta: float = 500.0, theta: float = 20.0, cut_loss: str = "paper",
                 mixup_active: bool = False, smoothing: float = 0.0, feature_kd: str = "mse"):
        super().__init__()
        if feature_kd not in FEATURE_LOSSES:
            raise ValueError(f"feature_kd {feature_kd!r} is not one of {', '.join(FEATURE_LOSSES)}")
        self.alpha, self.beta, self.theta = alpha, beta, theta
        self.feature_loss = FEATURE_LOSSES[feature_kd]
        self.base = classification_loss(mixup_active, smoothing)
        self.cut = TokenCutLoss(cut_loss)

    @property
    def needs_teacher(self) -> bool:
        return self.alpha != 0 or self.beta != 0

    def forward(self, logits: torch.Tensor, features: torch.Tensor, attn_maps: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor], target: torch.Tensor,
                teacher_logits: Optional[torch.Tensor] = None,
                teacher_features: Optional[torch.Tensor] = None) -> LossTerms:
        zero = logits.new_zeros((), dtype=torch.float32)
        ce = self.base(logits.float(), target)
        kl = distillation_kl(logits, teacher_logits) if self.alpha else zero
        feature = self.feature_loss(features, teacher_features) if self.beta else zero
        cut = self.cut([w.float() for w in attn_maps], masks) if self.theta and attn_maps else zero
        total = ce + self.alpha * kl + self.beta * feature + self.theta * cut
        return LossTerms(total, ce, kl, feature, cut)
