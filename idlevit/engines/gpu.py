"""Name and compute capability of the CUDA GPU an engine is built for or loaded on."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str   # "8.6"


def current_gpu(device: int = 0) -> GpuInfo:
    """The GPU torch sees as cuda:`device`; UserError when there is none."""
    import torch
    if not torch.cuda.is_available():
        raise UserError("no CUDA GPU is visible: TensorRT engines need one (check nvidia-smi and CUDA_VISIBLE_DEVICES)")
    if device >= torch.cuda.device_count():
        raise UserError(f"GPU {device} does not exist ({torch.cuda.device_count()} visible): pass a smaller --device")
    major, minor = torch.cuda.get_device_capability(device)
    return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")
