"""Atomic file output (temp file beside the target, renamed into place) for library and CLIs.

Temp files are named `.<target>.tmp-<host>-<pid>-<random><suffix>`, so a process killed before
its rename (SIGKILL runs no cleanup) leaves a file the next write of the same target recognises
and removes once its writer is gone.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from typing import Iterator, List

from .errors import UserError

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def check_output_path(path: str) -> None:
    """Fail early (before any work) when `path` cannot be written; remove what killed writes of it left."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist: create it or pass another -o")
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable: pass another -o")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder: pass a file name with -o")
    remove_stale_temps(path)


def check_output_dir(path: str, flag: str = "-o") -> None:
    """Fail early when folder `path` cannot be created or written, without creating anything."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {path} is a file: pass a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"cannot create {flag} {path} ({existing} is a file): pass a folder you can write to")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {flag} {path} ({existing} is not writable): pass a folder you can write to")


def make_output_dir(path: str, flag: str = "-o") -> None:
    """Create the output folder `path` (and its parents) or say in one line why it cannot be."""
    check_output_dir(path, flag)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {flag} {path} ({e.strerror or type(e).__name__}): "
                        "pass a folder you can write to") from None


def temp_path_beside(path: str, suffix: str = ".tmp") -> str:
    """Create and return an empty temp file beside `path`, named so that `remove_stale_temps` knows it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{_HOST}-{os.getpid()}-", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def remove_stale_temps(path: str) -> List[str]:
    """Remove temp files of `path` left by writers on this host that no longer run; returns what was removed."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path) + _HOST + "-"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            try:
                os.remove(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_output(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    check_output_path(path)
    tmp = temp_path_beside(path, suffix or ".tmp")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by someone else
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
