"""Atomic file output (temp file beside the target, renamed into place) for library and CLIs.

Temp files are named `.<target>.tmp-<host>-<pid>-<random><suffix>`, so a process killed before
its rename (SIGKILL runs no cleanup) leaves a file the next write of the same target recognises
and removes once its writer is gone; so is a temp of a temp (`..<target>.tmp-...tmp-...`, written
when a library writes its own output atomically into our temp path) and a staged folder. Scratch
folders in the system temp dir (`idlevit-<kind>-<host>-<pid>-<random>`: a server's work folder, the
folder a library puts its own temp files in) are removed by the next run of any kind once their
process is gone.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

from .errors import UserError

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def check_input_file(path: str, what: str, fix: str, missing: str = "not found") -> None:
    """One-line UserError when input `path` is a folder or missing: "<what> <path> is a folder...: <fix>"."""
    if os.path.isdir(path):
        raise UserError(f"{what} {path} is a folder, not a file: {fix}")
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} {missing}: {fix}")


def check_output_path(path: str, flag: str = "-o") -> None:
    """Fail early (before any work) when `path` cannot be written; remove what killed writes of it left."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist: create it or pass another {flag}")
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable: pass another {flag}")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder: pass a file name with {flag}")
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


OUTPUT_MARKER = ".idlevit-output"    # in every folder a tool writes whole: --force may replace only such a folder


def check_replaceable_dir(path: str, force: bool, inputs: Sequence[str] = (), flag: str = "-o") -> None:
    """Fail early unless folder `path` can be written whole: new or empty, or (with `force`) a folder a tool of
    ours wrote before (it holds OUTPUT_MARKER) that is neither the current folder, nor holds it, nor an input."""
    check_output_dir(path, flag)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {flag} {path} ({parent} is missing or not writable, and the folder is staged "
                        "beside it): pass a folder in a place you can write to")
    if not os.path.isdir(path):
        return
    target = os.path.realpath(path)
    for name, other in [("the current folder", os.getcwd())] + [(f"the input {p}", p) for p in inputs]:
        real = os.path.realpath(other)
        if real == target or real.startswith(target.rstrip(os.sep) + os.sep):
            what = "--force would delete" if force else "writing would replace"
            raise UserError(f"{what} {flag} {path}, which is or holds {name}: pass a new folder with {flag}")
    if not os.listdir(path):
        return
    if not force:
        raise UserError(f"{path} exists and is not empty: remove it, pass another {flag}, or add --force")
    if not os.path.isfile(os.path.join(path, OUTPUT_MARKER)):
        raise UserError(f"--force replaces only a folder this tool wrote, and {path} was not (it has no "
                        f"{OUTPUT_MARKER}): remove it yourself or pass a new folder with {flag}")


def commit_dir(staged: str, path: str) -> None:
    """Move the finished folder `staged` (from `temp_dir_beside(path)`) to `path`, replacing what is there; the
    old folder is renamed to a temp name first, so a kill at any point leaves only what the next run removes."""
    with open(os.path.join(staged, OUTPUT_MARKER), "w") as f:
        f.write("written whole by idlevit; --force may replace this folder\n")
    os.chmod(staged, 0o777 & ~_umask())
    old = None
    if os.path.exists(path):
        old = temp_dir_beside(path)
        os.replace(path, old)   # a folder renames over the empty one just made
    os.replace(staged, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def new_output_dirs(*folders: Tuple[str, str]) -> Iterator[None]:
    """Create the (path, flag) output folders, all checked before any is made; if the block fails, remove those
    of them (and of their parents) that this call created and that are still empty."""
    for path, flag in folders:
        check_output_dir(path, flag)
    created: List[str] = []
    for path, flag in folders:
        missing, existing = [], os.path.abspath(path)
        while not os.path.exists(existing):
            missing.append(existing)
            existing = os.path.dirname(existing)
        make_output_dir(path, flag)
        created += missing
    try:
        yield
    except BaseException:
        for path in sorted(set(created), key=len, reverse=True):
            try:
                os.rmdir(path)   # only an empty folder goes
            except OSError:
                pass
        raise


def temp_path_beside(path: str, suffix: str = ".tmp") -> str:
    """Create and return an empty temp file beside `path`, named so that `remove_stale_temps` knows it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{_HOST}-{os.getpid()}-", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def temp_dir_beside(path: str) -> str:
    """Create and return an empty folder beside `path` to stage it in, named so that `remove_stale_temps` knows it."""
    folder = os.path.dirname(os.path.abspath(path))
    return tempfile.mkdtemp(prefix=f"{_temp_prefix(os.path.abspath(path))}{_HOST}-{os.getpid()}-", dir=folder)


def remove_stale_temps(path: str) -> List[str]:
    """Remove temp files and folders of `path` (and temps of those temps) left by writers on this host that no
    longer run; returns what was removed."""
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [name for name in names if _stale_temp_of(name, base) and _remove(os.path.join(folder, name))]


def _stale_temp_of(name: str, base: str) -> bool:
    """`name` is a temp of `base` (at any depth) and no writer along the chain still runs."""
    stripped = name.lstrip(".")
    if len(name) - len(stripped) < 1 or not stripped.startswith(f"{base}.tmp-{_HOST}-"):
        return False
    pids = re.findall(r"\.tmp-" + re.escape(_HOST) + r"-(\d+)-", name[len(name) - len(stripped) + len(base):])
    return bool(pids) and not any(_running(int(pid)) for pid in pids)


def _remove(path: str) -> bool:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except OSError:
        return False
    return True


SCRATCH_PREFIX = "idlevit-"


@contextmanager
def scratch_dir(kind: str, parent: Optional[str] = None) -> Iterator[str]:
    """A private folder `idlevit-<kind>-<host>-<pid>-<random>` in the system temp dir, removed when the block
    ends; first removes the folders of every kind that processes no longer running left there."""
    path = make_scratch_dir(kind, parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_scratch_dir(kind: str, parent: Optional[str] = None) -> str:
    """Create the folder `scratch_dir` yields, for an owner that removes it itself (a server's work folder)."""
    parent = parent or tempfile.gettempdir()
    remove_stale_scratch(parent)
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{kind}-{_HOST}-{os.getpid()}-", dir=parent)


def remove_stale_scratch(parent: Optional[str] = None) -> List[str]:
    """Remove the scratch folders in `parent` (default: the system temp dir) whose process is gone."""
    parent = parent or tempfile.gettempdir()
    pattern = re.compile(re.escape(SCRATCH_PREFIX) + r"[a-z0-9_]+-" + re.escape(_HOST) + r"-(\d+)-")
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in names:
        found = pattern.match(name)
        if found and not _running(int(found.group(1))) and _remove(os.path.join(parent, name)):
            removed.append(name)
    return removed


@contextmanager
def library_temp_dir(kind: str) -> Iterator[str]:
    """Point `tempfile`'s default folder at a scratch folder for the block, so that what a library writes
    there (ONNX Runtime's `ort.quant.*`) goes when the block ends, or with the next run after a kill."""
    with scratch_dir(kind) as path:
        before = tempfile.tempdir
        tempfile.tempdir = path
        try:
            yield path
        finally:
            tempfile.tempdir = before


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
