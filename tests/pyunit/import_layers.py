"""An import checker for a layered package: no cycles, no import pointing up.

Every ``import`` and ``from ... import`` statement counts, wherever it is
(inside functions too), except those under ``if TYPE_CHECKING:``.  A module's
layer is its first component below the package (``walsim.run.engine`` is in
``run``); the package's own ``__init__`` is a facade above every layer.
Used by ``test_layers.py`` on walsim itself and on small synthetic packages.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (the package directory)."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, int]]:
    """Import statements of a module, skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[tuple[ast.stmt, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                visit(other)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def edges(root: Path, package: str) -> list[Edge]:
    """Every import of one of the package's modules by another."""
    mods = module_names(root, package)
    out = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for stmt, line in _imports(tree):
            targets: list[str] = []
            if isinstance(stmt, ast.Import):
                targets = [a.name for a in stmt.names]
            else:
                base = stmt.module or ""
                if stmt.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (stmt.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for a in stmt.names:
                    sub = f"{base}.{a.name}" if base else a.name
                    targets.append(sub if sub in mods else base)
            for t in targets:
                # the longest module name that the import names
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and (t == package or t.startswith(package + ".")):
                    out.append(Edge(name, t, line))
    return out


def layer_of(module: str, package: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def upward(all_edges: list[Edge], package: str, layers: list[str]) -> list[str]:
    """Imports from a lower layer of a higher one (``__init__`` is above every layer)."""
    rank = {name: i for i, name in enumerate(layers)}
    top = len(layers)
    problems = []
    for e in all_edges:
        src, dst = layer_of(e.source, package), layer_of(e.target, package)
        rs, rd = rank.get(src, top if src == "__init__" else -1), rank.get(dst, top if dst == "__init__" else -1)
        if rs < 0 or rd < 0:
            problems.append(f"{e.source}:{e.line}: imports {e.target}, and a layer is not in the list "
                            f"({src if rs < 0 else dst})")
        elif rd > rs:
            problems.append(f"{e.source}:{e.line}: imports {e.target} ({src} -> {dst} points up the layers)")
    return problems


def cycles(all_edges: list[Edge]) -> list[list[str]]:
    """Import cycles (strongly connected components of more than one module, or self-loops)."""
    graph: dict[str, set[str]] = {}
    for e in all_edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out
