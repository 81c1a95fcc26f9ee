"""A tritonserver that never gets ready, and a wrong --python: one line, exit 2, the server stopped on every way out
(timeout, Ctrl-C, SIGTERM), its work folder gone. A stand-in server (a shell script that never listens) is enough."""
import os
import signal
import subprocess
import sys
import time

import pytest

from idlevit.errors import UserError
from idlevit.serving.repository import DeployOptions, write_repository
from idlevit.serving.server import TritonInstall, TritonServer, TritonStartError


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def silent_install(tmp_path):
    """An install whose 'tritonserver' records its pid and sleeps without ever listening."""
    root = tmp_path / "fake-triton"
    (root / "backends" / "python").mkdir(parents=True)
    server = root / "tritonserver"
    server.write_text(f"#!/bin/sh\necho $$ > {root / 'server.pid'}\nexec sleep 300\n")
    server.chmod(0o755)
    stub = root / "triton_python_backend_stub"
    stub.write_text("")
    return TritonInstall(python=sys.executable, server=str(server), python_backend=str(root / "backends" / "python"),
                         stub=str(stub), libs="", python_libdir="", version="stand-in")


def _scratch(folder):
    return [n for n in os.listdir(folder) if n.startswith("idlevit-triton-")]


def test_a_server_that_never_gets_ready_is_one_line_and_is_stopped(silent_install, tmp_path, monkeypatch):
    import logging
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = TritonServer(str(tmp_path), install=silent_install, startup_timeout=2)
    said = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("idlevit.serving.server")
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        with pytest.raises(TritonStartError) as e:
            server.start()
    finally:
        logger.removeHandler(handler)
    assert any("waiting up to 2 s" in line for line in said)   # the wait is announced, not silent
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
    assert "not ready after 2 s" in str(e.value) and "--startup-timeout" in str(e.value)
    pid = int((tmp_path / "fake-triton" / "server.pid").read_text())
    assert not _alive(pid) and _scratch(tmp_path) == []


DRIVER = """
import signal, sys
import idlevit_launch
from idlevit.serving.server import TritonInstall, TritonServer
signal.signal(signal.SIGINT, idlevit_launch._on_sigint)      # what the console scripts install
signal.signal(signal.SIGTERM, idlevit_launch._on_sigterm)
install = TritonInstall(*sys.argv[2:])
try:
    TritonServer(sys.argv[1], install=install, startup_timeout=300).start()
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_ctrl_c_or_sigterm_while_waiting_stops_the_server_and_removes_its_folder(silent_install, tmp_path, sig, code):
    i = silent_install
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path), i.python, i.server, i.python_backend, i.stub,
                             i.libs, i.python_libdir, i.version], env=env, stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path / "fake-triton" / "server.pid"
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        server_pid = int(pid_file.read_text())
        assert _alive(server_pid) and len(_scratch(tmp_path)) == 1
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code
    finally:
        proc.kill()
    assert "Traceback" not in proc.stderr.read()
    for _ in range(50):   # the killed server is reaped by init once its parent is gone
        if not _alive(server_pid):
            break
        time.sleep(0.1)
    assert not _alive(server_pid) and _scratch(tmp_path) == []


@pytest.mark.parametrize("kind", ["true", "not_executable", "folder", "missing"])
def test_python_that_is_not_a_triton_python_is_one_line(tiny_ladder, tmp_path, capsys, kind):
    from idlevit.cli.deploy import main
    repo = tmp_path / "repo"
    write_repository([tiny_ladder[1]], str(repo), options=DeployOptions(max_batch=2))
    python = {"true": "/bin/true", "folder": str(tmp_path), "missing": str(tmp_path / "nope"),
              "not_executable": str(tmp_path / "python")}[kind]
    (tmp_path / "python").write_text("print('hi')\n")
    code = main(["loadtest", "-r", str(repo), "--modes", "1.0", "--python", python])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: --python {python} ")
    assert {"true": "is not a Python interpreter", "not_executable": "is not executable", "folder": "is a folder",
            "missing": "does not exist"}[kind] in err[0]
    assert "IDLEVIT_TRITON_PYTHON=" not in err[0]


@pytest.mark.parametrize("flag", ["--plot", "--json-output"])
def test_loadtest_outputs_are_checked_before_any_server_starts(tiny_ladder, tmp_path, capsys, flag):
    from idlevit.cli.deploy import main
    repo = tmp_path / "repo"
    write_repository([tiny_ladder[1]], str(repo), options=DeployOptions(max_batch=2))
    code = main(["loadtest", "-r", str(repo), "--python", "/bin/true", flag, str(tmp_path / "no" / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].endswith(f"pass another {flag}")
