"""``walsim-cli run SCENARIO... [--seed N] [--out DIR] [--keep]``: run scenarios."""

from __future__ import annotations

import argparse
import sys

from walsim.api import run_scenario
from walsim.commands._support import (Progress, add_scenario_arguments, load_arguments, sigterm_as_interrupt,
                           verdict_table, worst)

NAME = "run"
HELP = "run scenario files (or directories of them) and judge their verdicts"


def register(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.add_argument("--seed", type=lambda s: int(s, 0), default=None,
                        help="root seed (default: the scenario's own seed)")
    parser.add_argument("--out", default="walsim-runs", metavar="DIR",
                        help="parent directory of the run directories (default: ./walsim-runs)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the cluster's data directories after the run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_arguments(args.scenarios)
    if loaded is None:
        return 2
    spaces = [path for path, sc in loaded if sc.explore is not None]
    for path in spaces:
        print(f"walsim-cli: error: {path} declares a fault space ([explore]): explore it with "
              f"`walsim-cli explore {path}`, or run one of its schedules: "
              f"`walsim-cli explore {path} --print-schedule SEED > schedule.toml`", file=sys.stderr)
    if spaces:
        return 2
    statuses = []
    for path, sc in loaded:
        with sigterm_as_interrupt(), Progress() as progress:
            result = run_scenario(sc, seed=args.seed, out=args.out, keep=args.keep,
                                  progress=progress, argv_file=str(path))
        print()
        verdict_table([(sc.name, v) for v in result.verdicts])
        print(f"report: {result.rundir / 'report.html'}")
        if result.exit_status != 0:
            print(f"reproduce with: {result.reproduce}")
        statuses.append(result.exit_status)
    return worst(statuses)
