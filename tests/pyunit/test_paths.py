"""Where walsim finds its programs, library, scenarios and data
(walsim.core.paths): the order WALSIM_BUILD, WALSIM_BINDIR, the package's own
layout (checkout, pip bundle, make install), PATH; checked on copies of the
package placed outside the checkout, as an install places them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from walsim.core import paths

TOP = Path(__file__).resolve().parents[2]


def _fake_program(d: Path, name: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(0o755)
    return p


def _copy_package(dest: Path) -> Path:
    """A copy of the walsim package outside the checkout (dest/walsim)."""
    shutil.copytree(TOP / "tools" / "walsim", dest / "walsim",
                    ignore=shutil.ignore_patterns("__pycache__", "_bundle", "_installed.py"))
    return dest


def _where(pythonpath: Path, env: dict[str, str], expr: str) -> str:
    code = f"from walsim.core import paths; print({expr})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(pythonpath), **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_program_list_matches_the_makefiles() -> None:
    declared = set()
    for mk in TOP.glob("*/*/module.mk"):
        declared |= set(re.findall(r"^PROGRAMS \+= (\S+)", mk.read_text(), re.M))
        declared |= {f"{n}.so" for n in re.findall(r"^SHLIBS \+= (\S+)", mk.read_text(), re.M)}
    assert declared == set(paths.PROGRAMS) | set(paths.LIBRARIES)


def test_checkout_build_comes_before_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_program(tmp_path / "bin", "walsim-netd")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.delenv("WALSIM_BUILD", raising=False)
    monkeypatch.delenv("WALSIM_BINDIR", raising=False)
    assert paths.in_checkout()
    cands = paths.program_candidates("walsim-netd")
    assert cands.index(TOP / "build" / "bin" / "walsim-netd") < cands.index(tmp_path / "bin" / "walsim-netd")


def test_explicit_settings_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = _fake_program(tmp_path / "build" / "bin", "walsim-netd")
    bindir = _fake_program(tmp_path / "bindir", "walsim-netd")
    monkeypatch.setenv("WALSIM_BINDIR", str(tmp_path / "bindir"))
    monkeypatch.delenv("WALSIM_BUILD", raising=False)
    assert paths.find_program("walsim-netd") == bindir
    monkeypatch.setenv("WALSIM_BUILD", str(tmp_path / "build"))
    assert paths.find_program("walsim-netd") == build


def test_outside_a_checkout_path_is_searched(tmp_path: Path) -> None:
    lib = _copy_package(tmp_path / "lib")
    netd = _fake_program(tmp_path / "prefix" / "bin", "walsim-netd")
    _fake_program(tmp_path / "prefix" / "bin", "walsim-diskctl")
    (tmp_path / "prefix" / "lib" / "walsim").mkdir(parents=True)
    (tmp_path / "prefix" / "lib" / "walsim" / "libwalsim-disk.so").write_bytes(b"")
    env = {"PATH": f"{tmp_path / 'prefix' / 'bin'}:/usr/bin:/bin"}
    assert _where(lib, env, "paths.in_checkout()") == "False"
    assert _where(lib, env, "paths.find_program('walsim-netd')") == str(netd)
    assert _where(lib, env, "paths.library('libwalsim-disk.so')") == \
        str(tmp_path / "prefix" / "lib" / "walsim" / "libwalsim-disk.so")
    assert _where(lib, {"PATH": "/usr/bin:/bin"}, "paths.find_program('walsim-netd')") == "None"
    message = _where(lib, {"PATH": "/usr/bin:/bin"}, "paths.not_found('walsim-netd', "
                     "paths.program_candidates('walsim-netd'))")
    assert "walsim-netd not found (looked in: " in message and "/usr/bin" in message and "WALSIM_BINDIR" in message


def test_installed_layout_comes_before_path(tmp_path: Path) -> None:
    lib = _copy_package(tmp_path / "lib")
    own = _fake_program(tmp_path / "own" / "bin", "walsim-netd")
    _fake_program(tmp_path / "other" / "bin", "walsim-netd")
    (tmp_path / "own" / "share" / "walsim" / "scenarios").mkdir(parents=True)
    (lib / "walsim" / "core" / "_installed.py").write_text(
        f"BINDIR = {str(tmp_path / 'own' / 'bin')!r}\nLIBDIR = {str(tmp_path / 'own' / 'lib' / 'walsim')!r}\n"
        f"DATADIR = {str(tmp_path / 'own' / 'share' / 'walsim')!r}\n")
    env = {"PATH": f"{tmp_path / 'other' / 'bin'}:/usr/bin:/bin"}
    assert _where(lib, env, "paths.find_program('walsim-netd')") == str(own)
    assert _where(lib, env, "paths.scenarios_dir()") == str(tmp_path / "own" / "share" / "walsim" / "scenarios")
    assert _where(lib, {**env, "WALSIM_BINDIR": str(tmp_path / "other" / "bin")},
                  "paths.find_program('walsim-netd')") == str(tmp_path / "other" / "bin" / "walsim-netd")


def test_pip_bundle_is_found(tmp_path: Path) -> None:
    lib = _copy_package(tmp_path / "lib")
    netd = _fake_program(lib / "walsim" / "_bundle" / "bin", "walsim-netd")
    (lib / "walsim" / "_bundle" / "scenarios").mkdir()
    env = {"PATH": "/usr/bin:/bin"}
    assert _where(lib, env, "paths.find_program('walsim-netd')") == str(netd)
    assert _where(lib, env, "paths.scenarios_dir()") == str(lib / "walsim" / "_bundle" / "scenarios")


def test_a_file_that_is_not_executable_is_not_a_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "walsim-netd").write_text("not a program")
    monkeypatch.setenv("WALSIM_BUILD", str(tmp_path))
    monkeypatch.setenv("WALSIM_BINDIR", str(tmp_path / "bin"))
    assert paths.find_program("walsim-netd") == TOP / "build" / "bin" / "walsim-netd"  # the checkout's build


def test_cli_paths_check(tmp_path: Path) -> None:
    lib = _copy_package(tmp_path / "lib")
    env = {"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "walsim", "paths", "--check"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1
    assert "walsim-netd not found" in r.stdout and "missing: walsim-netd" in r.stderr
    r = subprocess.run([sys.executable, "-m", "walsim", "paths", "--check"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                            "WALSIM_BUILD": str(paths.build_dir())}, timeout=60)
    if not (paths.build_dir() / "bin" / "walsim-netd").exists():
        pytest.fail("run make first: the checkout's programs are not built")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"walsim-netd        {paths.build_dir() / 'bin' / 'walsim-netd'}" in r.stdout
