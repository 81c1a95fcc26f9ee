"""Lazy package attributes (PEP 562), so that `import idlevit.x` costs nothing until a name is used.

A package lists `name -> submodule`; the submodule is imported the first time the name is looked
up (`idlevit.export.export_model`, `from idlevit.models import make_idle`). This keeps every
CLI's `--help` free of torch, timm and onnx (Polygraphy's `mod.lazy_import` plays the same part).
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Mapping, Tuple


def lazy_exports(package: str, exports: Mapping[str, str]) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    """(`__getattr__`, `__dir__`) for `package`: `exports` maps a public name to the submodule that defines it
    (relative, e.g. ".idlevit"); a name that is itself a submodule maps to "" and is imported as one."""
    table: Dict[str, str] = dict(exports)

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(table[name] or f".{name}", package)
        return module if not table[name] else getattr(module, name)

    def __dir__() -> List[str]:
        return sorted(table)

    return __getattr__, __dir__
