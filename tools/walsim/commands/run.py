"""``walsim-cli run SCENARIO... [--seed N] [--out DIR] [--keep] [--junit FILE] [--json FILE] [--pg N]``:
run scenarios (on PostgreSQL N with ``--pg``).

``--junit`` and ``--json`` write the machine-readable results of every run
(:mod:`walsim.judge.export`); they are rewritten after each run, so that a
pipeline cancelled half-way still has the runs that finished, and the
interrupted one (its verdicts as judged from what it recorded)."""

from __future__ import annotations

import argparse
import sys

from walsim.commands._pgversion import add_pg_argument, check_pg_versions
from walsim.commands._support import (add_result_arguments, add_scenario_arguments, check_result_paths,
                                      load_arguments, run_recorded, verdict_table, worst)
from walsim.judge.export import RunOutcome

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
    add_result_arguments(parser)
    add_pg_argument(parser, "run the scenarios on PostgreSQL N (overrides [cluster] version)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_result_paths(args)
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
    # a version that is not installed is an error before anything starts
    if not check_pg_versions([args.pg if args.pg is not None else sc.pg_version for _, sc in loaded]):
        return 2
    statuses: list[int] = []
    outcomes: list[RunOutcome] = []
    for path, sc in loaded:
        result = run_recorded(args, sc, path, outcomes, NAME, seed=args.seed, keep=args.keep)
        print()
        verdict_table([(sc.name, v) for v in result.verdicts])
        print(f"report: {result.rundir / 'report.html'}")
        if result.exit_status != 0:
            print(f"reproduce with: {result.reproduce}")
        statuses.append(result.exit_status)
    return worst(statuses)
