"""``walsim-cli check SCENARIO...``: validate scenario files without running them."""

from __future__ import annotations

import argparse
import sys

from walsim.runner import expand, load_all

NAME = "check"
HELP = "validate scenario files (exit 2 and every problem listed when one is invalid)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                        help="a scenario file, or a directory of *.toml scenario files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = expand(args.scenarios)
    if not paths:
        print("walsim-cli: error: no scenario files found", file=sys.stderr)
        return 2
    scenarios = load_all(paths)
    if scenarios is None:
        return 2
    for sc, path in zip(scenarios, paths):
        needs = ", ".join(sorted(sc.needs()))
        print(f"ok: {path}: {sc.name}: {len(sc.nodes)} nodes, {len(sc.steps)} steps, "
              f"{len(sc.verdicts)} verdicts (needs {needs})")
    return 0
