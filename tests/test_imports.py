"""Imports go one way: no cycle between the modules of ``src/occseg`` (every import counted, also those inside
functions and under ``TYPE_CHECKING``), and the top-level package imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import occseg

PACKAGE = Path(occseg.__file__).resolve().parent


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the package folder ``root``."""
    mods = {}
    for f in sorted(root.rglob("*.py")):
        parts = f.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def imported_modules(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its file (relative imports resolved; a name
    imported from a package counts as its submodule when it is one, else as the package)."""
    pkg = name.split(".")[0]
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                b = base
                for _ in range(node.level - 1):
                    b = b.rpartition(".")[0]
                mod = f"{b}.{mod}" if mod else b
            targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
        else:
            continue
        for t in targets:
            if t != pkg and not t.startswith(pkg + "."):
                continue
            while t and t not in mods:
                t = t.rpartition(".")[0]
            # a module inside a package may import its own package's __init__ (it runs first anyway)
            if t and t != name and not (mods[t].name == "__init__.py" and name.startswith(t + ".")):
                out.add(t)
    return out


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components with more than one module)."""
    mods = module_names(root)
    names = sorted(mods)
    index = {m: i for i, m in enumerate(names)}
    rows, cols = [], []
    for m in names:
        for t in imported_modules(m, mods[m], mods):
            rows.append(index[m])
            cols.append(index[t])
    graph = csr_matrix(([1] * len(rows), (rows, cols)), shape=(len(names), len(names)))
    _, comp = connected_components(graph, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for m, c in zip(names, comp):
        groups.setdefault(int(c), []).append(m)
    return [g for g in groups.values() if len(g) > 1]


def test_no_import_cycle_between_modules_of_the_package():
    assert import_cycles(PACKAGE) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_local_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub.b import f\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import g\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    assert import_cycles(pkg) == [["pkg.a", "pkg.sub.b"]]


def test_the_package_imports_and_offers_its_python_api():
    out = subprocess.run(
        [sys.executable, "-c", "import occseg; print(occseg.load, occseg.train, occseg.evaluate, occseg.models)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "function load" in out.stdout
