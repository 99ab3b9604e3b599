"""``walsim-cli check SCENARIO...``: validate scenario files without running them."""

from __future__ import annotations

import argparse

from walsim.commands._support import add_scenario_arguments, load_arguments

NAME = "check"
HELP = "validate scenario files (exit 2 and every problem listed when one is invalid)"


def register(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_arguments(args.scenarios)
    if loaded is None:
        return 2
    for path, sc in loaded:
        needs = ", ".join(sorted(sc.needs()))
        space = f", a fault space of {len(sc.explore.entries)} faults" if sc.explore is not None else ""
        print(f"ok: {path}: {sc.name}: {len(sc.nodes)} nodes, {len(sc.steps)} steps, "
              f"{len(sc.verdicts)} verdicts{space} (needs {needs})")
    return 0
