"""The package's layers hold: no import cycle, no import pointing up, and the
engine names no fault layer.  The checker itself is tested on small packages
with a planted cycle and a planted upward import, so that a green run means
something."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from import_layers import cycles, edges, upward
from walsim.api import vocabulary

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "tools" / "walsim"
#: bottom to top; see docs/architecture.md
LAYERS = ["core", "pg", "sim", "scenario", "managers", "faults", "run", "judge", "api", "pytest_plugin",
          "conform", "commands", "cli", "__main__"]


def test_walsim_has_no_import_cycle() -> None:
    assert cycles(edges(PACKAGE_DIR, "walsim")) == []


def test_walsim_imports_point_down_only() -> None:
    assert upward(edges(PACKAGE_DIR, "walsim"), "walsim", LAYERS) == []


def test_every_module_is_in_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE_DIR.iterdir()
            if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert tops - {"__init__"} <= set(LAYERS)


def _package(tmp: Path, files: dict[str, str]) -> Path:
    root = tmp / "pkg"
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return root


def test_checker_finds_a_cycle_inside_functions(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "low/a.py": "def f():\n    from pkg.low import b\n",
        "low/b.py": "from pkg.low.c import x\n",
        "low/c.py": "import pkg.low.a\nx = 1\n",
    })
    assert cycles(edges(root, "pkg")) == [["pkg.low.a", "pkg.low.b", "pkg.low.c"]]


def test_checker_finds_an_upward_import(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "low/a.py": "from pkg.high import b\n",
        "high/b.py": "from pkg.low.a import *\n",
    })
    found = upward(edges(root, "pkg"), "pkg", ["low", "high"])
    assert len(found) == 1 and "pkg.low.a:1: imports pkg.high.b (low -> high points up" in found[0]


def test_checker_exempts_type_checking_blocks_only(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "low/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import b\n"
                    "else:\n    from pkg.high import c\n",
        "high/b.py": "", "high/c.py": "",
    })
    found = upward(edges(root, "pkg"), "pkg", ["low", "high"])
    assert [f.split(": ")[1] for f in found] == ["imports pkg.high.c (low -> high points up the layers)"]


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    root = _package(tmp_path, {"low/a.py": "from . import b\n", "low/b.py": "from .a import x\nx = 1\n"})
    assert cycles(edges(root, "pkg")) == [["pkg.low.a", "pkg.low.b"]]


def _words_in_strings(path: Path) -> set[str]:
    """The words of a module's string constants, docstrings excluded: how code would
    pick a fault layer by its name."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
            out.update(n.value.replace(".", " ").replace("-", " ").split())
    return out


@pytest.mark.parametrize("module", ["run/engine.py", "run/context.py", "run/settle.py"])
def test_engine_names_no_fault_layer(module: str) -> None:
    layer_names = {layer.name for layer in vocabulary().layers}
    assert _words_in_strings(PACKAGE_DIR / module) & layer_names == set()
    source = "walsim." + module[:-3].replace("/", ".")
    assert [e.target for e in edges(PACKAGE_DIR, "walsim")
            if e.source == source and e.target.startswith("walsim.faults")] == []
