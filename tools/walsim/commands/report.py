"""``walsim-cli report RUNDIR``: recompute the verdicts of a run from its
recorded files and rebuild its report.html."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from walsim.record import RunRecord
from walsim.report import build_report
from walsim.runner import verdict_table
from walsim.scenario import ScenarioError
from walsim.verdicts import ERROR, FAIL, Verdict, evaluate_all, overall

NAME = "report"
HELP = "recompute a run's verdicts from its recorded data and rebuild report.html"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rundir", metavar="RUNDIR", help="a run directory written by walsim-cli run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    d = Path(args.rundir)
    if not (d / "scenario.toml").is_file():
        print(f"walsim-cli: error: {d} is not a run directory (no scenario.toml)", file=sys.stderr)
        return 2
    try:
        record = RunRecord(d)
        verdicts = evaluate_all(record)
    except ScenarioError as exc:
        print(f"walsim-cli: error: the run's scenario.toml is invalid:\n{exc}", file=sys.stderr)
        return 2
    info = json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else {}
    if info.get("step_error"):
        verdicts.insert(0, Verdict("steps", "steps", FAIL, info["step_error"], {}))
    if info.get("harness_error"):
        verdicts.insert(0, Verdict("harness", "harness", ERROR, info["harness_error"], {}))
    (d / "verdicts.json").write_text(json.dumps([v.to_json() for v in verdicts], indent=1, default=str))
    out = build_report(d, verdicts)
    verdict_table([(record.scenario.name, v) for v in verdicts])
    print(f"report: {out}")
    status = overall(verdicts)
    if status and info.get("reproduce"):
        print(f"reproduce with: {info['reproduce']}")
    return status
