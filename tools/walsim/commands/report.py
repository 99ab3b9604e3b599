"""``walsim-cli report RUNDIR``: recompute the verdicts of a run from its
recorded files and rebuild its report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walsim.api import judge, open_run, update_index
from walsim.commands._support import add_result_arguments, check_result_paths, verdict_table, write_results
from walsim.core.errors import ScenarioError
from walsim.judge.export import RunOutcome

NAME = "report"
HELP = "recompute a run's verdicts from its recorded data and rebuild report.html"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rundir", metavar="RUNDIR", help="a run directory written by walsim-cli run")
    add_result_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_result_paths(args)
    d = Path(args.rundir)
    if not (d / "scenario.toml").is_file():
        print(f"walsim-cli: error: {d} is not a run directory (no scenario.toml)", file=sys.stderr)
        return 2
    try:
        record = open_run(d)
    except ScenarioError as exc:
        print(f"walsim-cli: error: the run's scenario.toml is invalid:\n{exc}", file=sys.stderr)
        return 2
    verdicts, status = judge(record)
    update_index(d.parent)
    write_results(args, [RunOutcome.from_rundir(d, verdicts, status)], NAME)
    verdict_table([(record.scenario.name, v) for v in verdicts])
    print(f"report: {d / 'report.html'}")
    if status and record.run.get("reproduce"):
        print(f"reproduce with: {record.run['reproduce']}")
    return status
