"""Console-script launchers: Ctrl-C while torch, timm or onnx is still importing is one line, exit 130."""
import os
import signal
import subprocess
import sys
import time

import pytest

# a meta-path hook that raises KeyboardInterrupt when torch or onnx is imported (after the flags are parsed:
# --help imports neither): Ctrl-C at a fixed point of start-up
INTERRUPT_AT_TORCH = (
    "import sys\n"
    "class Interrupt:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name in ('torch', 'onnx'):\n"
    "            raise KeyboardInterrupt\n"
    "sys.meta_path.insert(0, Interrupt())\n"
    "import idlevit_launch\n"
    "sys.exit(idlevit_launch.{tool}({argv!r}))\n")


@pytest.mark.parametrize("tool,argv", [("export", ["--model", "test_vit", "-o", "never.onnx"]),
                                       ("runtime", ["macs", "--model", "test_vit"]),
                                       ("train", ["--synthetic", "-o", "never"]),
                                       ("calibrate", ["--onnx", "never.onnx", "--images", "never"])])
def test_ctrl_c_during_imports_is_one_line(tool, argv, tmp_path):
    out = subprocess.run([sys.executable, "-c", INTERRUPT_AT_TORCH.format(tool=tool, argv=argv)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 130 and out.stderr == "error: interrupted\n", out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig,status,line", [(signal.SIGINT, 130, "error: interrupted"),
                                             (signal.SIGTERM, 143, "error: terminated")])
def test_real_signal_soon_after_start(tmp_path, sig, status, line):
    """A real SIGINT or SIGTERM half a second in (torch still loading on this machine, or already running): one line
    either way (unwinding a running server on SIGTERM is tested in tests/serving/test_server_faults.py)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, idlevit_launch; sys.exit(idlevit_launch.export("
                             f"['--model', 'test_vit', '-o', {str(tmp_path / 'x.onnx')!r}]))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: the signal at its default, whatever this test process inherited
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    time.sleep(0.5)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [text for text in err.splitlines() if not text.startswith(("warning:", "exporting"))]
    assert proc.returncode == status and lines == [line], err
    assert os.listdir(tmp_path) == []
