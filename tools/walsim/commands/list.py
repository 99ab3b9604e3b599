"""``walsim-cli list [DIR]``: the scenarios of a directory with their descriptions."""

from __future__ import annotations

import argparse
import sys
import textwrap

from walsim.api import load_scenario
from walsim.commands._support import default_scenario_dir
from walsim.core.errors import ScenarioError

NAME = "list"
HELP = "list scenarios (default directory: the checkout's scenarios/) with a one-line description"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", default=None,
                        help="directory of *.toml scenario files (default: scenarios/, or $WALSIM_SCENARIOS)")
    parser.set_defaults(func=run)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    end = flat.find(". ")
    first = flat if end < 0 else flat[: end + 1]
    return textwrap.shorten(first, 100, placeholder="...")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path
    d = Path(args.directory) if args.directory else default_scenario_dir()
    if not d.is_dir():
        print(f"walsim-cli: error: {d}: not a directory of scenario files", file=sys.stderr)
        return 2
    files = sorted(d.glob("*.toml"))
    if not files:
        print(f"no scenario files in {d}")
        return 0
    status = 0
    width = max(len(f.name) for f in files)
    for f in files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            print(f"{f.name:<{width}}  INVALID: {exc.issues[0]}")
            status = 2
            continue
        print(f"{f.name:<{width}}  {_one_line(sc.description)}")
    return status
