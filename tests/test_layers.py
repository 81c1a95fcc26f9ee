"""Imports point one way: every idlevit module's imports (inside functions too) stay within its package or go down.

The layer order is docs/design.md §5 written as data. A module may import its own package and any package
of a lower layer; packages that share a layer are siblings and import nothing of each other. Lazy imports
count: they hide a cycle from `import`, not from the design. `python -m tests.test_layers` prints the graph.
"""
import ast
import os
import re
from collections import defaultdict

import pytest

import idlevit

ROOT = os.path.dirname(idlevit.__file__)

# lowest first; "idlevit" is the package itself (its __init__: version, names loaded on first use)
LAYERS = (
    ("errors", "lazy"),
    ("fileio", "limits", "optional_deps", "images"),
    ("checkpoint",),
    ("models",),
    ("idlevit", "factory"),
    ("onnx_file",),
    ("export", "calibration", "training"),
    ("engines",),
    ("runtime",),
    ("serving",),
    ("workflows",),
    ("cli",),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _modules():
    """{dotted module name: path} of every module in the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3]
                dotted = rel.replace(os.sep, ".")
                found[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = \
                    os.path.join(folder, name)
    return found


MODULES = _modules()


MODULE_STRING = re.compile(r"idlevit(\.\w+)+(:\w+)?")   # "idlevit.runtime.ort_runner:OrtRunner" (importlib)


def _imports(module: str, path: str):
    """(line, imported idlevit module) for every import in the file, relative ones resolved.

    Imports by name count too: strings naming an idlevit module (importlib tables such as make_runner's)
    and the `name -> ".submodule"` tables of `lazy_exports` in a package's __init__.
    """
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    lazy = any(isinstance(n, ast.Name) and n.id == "lazy_exports" for n in ast.walk(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:   # `from . import models` imports a module, not a name
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else base
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if MODULE_STRING.fullmatch(node.value):
                yield node.lineno, node.value.split(":")[0]
            elif lazy and re.fullmatch(r"\.\w+(\.\w+)*", node.value):
                yield node.lineno, package + node.value
        elif lazy and isinstance(node, ast.Dict):   # {"models": ""}: the name is itself a submodule
            for key, value in zip(node.keys, node.values):
                if isinstance(value, ast.Constant) and value.value == "" and isinstance(key, ast.Constant):
                    yield node.lineno, f"{package}.{key.value}"


def unit_of(module: str) -> str:
    """The layer unit of a module: its top-level package or module under idlevit, or "idlevit" itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def edges():
    """{(importing unit, imported unit): ["module:line", ...]} between different units."""
    found = defaultdict(list)
    for module, path in sorted(MODULES.items()):
        for line, target in _imports(module, path):
            if target.split(".")[0] == "idlevit" and unit_of(target) != unit_of(module):
                found[(unit_of(module), unit_of(target))].append(f"{module}:{line} -> {target}")
    return found


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in MODULES}
    assert units <= set(RANK), f"place {sorted(units - set(RANK))} in LAYERS (and docs/design.md §5)"


def test_imports_point_down():
    upward = [where for (src, dst), sites in edges().items() if RANK.get(src, -1) <= RANK.get(dst, -1)
              for where in sites]
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_package_graph_has_no_cycle():
    graph = defaultdict(set)
    for src, dst in edges():
        graph[src].add(dst)
    done, path = set(), []

    def visit(unit):
        if unit in path:
            return path[path.index(unit):] + [unit]
        if unit in done:
            return None
        path.append(unit)
        for nxt in sorted(graph[unit]):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(unit)
        return None
    for unit in sorted(graph):
        cycle = visit(unit)
        assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("source,expect", [
    ("from ..runtime.parity import compare_runners\n", "idlevit.runtime.parity"),
    ("def f():\n    from ..workflows import export\n", "idlevit.workflows.export"),
    ("import idlevit.cli.export\n", "idlevit.cli.export"),
    ('RUNNERS = {"ort": "idlevit.runtime.ort_runner:OrtRunner"}\n', "idlevit.runtime.ort_runner"),
    ('__getattr__, __dir__ = lazy_exports(__name__, {"export_model": ".workflows.export"})\n',
     "idlevit.export.workflows.export"),
])
def test_the_walk_sees_relative_lazy_and_absolute_imports(tmp_path, source, expect):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert [t for _, t in _imports("idlevit.export.m", str(path))] == [expect]


if __name__ == "__main__":   # python -m tests.test_layers: the package graph, one line per importing unit
    graph = defaultdict(set)
    for src, dst in edges():
        graph[src].add(dst)
    for unit in sorted(graph, key=lambda u: (-RANK.get(u, 99), u)):
        print(unit, "->", ", ".join(sorted(graph[unit], key=lambda u: (-RANK.get(u, 99), u))))
