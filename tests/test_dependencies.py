"""Every submodule imports and every idle-* CLI answers --help without TensorRT/ORT/ModelOpt, and --help
loads neither torch, timm nor onnx (start-up is instant)."""
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import idlevit

# torch's CUDA build imports the `cuda` namespace itself, so it is not listed here
HEAVY = ("tensorrt", "modelopt", "pycuda", "onnxruntime")
# what --help must not load: seconds of start-up each
START_UP_HEAVY = ("torch", "timm", "torchvision", "onnx", "onnxruntime", "onnxscript", "tensorrt", "openvino")


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(idlevit.__path__, "idlevit."))


def _scripts():
    return sorted(ep.name for ep in entry_points(group="console_scripts") if ep.value.startswith(("idlevit.", "idlevit_launch:")))


def _verbs():
    """Tools with verbs -> their verbs (each verb's --help is checked too)."""
    from idlevit.cli import deploy, runtime
    return {"idle-runtime": list(runtime.VERBS), "idle-deploy": list(deploy.VERBS)}


def _help_calls():
    """(script, argv) for every tool's --help, and every verb's."""
    calls = [(s, ["--help"]) for s in _scripts()]
    return calls + [(script, [verb, "--help"]) for script, verbs in _verbs().items() for verb in verbs]


def test_every_submodule_imports_without_heavy_deps():
    code = ("import importlib, sys\n"
            f"for m in {_modules()!r}: importlib.import_module(m)\n"
            f"bad = [h for h in {HEAVY!r} if h in sys.modules]\n"
            "assert not bad, f'imported at package import time: {bad}'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_scripts_are_installed():
    assert "idle-runtime" in _scripts()


@pytest.mark.parametrize("script,argv", _help_calls())
def test_help(script, argv):
    ep = next(e for e in entry_points(group="console_scripts") if e.name == script)
    module, func = ep.value.split(":")
    code = f"import sys; from {module} import {func} as m; sys.exit(m({argv!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:")
    if len(argv) > 1 or script not in _verbs():  # option help strings end with their default
        assert "(default:" in out.stdout


@pytest.mark.parametrize("script,argv", _help_calls())
def test_help_loads_no_heavy_module(script, argv):
    ep = next(e for e in entry_points(group="console_scripts") if e.name == script)
    module, func = ep.value.split(":")
    code = (f"import sys\nfrom {module} import {func} as main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {START_UP_HEAVY!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", f"{script} {' '.join(argv)} imported {out.stdout.splitlines()[-1]}"


def test_import_idlevit_loads_no_heavy_module():
    code = f"import sys, idlevit, idlevit.cli.common\nprint([m for m in {START_UP_HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_make_idle_registers_the_models_with_timm():
    code = "import idlevit, timm\nidlevit.make_idle\nprint(timm.is_model('idlevit_deit_small_patch16_224'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_onnx_file_layer_imports_without_torch():
    """Reading an exported file (metadata, elastic keep inputs, selection outputs) needs onnx, not torch: ONNX
    Runtime-only tools and Triton's python model load it."""
    modules = sorted(m for m in _modules() if m.startswith("idlevit.onnx_file"))
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "assert 'torch' not in sys.modules, 'an onnx_file module imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
