#!/usr/bin/env bash
# The virtualenv the `triton` tests serve from. PyPI's nvidia-pytriton bundles tritonserver (python backend
# only; it runs without a GPU) but pins numpy < 2, so it gets a venv of its own, with this project installed
# in it too: the python-backend model imports idlevit and runs its ONNX Runtime runner inside the server.
#
#   source .ci/triton-venv.sh    # builds .cache/ci/venv-triton (or $IDLEVIT_TRITON_VENV), exports IDLEVIT_TRITON_PYTHON
#
# Idempotent: a venv that already has the pinned pytriton and this checkout's idlevit is reused.
# Fails (returns non-zero) when it cannot build the venv, so CI says so instead of skipping the tests.
_idlevit_triton_venv() {
  local root venv pytriton="nvidia-pytriton==0.7.0"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="${IDLEVIT_TRITON_VENV:-$root/.cache/ci/venv-triton}"
  if ! "$venv/bin/python" - "$root" 2>/dev/null <<'PY'; then
import importlib.metadata as md, os, sys, idlevit
ok = md.version("nvidia-pytriton") == "0.7.0" and os.path.dirname(idlevit.__file__) == os.path.join(sys.argv[1], "idlevit")
sys.exit(0 if ok else 1)
PY
    echo "building the Triton venv $venv ($pytriton, numpy<2, this project)"
    rm -rf "$venv"
    python3 -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$pytriton" "numpy<2" -e "$root" || return 1
  fi
  export IDLEVIT_TRITON_PYTHON="$venv/bin/python"
  echo "Triton venv ready: IDLEVIT_TRITON_PYTHON=$IDLEVIT_TRITON_PYTHON"
}
_idlevit_triton_venv
_idlevit_triton_rc=$?
unset -f _idlevit_triton_venv
if (return 0 2>/dev/null); then return $_idlevit_triton_rc; else exit $_idlevit_triton_rc; fi
