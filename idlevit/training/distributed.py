"""torchrun detection, process-group set-up (NCCL on GPU, gloo on CPU), sharded sampling and reductions."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..errors import UserError


@dataclass
class DistEnv:
    """Where this process sits: rank 0 of 1 when not launched by torchrun."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False    # this process created the group, so it also destroys it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device: Optional[str] = None) -> DistEnv:
    """Join the torchrun process group when launched by it, else run as a single process.

    `device` "cuda" / "cpu" / None (CUDA when available). Under torchrun each process takes
    cuda:LOCAL_RANK; the backend is NCCL on GPU and gloo on CPU.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA GPU: pass --device cpu")
    if not launched_by_torchrun():
        return DistEnv(device=torch.device(device))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs: "
                            "lower torchrun --nproc-per-node")
        torch.cuda.set_device(local_rank)
        dev, backend = torch.device("cuda", local_rank), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistEnv(rank, world, local_rank, dev, created)


def cleanup(env: DistEnv) -> None:
    if env.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum over processes (identity on one process)."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


class ShardSampler(Sampler[int]):
    """Every rank-th index, in order, without padding: evaluation counts each image exactly once."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))
