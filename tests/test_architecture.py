"""The package's shape: no import cycle between its packages, and pure modules stay pure.

Imports are read from the source (every ``import`` and ``from ... import``, including those
inside functions, since a lazy import still ties two packages together).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pos_loyalty"


def _imported(path: Path) -> set[str]:
    """Every ``pos_loyalty.*`` module name a source file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("pos_loyalty.")}


def package_graph() -> dict[str, set[str]]:
    """Subpackage -> the other subpackages its modules import (top-level modules excluded:
    ``errors``, ``config``, ``ids`` and the CLI are the root every package may use)."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    graph: dict[str, set[str]] = defaultdict(set)
    for pkg in sorted(packages):
        graph[pkg]
        for path in (PACKAGE / pkg).rglob("*.py"):
            for name in _imported(path):
                target = name.split(".")[1]
                if target in packages and target != pkg:
                    graph[pkg].add(target)
    return dict(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


class TestPackageImports:
    def test_the_checker_sees_a_cycle(self) -> None:
        """A graph with a loop is reported with every package on it, a tree is not."""
        assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
        assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []

    def test_the_graph_is_read_from_the_source(self) -> None:
        """Known edges are found (the daemon's package uses the store and the sync worker)."""
        graph = package_graph()
        assert {"store", "sync"} <= graph["terminal"]
        assert "store" in graph["sync"]

    def test_no_import_cycle_between_packages(self) -> None:
        """No package imports, directly or through others, a package that imports it."""
        graph = package_graph()
        assert cycles(graph) == [], {k: sorted(v) for k, v in graph.items()}


PURE = ["pos_loyalty.terminal.session"]
"""Modules that decide without I/O: importing them must not load a database library."""


class TestPureModules:
    @pytest.mark.parametrize("module", PURE)
    def test_importing_loads_no_database_library(self, module: str) -> None:
        """A fresh interpreter importing the module has not imported SQLAlchemy or sqlite3."""
        code = (f"import sys, {module}; "
                "print(sorted(m for m in ('sqlalchemy', 'sqlite3') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.strip()
        assert out == "[]"
