"""Console-script entry points of the idle-* tools.

They live outside the `idlevit` package on purpose: a Ctrl-C while a CLI module imports should end
like a Ctrl-C later on, with one line and exit status 130, not a traceback. The CLI modules are cheap
to import (`--help` loads neither torch nor onnx); each `main` imports the heavy modules after parsing
its flags, inside `run_cli`, which answers a Ctrl-C there the same way. Each function here imports its
CLI module and hands over to that module's `main`.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from functools import partial
from typing import Optional, Sequence

EXIT_INTERRUPTED = 130
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: a KeyboardInterrupt, except while a module is being imported.

    Some libraries wrap optional imports in a bare `except:`, which swallows a KeyboardInterrupt raised inside
    them, and the run then goes on as if nothing had been pressed. So there the process ends at once, with the
    same one line. During start-up nothing of ours is open yet; a module imported later in a run (the exporter
    loads some on demand) may leave a temporary output behind, which the next run of the tool removes.
    """
    _exit_if_importing(frame, "interrupted", EXIT_INTERRUPTED)
    raise KeyboardInterrupt


def _on_sigterm(signum, frame) -> None:
    """SIGTERM or SIGHUP (a `kill`, a job scheduler, a container stop, a closed terminal): unwind like Ctrl-C, so
    that every `finally` and `with` runs (a server the tool started is stopped, temporary files go), and exit
    with 128 + the signal's number; inside an import it ends at once, as Ctrl-C does there."""
    _exit_if_importing(frame, "terminated", 128 + signum)
    sys.stderr.write("error: terminated\n")
    raise SystemExit(128 + signum)


def _exit_if_importing(frame, what: str, status: int) -> None:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            sys.stderr.write(f"error: {what}\n")
            sys.stderr.flush()
            os._exit(status)
        frame = frame.f_back


def launch(module: str, argv: Optional[Sequence[str]] = None) -> int:
    """`idlevit.cli.<module>.main(argv)`, with Ctrl-C during the import answered in one line."""
    # not where a signal is ignored (a background job of a script): that choice is the caller's
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, _on_sigint)
        for ending in TERMINATING_SIGNALS:
            if signal.getsignal(ending) is not signal.SIG_IGN:
                signal.signal(ending, _on_sigterm)
    try:
        main = importlib.import_module(f"idlevit.cli.{module}").main
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return EXIT_INTERRUPTED
    return main(argv)


# one entry point per console script in pyproject.toml; each takes an optional argv like the CLI mains
runtime = partial(launch, "runtime")
export = partial(launch, "export")
train = partial(launch, "train")
trt_build = partial(launch, "trt_build")
calibrate = partial(launch, "calibrate")
fp16 = partial(launch, "fp16")
deploy = partial(launch, "deploy")
