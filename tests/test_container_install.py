"""Installing into an NVIDIA container leaves its stack alone: pip resolves the project under the container's pins.

NGC's PyTorch images pin their torch in /etc/pip/constraint.txt; Triton's onnxruntime backend and OpenVINO are
what they are. `pip install --dry-run --report` resolves `.[openvino,serve]` from scratch under those pins
(docs/containers.md); ResolutionImpossible, or any other version of them in the plan, fails the test.
Needs the package index; skipped, with the reason, when it cannot be reached.
"""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the oldest stack docs/containers.md names: NGC PyTorch 25.11's torch, Triton 25.11's ONNX Runtime and OpenVINO
CONTAINER_PINS = {"torch": "2.9.1", "onnxruntime": "1.23.2", "openvino": "2025.4.1"}


def _index_unreachable():
    """Why pip's index cannot be reached (None when it can): a 5-second request to its simple page."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/") + "/pip/"
    if not index.startswith(("http://", "https://")):
        return None
    try:
        urllib.request.urlopen(urllib.request.Request(index, method="HEAD"), timeout=5).close()
    except OSError as e:
        return f"the package index {index} cannot be reached ({e}): this test resolves against it"
    return None


def test_pip_resolves_the_toolkit_under_the_container_pins(tmp_path):
    why = _index_unreachable()
    if why:
        pytest.skip(why)
    constraints = tmp_path / "constraint.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in CONTAINER_PINS.items()))
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "--report", str(report), "-c", str(constraints), "-e",
         f"{ROOT}[openvino,serve]"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, f"pip cannot install the toolkit under {CONTAINER_PINS}:\n{done.stderr[-3000:]}"
    planned = {item["metadata"]["name"].lower(): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    for name, version in CONTAINER_PINS.items():
        assert planned.get(name, "").split("+")[0] == version, f"{name}: {planned.get(name)} planned, not {version}"
    assert "idlevit" in planned and "tritonclient" in planned
