"""``walsim-cli run SCENARIO... [--seed N] [--out DIR] [--keep] [--junit FILE] [--json FILE]``:
run scenarios.

``--junit`` and ``--json`` write the machine-readable results of every run
(:mod:`walsim.judge.export`); they are rewritten after each run, so that a
pipeline cancelled half-way still has the runs that finished, and the
interrupted one (its verdicts as judged from what it recorded)."""

from __future__ import annotations

import argparse
from pathlib import Path

from walsim.api import run_scenario
from walsim.commands._support import (Progress, add_result_arguments, add_scenario_arguments, check_result_paths,
                                      load_arguments, sigterm_as_interrupt, verdict_table, worst, write_results)
from walsim.core.exitstatus import INTERRUPTED
from walsim.judge.export import RunOutcome
from walsim.run.engine import new_rundir

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_result_paths(args)
    loaded = load_arguments(args.scenarios)
    if loaded is None:
        return 2
    statuses: list[int] = []
    outcomes: list[RunOutcome] = []
    for path, sc in loaded:
        rundir = new_rundir(Path(args.out), sc.name, sc.seed if args.seed is None else args.seed)
        try:
            with sigterm_as_interrupt(), Progress() as progress:
                result = run_scenario(sc, seed=args.seed, out=args.out, keep=args.keep,
                                      progress=progress, argv_file=str(path), rundir=rundir)
        except KeyboardInterrupt:
            # The partial run was judged from what it recorded; its status is
            # the command's: interrupted.
            outcomes.append(RunOutcome.from_rundir(rundir, exit_status=INTERRUPTED))
            write_results(args, outcomes, NAME)
            raise
        outcomes.append(RunOutcome.from_rundir(result.rundir, result.verdicts, result.exit_status))
        write_results(args, outcomes, NAME)
        print()
        verdict_table([(sc.name, v) for v in result.verdicts])
        print(f"report: {result.rundir / 'report.html'}")
        if result.exit_status != 0:
            print(f"reproduce with: {result.reproduce}")
        statuses.append(result.exit_status)
    return worst(statuses)
