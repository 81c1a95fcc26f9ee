"""lazy_exports: a package's names load their submodule on first use, not at import."""
import sys

import pytest


@pytest.fixture
def package(tmp_path, monkeypatch):
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from idlevit.lazy import lazy_exports\nVERSION = 1\n"
                                     "__getattr__, __dir__ = lazy_exports(__name__, {'value': '.heavy', 'heavy': ''})\n")
    (pkg / "heavy.py").write_text("value = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("lazypkg", "lazypkg.heavy"):
        sys.modules.pop(name, None)


def test_a_name_loads_its_submodule_on_first_use(package):
    import lazypkg
    assert "lazypkg.heavy" not in sys.modules
    assert {"value", "heavy", "VERSION"} <= set(dir(lazypkg))
    from lazypkg import value
    assert value == 42 and "lazypkg.heavy" in sys.modules and lazypkg.heavy.value == 42


def test_an_unknown_name_is_an_attribute_error(package):
    import lazypkg
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nope'"):
        lazypkg.nope
