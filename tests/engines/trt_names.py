"""Read API names out of TensorRT bindings wheels, and collect the TensorRT names our code uses (ast).

Helpers for test_trt_api_names.py; kept apart so their own logic is unit-tested too.
"""
from __future__ import annotations

import ast
import glob
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, Set

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("IDLEVIT_TRT_BINDINGS", os.path.join(ROOT, ".cache", "trt-bindings"))
WHEELS = {10: "tensorrt_cu12_bindings-10.13.3.9-*.whl", 11: "tensorrt_cu13_bindings-11.4.0.106-*.whl"}

# Variables that hold TensorRT objects in our code (leading underscores ignored). Attribute
# access on them, and on anything returned by their methods, is checked against the bindings.
TRT_OBJECTS = {"trt", "builder", "config", "network", "parser", "profile", "runtime", "engine",
               "context", "layer", "logger", "cache", "inspector"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_:]*")


@dataclass
class BindingNames:
    """Names in one bindings wheel: NUL-terminated strings of tensorrt.so plus the package __init__."""
    version: str
    exact: Set[str] = field(default_factory=set)
    tails: Set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        # the linker merges string tails: "INT8" is stored inside "UINT8", "Builder" inside
        # "IExprBuilder". A tail counts only inside an identifier-like string, so prose such as
        # "Example 2: CHW2 + FP16" does not make FP16 exist.
        return name in self.exact or name in self.tails


def strings_of(blob: bytes, min_len: int = 3) -> Set[str]:
    return {m.group(1).decode() for m in re.finditer(rb"([\x20-\x7e]{%d,})\x00" % min_len, blob)}


def init_names(source: str) -> Set[str]:
    """Names the bindings' __init__.py defines in Python (nptype, __version__, DataType.itemsize...)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(target, ast.Name):
                    names.add(target.id)
                elif isinstance(target, ast.Attribute):
                    names.add(target.attr)
    return names


def binding_names_from(so_blob: bytes, init_source: str, version: str) -> BindingNames:
    found = BindingNames(version)
    found.exact = strings_of(so_blob) | init_names(init_source)
    for s in found.exact:
        if _IDENT.fullmatch(s):
            found.tails.update(s[i:] for i in range(1, len(s)))
    return found


def read_wheel(path: str) -> BindingNames:
    version = os.path.basename(path).split("-")[1]
    with zipfile.ZipFile(path) as z:
        so = next(n for n in z.namelist() if re.search(r"tensorrt[^/]*\.so$", n))
        init = next(n for n in z.namelist() if n.endswith("tensorrt_bindings/__init__.py"))
        return binding_names_from(z.read(so), z.read(init).decode(), version)


def find_wheels(cache: str = CACHE) -> Dict[int, str]:
    found = {}
    for major, pattern in WHEELS.items():
        hits = sorted(glob.glob(os.path.join(cache, pattern)))
        if hits:
            found[major] = hits[-1]
    return found


# -- what our code uses ---------------------------------------------------------------------

def _object_name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id.lstrip("_")
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr.lstrip("_")
    return None


def _is_trt(node) -> bool:
    """A TensorRT object, an attribute of one, or what a TensorRT method returned."""
    if _object_name(node) in TRT_OBJECTS:
        return True
    if isinstance(node, ast.Attribute):
        return _is_trt(node.value)
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Attribute) and _is_trt(node.func)
    if isinstance(node, ast.Subscript):
        return _is_trt(node.value)
    return False


class _Collector(ast.NodeVisitor):
    def __init__(self, where: str):
        self.where, self.scope = where, []
        self.used: Dict[str, Set[str]] = {}      # name -> {"<10|11|both>@file:line", ...}
        self.qualified: Dict[str, Set[str]] = {}  # "BuilderFlag.INT8" -> same, for trt.<Enum>.<member>

    def _versions(self) -> str:
        for name in reversed(self.scope):
            match = re.search(r"_trt(\d+)$", name)
            if match:
                return match.group(1)
        return "both"

    def _add(self, name: str, node, table=None) -> None:
        table = self.used if table is None else table
        table.setdefault(name, set()).add(f"{self._versions()}@{self.where}:{node.lineno}")

    def visit_FunctionDef(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node):
        if _is_trt(node.value) and not (_object_name(node.value) == "self" or node.attr.startswith("__") and node.attr != "__version__"):
            self._add(node.attr, node)
        if isinstance(node.value, ast.Attribute) and _object_name(node.value.value) == "trt":
            self._add(f"{node.value.attr}.{node.attr}", node, self.qualified)
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute) and _is_trt(node.func):
            for kw in node.keywords:
                if kw.arg:
                    self._add(kw.arg, node)
        self.generic_visit(node)


def used_names(sources: Dict[str, str], qualified: bool = False) -> Dict[str, Set[str]]:
    """{name: {"<version>@file:line", ...}} for every TensorRT name in `sources` ({path: text}).

    Names inside a function whose name ends in _trt10 / _trt11 are tagged with that version;
    all other names must exist in every supported TensorRT version ("both"). With
    `qualified`, only trt.<Enum>.<member> uses, keyed "Enum.member" (BuilderFlag.INT8 is
    not DataType.INT8).
    """
    used: Dict[str, Set[str]] = {}
    for path, text in sources.items():
        collector = _Collector(os.path.relpath(path, ROOT))
        collector.visit(ast.parse(text))
        for name, where in (collector.qualified if qualified else collector.used).items():
            used.setdefault(name, set()).update(where)
    return used


def trt_sources(root: str = ROOT) -> Dict[str, str]:
    """idlevit/engines/*.py, the TensorRT runner, and any other module that imports TensorRT."""
    paths = set(glob.glob(os.path.join(root, "idlevit", "engines", "*.py")))
    paths.add(os.path.join(root, "idlevit", "runtime", "trt_runner.py"))
    for path in glob.glob(os.path.join(root, "idlevit", "**", "*.py"), recursive=True):
        with open(path) as f:
            text = f.read()
        if "import_tensorrt(" in text or re.search(r"^\s*import tensorrt", text, re.M):
            paths.add(path)
    out = {}
    for path in sorted(paths):
        with open(path) as f:
            out[path] = f.read()
    return out


def versions_needing(where: Iterable[str], supported=(10, 11)) -> Set[int]:
    tags = {w.split("@")[0] for w in where}
    return set(supported) if "both" in tags else {int(t) for t in tags}
