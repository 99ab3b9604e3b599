"""``walsim-cli paths [--check]``: where this walsim finds its programs, its
disk layer library, its scenarios, its data sets and PostgreSQL.

What it prints comes from :mod:`walsim.core.paths` (the one place that
resolves them), with every place looked in for what was not found; with
``--check`` a missing program, library or directory makes the exit status 1,
which is how an install is checked (``make install``, ``pip install``, the
Debian package)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from walsim.core import paths
from walsim.core.errors import WalsimError
from walsim.core.version import __version__
from walsim.pg.pgbin import find_bindir

NAME = "paths"
HELP = "show where walsim finds its programs, library, scenarios, data sets and PostgreSQL"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if any program, library or directory is missing")
    parser.set_defaults(func=run)


def _layout() -> str:
    if paths.in_checkout():
        return f"source checkout {paths.SOURCE_TOP}"
    if paths.BUNDLE_DIR.is_dir():
        return f"pip install (programs bundled in {paths.BUNDLE_DIR})"
    layout = paths.installed_layout()
    if layout is not None:
        return f"make install (bin {layout['bindir']}, data {layout['datadir']})"
    return "unknown (programs from WALSIM_BINDIR or PATH)"


def report(out: TextIO = sys.stdout) -> list[str]:
    """Print the table; returns what is missing."""
    missing: list[str] = []
    print(f"walsim {__version__}: package {paths.PACKAGE_DIR}", file=out)
    print(f"layout: {_layout()}", file=out)
    rows: list[tuple[str, str]] = []
    for name in paths.PROGRAMS:
        found = paths.find_program(name)
        if found is None:
            missing.append(name)
            rows.append((name, paths.not_found(name, paths.program_candidates(name))))
        else:
            rows.append((name, str(found)))
    for name in paths.LIBRARIES:
        lib = paths.library(name)
        if lib.is_file():
            rows.append((name, str(lib)))
        else:
            missing.append(name)
            rows.append((name, paths.not_found(name, paths.library_candidates(name))))
    scen = paths.scenarios_dir()
    if not scen.is_dir():
        missing.append("scenarios")
    rows.append(("scenarios", str(scen) + ("" if scen.is_dir() else " (missing)")))
    data = paths.test_data_dir()
    if not data.is_dir():
        missing.append("data")
    rows.append(("data sets", str(data) + ("" if data.is_dir() else " (missing)")))
    try:
        rows.append(("PostgreSQL", str(find_bindir())))
    except WalsimError as exc:
        missing.append("PostgreSQL")
        rows.append(("PostgreSQL", f"not found: {exc}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=out)
    return missing


def run(args: argparse.Namespace) -> int:
    missing = report()
    if missing and args.check:
        print(f"walsim-cli: missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0
