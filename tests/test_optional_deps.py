"""An optional package that is missing gets its install hint; one that is installed but broken is named as such."""
import sys

import pytest

from idlevit.errors import UserError
from idlevit.optional_deps import require


def test_missing_package_gets_its_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"^ONNX Runtime is not installed: pip install onnxruntime"):
        require("onnxruntime")


@pytest.mark.parametrize("body,reason", [
    ("raise ImportError('numpy.core.multiarray failed to import')", "numpy.core.multiarray failed to import"),
    ("import idlevit_missing_dependency_xyz", "No module named 'idlevit_missing_dependency_xyz'"),
])
def test_installed_but_broken_package_is_not_called_missing(tmp_path, monkeypatch, body, reason):
    """onnxruntime < 1.19 under numpy 2 fails like the first case: that is not 'not installed'."""
    (tmp_path / "idlevit_broken_pkg.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError) as e:
        require("idlevit_broken_pkg")
    assert str(e.value) == (f"idlevit_broken_pkg is installed but does not import ({reason}); install a version "
                            "from the supported range (pyproject.toml, docs/containers.md): "
                            "pip install -U idlevit_broken_pkg")
