"""Start and stop the tritonserver that PyPI's nvidia-pytriton bundles, on loopback, with our repository.

The wheel ships tritonserver with the python backend only (no onnxruntime or tensorrt backend), so it
serves the python-backend model; it runs without a GPU. It pins numpy < 2, so it lives in a virtualenv
of its own, with idlevit installed there too (`.ci/triton-venv.sh` builds one); `python` is that venv's
interpreter. What it takes to
start (found the hard way): the backend and its stub copied into one backend folder, the wheel's
bundled libraries on LD_LIBRARY_PATH, the venv's bin first on PATH (the stub's embedded Python finds
its prefix through `python3` on PATH), and the interpreter's own libpython ahead of any other
(a stub that loads a foreign libpython3.x fails with "'_thread.RLock' object has no attribute
'_recursion_count'").
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ..errors import UserError
from ..fileio import make_scratch_dir

log = logging.getLogger(__name__)
PYTHON_ENV_VAR = "IDLEVIT_TRITON_PYTHON"   # the triton venv's python (set by .ci/triton-venv.sh)
LOOPBACK = "127.0.0.1"


class TritonStartError(UserError):
    """tritonserver did not become ready: one line with the last line of its log (`log_tail` has more)."""

    def __init__(self, message: str, log_tail: str = ""):
        last = next((line.strip() for line in reversed(log_tail.splitlines()) if line.strip()), "no log")
        super().__init__(f"{message} (its log ends: {last[:200]}): check the repository with idle-deploy triton, "
                         "or raise --startup-timeout on a slow machine")
        self.log_tail = log_tail


@dataclass(frozen=True)
class TritonInstall:
    """Where a pytriton venv keeps the server, its python backend and the stub for its Python version."""
    python: str
    server: str
    python_backend: str       # folder with libtriton_python.so and triton_python_backend_utils.py
    stub: str
    libs: str                 # nvidia_pytriton.libs
    python_libdir: str        # the interpreter's own libpython folder
    version: str              # nvidia-pytriton version

    @classmethod
    def find(cls, python: Optional[str] = None) -> "TritonInstall":
        """The install behind `python` (default: $IDLEVIT_TRITON_PYTHON); UserError when there is none."""
        named = f"--python {python}" if python else f"{PYTHON_ENV_VAR}={os.environ.get(PYTHON_ENV_VAR)}"
        python = python or os.environ.get(PYTHON_ENV_VAR)
        hint = "build the venv with `source .ci/triton-venv.sh` (a venv with nvidia-pytriton, numpy<2 and idlevit)"
        if not python:
            raise UserError(f"no Triton venv: set {PYTHON_ENV_VAR} to its python or pass --python; {hint}")
        if os.path.isdir(python):
            raise UserError(f"{named} is a folder: pass the venv's bin/python; {hint}")
        if not os.path.isfile(python):
            raise UserError(f"{named} does not exist: {hint}")
        if not os.access(python, os.X_OK):
            raise UserError(f"{named} is not executable: pass the venv's bin/python; {hint}")
        code = ("import json, os, sys, sysconfig, importlib.metadata as md, pytriton\n"
                "root = os.path.dirname(pytriton.__file__)\n"
                "print(json.dumps({'root': root, 'libdir': sysconfig.get_config_var('LIBDIR') or '',"
                " 'py': '%d.%d' % sys.version_info[:2], 'version': md.version('nvidia-pytriton')}))\n")
        try:
            out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            why = getattr(e, "strerror", None) or type(e).__name__
            raise UserError(f"{named} cannot be run ({why}): {hint}") from None
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            raise UserError(f"{named} cannot import pytriton ({last}): {hint}")
        try:
            info = json.loads(out.stdout.strip().splitlines()[-1])
            info = {k: str(info[k]) for k in ("root", "libdir", "py", "version")}
        except (IndexError, ValueError, KeyError, TypeError):
            raise UserError(f"{named} is not a Python interpreter (it printed no answer to a Python "
                            f"one-liner): pass the Triton venv's bin/python; {hint}") from None
        server_root = os.path.join(info["root"], "tritonserver")
        install = cls(python=python, server=os.path.join(server_root, "bin", "tritonserver"),
                      python_backend=os.path.join(server_root, "backends", "python"),
                      stub=os.path.join(server_root, "python_backend_stubs", info["py"], "triton_python_backend_stub"),
                      libs=os.path.join(os.path.dirname(info["root"]), "nvidia_pytriton.libs"),
                      python_libdir=info["libdir"], version=info["version"])
        for path in (install.server, install.stub, install.python_backend):
            if not os.path.exists(path):
                raise UserError(f"the pytriton install behind {python} lacks {path} "
                                f"(no stub for Python {info['py']}?): {hint}")
        return install

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(self.python) + os.pathsep + env.get("PATH", "")
        libs = [p for p in (self.python_libdir, self.libs, env.get("LD_LIBRARY_PATH", "")) if p]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env.pop("PYTHONHOME", None)
        return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class TritonServer:
    """tritonserver on 127.0.0.1 (free HTTP and gRPC ports) serving `repository`; a context manager.

    `models`: load only these (the others, e.g. onnxruntime models that need NVIDIA's containers, stay
    unloaded); default: all. `start()` waits until the server reports ready (or raises TritonStartError
    with its log); `stop()` ends it (SIGTERM, then SIGKILL) and always runs on leaving the `with` block.
    """

    def __init__(self, repository: str, models: Optional[Sequence[str]] = None, install: Optional[TritonInstall] = None,
                 startup_timeout: float = 300.0, log_file: Optional[str] = None, verbose: bool = False):
        self.repository = os.path.abspath(repository)
        self.models = list(models) if models else None
        self.install = install or TritonInstall.find()
        self.startup_timeout, self.verbose = startup_timeout, verbose
        self.log_file = log_file
        self.http_port = self.grpc_port = None
        self.process: Optional[subprocess.Popen] = None
        self._workdir: Optional[str] = None

    @property
    def http_url(self) -> str:
        return f"{LOOPBACK}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def _backends(self) -> str:
        """A backend folder with the python backend and the stub side by side, as tritonserver expects."""
        folder = os.path.join(self._workdir, "backends", "python")
        shutil.copytree(self.install.python_backend, folder, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(self.install.stub, folder)
        return os.path.dirname(folder)

    def command(self, backends: str) -> List[str]:
        return [self.install.server, f"--model-repository={self.repository}", f"--backend-directory={backends}",
                f"--http-address={LOOPBACK}", f"--http-port={self.http_port}",
                f"--grpc-address={LOOPBACK}", f"--grpc-port={self.grpc_port}",
                "--allow-metrics=false", "--allow-sagemaker=false", "--allow-vertex-ai=false",
                "--exit-on-error=true", "--strict-readiness=true", "--exit-timeout-secs=10",
                f"--log-verbose={1 if self.verbose else 0}"] + self._model_control()

    def _model_control(self) -> List[str]:
        if self.models is None:
            return []
        return ["--model-control-mode=explicit"] + [f"--load-model={m}" for m in self.models]

    def start(self) -> "TritonServer":
        """Start the server and wait until it is ready; on any way out short of that (timeout, exit, Ctrl-C,
        SIGTERM) the server is stopped and its work folder removed before the exception goes on."""
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> "TritonServer":
        self._workdir = make_scratch_dir("triton")
        self.log_file = self.log_file or os.path.join(self._workdir, "tritonserver.log")
        self.http_port, self.grpc_port = free_port(), free_port()
        backends = self._backends()
        log.info("starting tritonserver on %s (waiting up to %.0f s for it to be ready)", LOOPBACK,
                 self.startup_timeout)
        with open(self.log_file, "w") as log_out:
            self.process = subprocess.Popen(self.command(backends), stdout=log_out, stderr=subprocess.STDOUT,
                                            env=self.install.environment(), cwd=self._workdir,
                                            start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with status {self.process.returncode}", self.log_tail())
            if self.ready():
                return self
            time.sleep(0.5)
        raise TritonStartError(f"tritonserver was not ready after {self.startup_timeout:g} s", self.log_tail())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, up to 30 s to exit, then SIGKILL to its whole session (the python stubs too); the kill runs
        even when a second Ctrl-C or SIGTERM cuts the wait short."""
        if self.process is None:
            return
        try:
            if self.process.poll() is None:
                self.process.terminate()
                self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        if self._workdir and os.path.isdir(self._workdir):
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
