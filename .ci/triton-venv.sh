#!/usr/bin/env bash
# The virtualenv the Triton tests serve from: PyPI's nvidia-pytriton bundles tritonserver (python backend
# only; runs without a GPU) but pins numpy < 2, so it gets a venv of its own. That venv sees the project's
# environment (the `python3` on PATH, with idlevit installed) through a .pth file placed after its own
# site-packages: its numpy 1.x wins, and the python model still imports idlevit, onnxruntime and torch.
#
#   source .ci/triton-venv.sh     # builds or reuses .cache/triton-venv, exports IDLEVIT_TRITON_PYTHON
#
# Idempotent: a venv that already imports the pinned pytriton is reused. On failure it warns and leaves
# IDLEVIT_TRITON_PYTHON unset, so the `triton` tests skip and say why.
_idlevit_triton_venv() {
  local root venv base site pytriton="nvidia-pytriton==0.7.0"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="${IDLEVIT_TRITON_VENV:-$root/.cache/triton-venv}"
  base="$(command -v python3)" || { echo "warning: no python3 on PATH: Triton tests will skip"; return 1; }
  site="$("$base" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
  "$base" -c 'import idlevit' 2>/dev/null || { echo "warning: $base cannot import idlevit (pip install -e . first): Triton tests will skip"; return 1; }
  if [ ! -x "$venv/bin/python" ]; then
    "$base" -m venv "$venv" || { echo "warning: cannot create $venv: Triton tests will skip"; return 1; }
  fi
  local own
  own="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
  printf 'import site; site.addsitedir(%s)\n' "'$site'" > "$own/zz_idlevit_project.pth"
  if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("nvidia-pytriton") != "0.7.0")' 2>/dev/null; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$pytriton" "numpy<2" \
      || { echo "warning: pip install $pytriton failed: Triton tests will skip"; return 1; }
  fi
  export IDLEVIT_TRITON_PYTHON="$venv/bin/python"
  echo "Triton venv: IDLEVIT_TRITON_PYTHON=$IDLEVIT_TRITON_PYTHON"
}
_idlevit_triton_venv || true
unset -f _idlevit_triton_venv
