"""Atomic training checkpoints (model, optimizer, scheduler, scaler, epoch, RNG states, args) and resume.

Everything is stored as tensors and plain Python values, so `torch.load(weights_only=True)` reads
it and `idlevit.checkpoint.load_checkpoint` takes the weights from the 'model' entry.
"""
from __future__ import annotations

import os
import pickle
import random
from typing import Any, Dict

import numpy as np
import torch

from ..checkpoint import refused_pickle_message
from ..errors import UserError
from ..fileio import atomic_output

LAST = "last.pth"      # full training state, rewritten after every epoch
FINAL = "model.pth"    # weights + args + metrics only, written once at the end


def save_atomic(obj: Any, path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: a crash never leaves half a file,
    and the temp file of a killed run is removed by the next save of the same path."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def rng_states() -> Dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states as tensors and plain values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_states(states: Dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    random.seed(seed)


def training_state(model, optimizer, scheduler, scaler, epoch: int, args: Dict[str, Any],
                   extra: Dict[str, Any]) -> Dict[str, Any]:
    """Everything `--resume` needs; `model` keys are the plain timm keys."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "rng": rng_states(),
        "args": args,
        **extra,
    }


def load_training_state(path: str) -> Dict[str, Any]:
    """Read a checkpoint written by `training_state` (weights only; one-line error when unusable)."""
    if not os.path.isfile(path):
        raise UserError(f"nothing to resume: {path} not found: drop --resume to start a new run, "
                        "or pass the --output of the run to continue")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(refused_pickle_message(path, e)) from None
    except Exception as e:  # zip and EOF errors mean the same to the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot resume from {path} ({first[:120]}): the file is corrupt; "
                        "delete it and start a new run") from None
    missing = [k for k in ("model", "optimizer", "epoch", "rng", "args") if k not in state]
    if missing:
        raise UserError(f"{path} is not an idle-train checkpoint (no {', '.join(missing)}): "
                        "--resume needs the last.pth that idle-train wrote")
    return state
