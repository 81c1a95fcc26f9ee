"""Fine-tuning IdleViT: distillation from the backbone plus the token cut loss, DDP, exact resume."""
from .config import TrainConfig
from .trainer import TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train"]
