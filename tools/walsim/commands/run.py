"""``walsim-cli run SCENARIO... [--seed N] [--out DIR] [--keep]``: run scenarios."""

from __future__ import annotations

import argparse

from walsim.api import run_scenario
from walsim.commands._support import (Progress, add_scenario_arguments, load_arguments, sigterm_as_interrupt,
                           verdict_table, worst)
from walsim.commands._pgversion import add_pg_argument, check_pg_versions

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
    add_pg_argument(parser, "run the scenarios on PostgreSQL N (overrides [cluster] version)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_arguments(args.scenarios)
    if loaded is None:
        return 2
    # a version that is not installed is an error before anything starts
    if not check_pg_versions([args.pg if args.pg is not None else sc.pg_version for _, sc in loaded]):
        return 2
    statuses = []
    for path, sc in loaded:
        with sigterm_as_interrupt(), Progress() as progress:
            result = run_scenario(sc, seed=args.seed, out=args.out, keep=args.keep,
                                  progress=progress, argv_file=str(path), pg_version=args.pg)
        print()
        verdict_table([(sc.name, v) for v in result.verdicts])
        print(f"report: {result.rundir / 'report.html'}")
        if result.exit_status != 0:
            print(f"reproduce with: {result.reproduce}")
        statuses.append(result.exit_status)
    return worst(statuses)
