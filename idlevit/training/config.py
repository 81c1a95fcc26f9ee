"""Fine-tuning settings; the defaults are the IdleViT paper's recipe (docs/design.md §1.5)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..models.schedule import DEFAULT_KEEP_RATIO

CUT_LOSSES = ("paper", "inter", "intra", "none")
ATTN_MAPS = ("mean_softmax", "softmax_mean_logits")
VARIANTS = ("idle", "prune")
AMP_DTYPES = ("float16", "bfloat16")
FEATURE_KDS = ("mse", "projector-ensemble")
PROJECTOR_ACTS = ("relu", "none")

# the only settings --resume may change: where the run lives and how it reports. Every other one changes
# the weights the run ends with: the model, its checkpoint and image size; the data; the schedule and
# optimizer (lr, epochs, batch, ...); the objective; the augmentation; the device and AMP (other
# kernels and rounding); and the data-loading workers (each worker augments with its own RNG stream)
RESUME_MAY_CHANGE = ("output", "resume", "progress")


def resume_keys() -> List[str]:
    """Settings that must equal those of the run being resumed."""
    return [name for name in TrainConfig.__dataclass_fields__ if name not in RESUME_MAY_CHANGE]


@dataclass
class TrainConfig:
    """One fine-tuning run. `batch_size` is global: torchrun processes split it evenly."""
    # model
    model: str = "idlevit_deit_small_patch16_224"
    model_kwargs: Dict[str, object] = field(default_factory=dict)
    keep_ratio: float = DEFAULT_KEEP_RATIO
    keep_ratios: Optional[List[float]] = None
    variant: str = "idle"
    ckpt: Optional[str] = None
    img_size: Optional[int] = None
    num_classes: Optional[int] = None
    drop_path: float = 0.1
    seed: int = 0
    # data
    data: Optional[str] = None
    synthetic: bool = False
    synthetic_size: int = 5000
    synthetic_val_size: int = 1000
    synthetic_seed: int = 0
    synthetic_clutter: int = 4
    workers: int = 4
    crop_pct: Optional[float] = None
    # schedule and optimizer
    epochs: int = 30
    batch_size: int = 1024
    opt: str = "adamw"
    lr: float = 2e-5
    min_lr: float = 2e-6
    warmup_epochs: int = 0
    warmup_lr: float = 1e-6
    weight_decay: float = 0.05
    clip_grad: Optional[float] = None
    # objective
    alpha: float = 5.0
    beta: float = 500.0
    theta: float = 20.0
    cut_loss: str = "paper"
    attn_map: str = "mean_softmax"
    feature_kd: str = "mse"           # the beta term: MSE of normalised features, or a projector ensemble
    projectors: int = 3               # projector-ensemble size
    projector_act: str = "relu"       # after each projector: "relu" (published) or "none"
    # augmentation (DeiT)
    no_aug: bool = False
    aa: Optional[str] = "rand-m9-mstd0.5-inc1"
    hflip: float = 0.5
    color_jitter: float = 0.3
    reprob: float = 0.25
    remode: str = "pixel"
    smoothing: float = 0.1
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    # run
    output: str = "runs/idlevit"
    resume: bool = False
    device: Optional[str] = None
    amp: Optional[bool] = None        # None: on for CUDA, off for CPU
    amp_dtype: str = "float16"
    progress: bool = True

    @property
    def mixup_active(self) -> bool:
        return not self.no_aug and (self.mixup > 0 or self.cutmix > 0) and self.mixup_prob > 0
