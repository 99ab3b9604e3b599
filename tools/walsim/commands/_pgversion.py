"""``--pg N`` of the commands that build clusters (run, cluster up): the option
and the check, before anything starts, that PostgreSQL N is installed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from walsim.core.errors import PgBinariesNotFound
from walsim.core.pgmajors import SUPPORTED
from walsim.pg.pgbin import PgBin


def _major(text: str) -> int:
    if not text.isdigit() or int(text) not in SUPPORTED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a supported PostgreSQL major "
                                         f"({', '.join(map(str, SUPPORTED))})")
    return int(text)


def add_pg_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--pg", type=_major, default=None, metavar="N",
                        help=f"{help}; 13 to 18 (default: WALSIM_PG, else the installation found); "
                             f"install the others with `make deps-versions`")


def check_pg_versions(majors: Iterable[int | None]) -> bool:
    """Every major (None: the default installation) can be found; else print why, once each."""
    ok = True
    for major in dict.fromkeys(majors):
        try:
            PgBin(version=major) if major is not None else PgBin()
        except PgBinariesNotFound as exc:
            print(f"walsim-cli: error: {exc}", file=sys.stderr)
            ok = False
    return ok
