#!/usr/bin/env bash
# A virtualenv for ModelOpt's ONNX quantizer, layered on a venv that already has this project installed:
# a .pth puts the base venv's site-packages (the project, onnx, onnxruntime, torch) behind the new venv's,
# and only .ci/modelopt-requirements.txt is installed, with --no-deps. ModelOpt stays out of the base venv
# (importing it patches ONNX Runtime's calibrators, and `auto` backends would pick it).
#
#   bash .ci/modelopt-venv.sh BASE_VENV NEW_VENV     # NEW_VENV is deleted and rebuilt
#
# `pip check` is not run in NEW_VENV: it would list the nvidia-modelopt requirements left out on purpose.
set -euo pipefail
base=$(cd "$1" && pwd) venv=$2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rm -rf "$venv"
python3 -m venv "$venv"
base_site=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
new_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$base_site')" > "$new_site/zz-base-venv.pth"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$root/.ci/modelopt-requirements.txt"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
import modelopt.onnx.quantization  # noqa: F401  (fails here, loudly, if an import-time dependency is missing)
print("ModelOpt venv:", ", ".join(f"{p} {version(p)}" for p in ("nvidia-modelopt", "onnx", "onnxruntime", "torch", "numpy")))
PY
