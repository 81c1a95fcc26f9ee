"""Atomic file output (temp file beside the target, renamed into place) for library and CLIs."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

from .errors import UserError


def check_output_path(path: str) -> None:
    """Fail early (before any work) when `path` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist: create it or pass another -o")
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable: pass another -o")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder: pass a file name with -o")


@contextmanager
def atomic_output(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
