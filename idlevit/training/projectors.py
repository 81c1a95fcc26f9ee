"""Projector-ensemble feature distillation (Chen et al., "Improved Feature Distillation via Projector
Ensemble", NeurIPS 2022, https://arxiv.org/abs/2210.15274): the student's feature goes through several
linear projectors whose mean is matched to the teacher's feature by cosine distance. Torch only.

The projectors exist only during training: they are saved in the resume state, never in the weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "none": nn.Identity}


class ProjectorEnsemble(nn.Module):
    """f -> mean_i act(W_i f + b_i) over `count` projectors Linear(student_dim, teacher_dim).

    The published ensemble ends each projector with a ReLU; `activation="none"` drops it, since a
    post-norm ViT feature has negative entries that a ReLU output can never point towards.
    """

    def __init__(self, student_dim: int, teacher_dim: int, count: int = 3, activation: str = "relu"):
        super().__init__()
        if count < 1:
            raise ValueError(f"a projector ensemble needs at least one projector, not {count}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"projector activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        self.projectors = nn.ModuleList(nn.Linear(student_dim, teacher_dim) for _ in range(count))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        projected = [self.activation(projector(features)) for projector in self.projectors]
        return torch.stack(projected).mean(0)


def cosine_distance(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """mean over the batch of 1 - cos(f_s, f_t): 0 for the same direction, 2 for opposite ones."""
    return (1 - F.cosine_similarity(student_features.float(), teacher_features.float(), dim=-1)).mean()


def build_projectors(student: nn.Module, teacher: nn.Module, count: int, activation: str,
                     seed: int) -> ProjectorEnsemble:
    """An ensemble from the student's feature width to the teacher's, initialised from `seed` alone:
    the same run settings give the same projectors whatever drew random numbers before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ProjectorEnsemble(student.num_features, teacher.num_features, count, activation)
