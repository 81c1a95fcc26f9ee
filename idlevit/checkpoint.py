"""Safe checkpoint reading (weights_only, safetensors) with one-line, actionable errors."""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from typing import Dict, List, Mapping, Tuple

import torch

from .errors import UserError
from .fileio import file_sha256

STATE_DICT_KEYS = ("model", "state_dict", "model_ema", "module")
CHECKPOINT_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
# what weights-only loading itself unpickles in every checkpoint: never reported as code
SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode")


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a local checkpoint: raw state dict, {'model': ...} or {'state_dict': ...}.

    `.safetensors` files go through safetensors; everything else through
    `torch.load(weights_only=True)`, so a file never runs code. A DDP `module.` prefix is
    stripped.
    """
    check_checkpoint_path(path)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file
            obj = load_file(path, device="cpu")
        else:
            with warnings.catch_warnings():   # a refused file is reported in one line; torch's protocol note is noise
                warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(refused_pickle_message(path, e)) from None
    except Exception as e:  # torch/safetensors raise RuntimeError, EOFError, zip and header errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({first[:120]}): "
                        "re-download or re-save it") from None
    state = _unwrap(obj, path)
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def check_checkpoint_path(path: str, flag: str = "--ckpt") -> None:
    """A checkpoint path must be an existing file; a folder gets the files inside it named."""
    if os.path.isdir(path):
        inside = sorted(f for f in os.listdir(path) if f.endswith(CHECKPOINT_EXTENSIONS))
        found = f" (it holds {', '.join(inside[:3])})" if inside else ""
        raise UserError(f"checkpoint {path} is a folder, not a file{found}: pass {flag} with the path of the "
                        ".pth/.safetensors file inside it")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} not found: pass {flag} with the path of a local .pth/.safetensors file")


def refused_pickle_message(path: str, error: Exception) -> str:
    """Why weights-only loading refused `path`: code in its pickle (named), or a file that is no checkpoint.

    The name comes from the pickle's own GLOBAL/STACK_GLOBAL opcodes, so the message does not
    depend on how a torch version words its error; the error text is only the fallback.
    """
    names = [n for n in pickled_globals(path) if not n.startswith(SAFE_GLOBAL_PREFIXES)]
    if not names:
        found = re.search(r"GLOBAL\s+([\w.]+)", str(error), re.IGNORECASE)
        names = [found.group(1)] if found else []
    if names:
        shown = ", ".join(dict.fromkeys(n.split(".", 1)[1] if n.startswith(("builtins.", "__builtin__.")) else n
                                        for n in names))
        return (f"checkpoint {path} holds code and was refused: it contains Python objects ({shown}) that would "
                "run when unpickled, and weights-only loading runs none: re-save only the tensors, "
                "torch.save(model.state_dict(), path), from a copy you trust")
    return f"checkpoint {path} is corrupt or unreadable (not a PyTorch or safetensors file): re-download or re-save it"


def pickled_globals(path: str) -> List[str]:
    """module.name of every class or function the checkpoint's pickle would import, in file order.

    Read from the opcodes, never by unpickling: the `.pkl` entries of a zip checkpoint, or the pickles at the
    start of a legacy (non-zip) file, one after another until what follows is no pickle (the raw tensor bytes).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return [n for name in archive.namelist() if name.endswith(".pkl")
                        for n in _globals_in(io.BytesIO(archive.read(name)))[0]]
        with open(path, "rb") as f:
            names: List[str] = []
            while True:
                found, complete = _globals_in(f)
                if not complete:   # what follows the pickles (or a file that is none): its bytes name nothing
                    return names
                names += found
    except (zipfile.BadZipFile, OSError):
        return []


def _globals_in(stream) -> Tuple[List[str], bool]:
    """Imports named by the one pickle starting at `stream`'s position, and whether it ended with STOP (the
    position is then just after it)."""
    names: List[str] = []
    strings: List[str] = []
    complete = False
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                names.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
            elif op.name == "STOP":
                complete = True
    except (ValueError, EOFError):   # a truncated or garbled pickle: report what was read
        pass
    return names, complete


def _unwrap(obj, path: str) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(obj):
            return tensors
    raise UserError(f"checkpoint {path} holds no state dict (expected tensors, or a 'model'/'state_dict' "
                    "entry): save it with torch.save(model.state_dict(), path)")


def load_checkpoint(model: torch.nn.Module, path: str, model_name: str = "") -> str:
    """Load `path` into `model` strictly; returns the file's sha256.

    Mismatched keys or shapes raise UserError naming the file and the first offenders.
    """
    state = read_state_dict(path)
    expected = model.state_dict()
    what = model_name or type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected {_first(unexpected)}")
        raise UserError(f"checkpoint {path} does not match {what} ({'; '.join(parts)}): "
                        "pass the --model the checkpoint was trained as")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            hint = "pass the --model the checkpoint was trained as"
            if key == "pos_embed":
                hint = "pass the --img-size the checkpoint was trained at"
            elif key.startswith("head."):
                hint = "pass --num-classes to match the checkpoint's head"
            raise UserError(f"checkpoint {path} does not match {what}: {key} is "
                            f"{tuple(state[key].shape)} in the file but {tuple(tensor.shape)} in the model: {hint}")
    model.load_state_dict(state, strict=True)
    return file_sha256(path)


def _first(keys, n: int = 3) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
