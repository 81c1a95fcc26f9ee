"""Fine-tuning IdleViT: distillation from the backbone plus the token cut loss, DDP, exact resume.

The names below load on first use, so that `idle-train --help` reads `config` without torch.
"""
from ..lazy import lazy_exports

_EXPORTS = {"TrainConfig": ".config", **dict.fromkeys(("TrainResult", "evaluate", "train"), ".trainer")}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
