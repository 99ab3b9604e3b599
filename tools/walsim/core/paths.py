"""Where walsim's own files are: the C programs, the disk layer library, the
shipped scenarios and the data sets.

Every lookup of a built program, library, scenario directory or data set goes
through here, so that a checkout, ``make install``, ``pip install`` and the
Debian package are resolved in one place.  The order, for a program NAME:

1. ``$WALSIM_BUILD/bin/NAME`` (a build directory: what ``make pytest`` sets);
2. ``$WALSIM_BINDIR/NAME``;
3. the layout this package was loaded from: ``build/bin`` of the checkout it
   sits in, the programs bundled into the package by ``pip install``
   (``walsim/_bundle/bin``), or the ``bin`` directory of the prefix that
   ``make install`` (or the Debian package) installed it into;
4. ``PATH``.

Explicit settings come first; then the programs that were built with this
copy of the package (walsim-netd's control protocol and walsim-diskctl's
region format change with the version), and ``PATH`` last, so that an
unrelated walsim on ``PATH`` (say ``/usr/bin`` from the Debian package) never
replaces the checkout's own build.  Libraries and data follow the same order
(``$WALSIM_LIBDIR``, ``$WALSIM_SCENARIOS``; the library beside a program found
on ``PATH`` is ``../lib/walsim``, the scenarios ``../share/walsim/scenarios``).

``walsim-cli paths`` prints what this module finds and where it looked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: walsim/core/paths.py -> walsim/
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: the top of the source tree this package was loaded from (tools/walsim/core/paths.py)
SOURCE_TOP = Path(__file__).resolve().parents[3]
#: what ``pip install`` bundles into the package (bin/, lib/, scenarios/, data/)
BUNDLE_DIR = PACKAGE_DIR / "_bundle"

#: the C programs and shared libraries walsim builds (the ``module.mk`` files
#: declare them; tests/pyunit/test_paths.py keeps the two lists in step)
PROGRAMS = ("walsim-netd", "walsim-sender", "walsim-receiver", "walsim-diskctl", "walsim-probe",
            "walsim-sampler")
LIBRARIES = ("libwalsim-disk.so", "libwalsim-bind.so")

BUILD_ENV = "WALSIM_BUILD"
BINDIR_ENV = "WALSIM_BINDIR"
LIBDIR_ENV = "WALSIM_LIBDIR"
SCENARIOS_ENV = "WALSIM_SCENARIOS"


def in_checkout() -> bool:
    """True when the package is the ``tools/walsim`` of a source checkout."""
    return (SOURCE_TOP / "Makefile").is_file() and (SOURCE_TOP / "tools" / "walsim") == PACKAGE_DIR


def installed_layout() -> dict[str, Path] | None:
    """The directories ``make install`` recorded in ``walsim/core/_installed.py``
    (``bindir``, ``libdir``, ``datadir``), or None when the package was not
    installed that way."""
    try:
        from walsim.core import _installed  # type: ignore[attr-defined]  # written by make install
    except ImportError:
        return None
    return {"bindir": Path(_installed.BINDIR), "libdir": Path(_installed.LIBDIR),
            "datadir": Path(_installed.DATADIR)}


def build_dir() -> Path:
    """``$WALSIM_BUILD``, else ``build/`` of the checkout (which may not exist
    in an installed package: use :func:`program` and :func:`library`)."""
    env = os.environ.get(BUILD_ENV)
    return Path(env) if env else SOURCE_TOP / "build"


def _own_dirs(kind: str) -> list[Path]:
    """The directories of ``kind`` (``bin``, ``lib``, ``scenarios``, ``data``)
    that belong to this copy of the package: checkout, pip bundle, install."""
    out: list[Path] = []
    if in_checkout():
        out.append({"bin": SOURCE_TOP / "build" / "bin", "lib": SOURCE_TOP / "build" / "lib",
                    "scenarios": SOURCE_TOP / "scenarios", "data": SOURCE_TOP / "tests" / "data"}[kind])
    out.append(BUNDLE_DIR / kind)
    layout = installed_layout()
    if layout is not None:
        out.append({"bin": layout["bindir"], "lib": layout["libdir"],
                    "scenarios": layout["datadir"] / "scenarios", "data": layout["datadir"] / "data"}[kind])
    return out


def _path_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]


def program_candidates(name: str) -> list[Path]:
    """Every place :func:`program` looks for ``name``, in order."""
    out: list[Path] = []
    if os.environ.get(BUILD_ENV):
        out.append(Path(os.environ[BUILD_ENV]) / "bin" / name)
    if os.environ.get(BINDIR_ENV):
        out.append(Path(os.environ[BINDIR_ENV]) / name)
    out += [d / name for d in _own_dirs("bin")]
    out += [d / name for d in _path_dirs()]
    return out


def _is_program(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def find_program(name: str) -> Path | None:
    """The walsim C program ``name`` (``walsim-netd``, ``walsim-probe``...), or None."""
    return next((p for p in program_candidates(name) if _is_program(p)), None)


def program(name: str) -> Path:
    """The path of a walsim C program; when it is nowhere, the first place
    looked (so that an error message names a real expectation; see
    :func:`not_found`)."""
    found = find_program(name)
    if found is not None:
        return found
    cands = program_candidates(name)
    return cands[0] if cands else Path(name)


def library_candidates(name: str) -> list[Path]:
    """Every place :func:`library` looks for the shared library ``name``, in order."""
    out: list[Path] = []
    if os.environ.get(BUILD_ENV):
        out.append(Path(os.environ[BUILD_ENV]) / "lib" / name)
    if os.environ.get(LIBDIR_ENV):
        out.append(Path(os.environ[LIBDIR_ENV]) / name)
    if os.environ.get(BINDIR_ENV):
        out.append(Path(os.environ[BINDIR_ENV]).parent / "lib" / "walsim" / name)
    out += [d / name for d in _own_dirs("lib")]
    # beside a walsim program found on PATH: PREFIX/bin/walsim-diskctl -> PREFIX/lib/walsim/NAME
    for d in _path_dirs():
        if _is_program(d / "walsim-diskctl"):
            out.append(d.parent / "lib" / "walsim" / name)
    return out


def library(name: str) -> Path:
    """The path of a shared library walsim builds (``libwalsim-disk.so``); when it
    is nowhere, the first place looked."""
    cands = library_candidates(name)
    found = next((p for p in cands if p.is_file()), None)
    return found or (cands[0] if cands else Path(name))


def not_found(name: str, candidates: list[Path]) -> str:
    """``NAME not found (looked in: ...)``, for error messages."""
    dirs = list(dict.fromkeys(str(c.parent) for c in candidates))
    shown = ", ".join(dirs[:8]) + (", ..." if len(dirs) > 8 else "")
    return (f"{name} not found (looked in: {shown}); build it with `make`, or set {BINDIR_ENV} "
            f"to the directory that holds the walsim programs")


def scenario_dir_candidates() -> list[Path]:
    """Every place :func:`scenarios_dir` looks, in order."""
    out: list[Path] = []
    if os.environ.get(SCENARIOS_ENV):
        out.append(Path(os.environ[SCENARIOS_ENV]))
    out += _own_dirs("scenarios")
    for d in _path_dirs():
        if _is_program(d / "walsim-cli"):
            out.append(d.parent / "share" / "walsim" / "scenarios")
    return out


def scenarios_dir() -> Path:
    """``$WALSIM_SCENARIOS``, else the shipped scenarios of the checkout, the
    pip bundle or the install prefix, else ``scenarios/`` (relative)."""
    env = os.environ.get(SCENARIOS_ENV)
    if env:
        return Path(env)
    return next((c for c in scenario_dir_candidates() if c.is_dir()), Path("scenarios"))


def test_data_dir() -> Path:
    """The data sets (real WAL segments, protocol captures): ``tests/data`` of
    the checkout, else ``share/walsim/data`` of the install (or the pip bundle)."""
    cands = _own_dirs("data")
    return next((c for c in cands if c.is_dir()), cands[0])
