"""``walsim-cli demo``: what ``make demo`` runs: the headline scenarios, a
verdict table and the paths of the reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walsim.faults.clock import ClockLayer
from walsim.faults.disk import DiskLayer
from walsim.faults.net import NetLayer
from walsim.commands._support import (add_result_arguments, check_result_paths, default_scenario_dir, load_all,
                                      run_recorded, verdict_table, worst)
from walsim.judge.export import RunOutcome

NAME = "demo"
HELP = ("run the headline scenarios (tutorial, failovers; lag, partition, corruption with "
        "walsim-netd; a failing WAL fsync with the disk layer)")

#: the headline scenarios, in the order they tell the story
CLUSTER_ONLY = ["tutorial.toml"]
WITH_FAKETIME = ["clock-skew-apply-delay.toml"]
WITHOUT_NETD = ["failover-async-cut.toml"]
WITH_NETD = ["failover-async.toml", "failover-sync.toml", "failover-quorum.toml", "lag-bandwidth.toml",
             "partition-heal.toml",
             "corruption-in-flight.toml"]
WITH_DISK = ["wal-fsync-eio.toml", "power-cut-fsync.toml"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="walsim-runs", metavar="DIR",
                        help="parent directory of the run directories (default: ./walsim-runs)")
    parser.add_argument("--scenarios", default=None, metavar="DIR",
                        help="where the scenario files are (default: the checkout's scenarios/)")
    add_result_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_result_paths(args)
    d = Path(args.scenarios) if args.scenarios else default_scenario_dir()
    names = list(CLUSTER_ONLY)
    if NetLayer.unavailable() is None:
        names += WITH_NETD
    else:
        names += WITHOUT_NETD
        print("walsim-netd is not built: skipping the scenarios that need it")
    if ClockLayer.unavailable() is None:
        names += WITH_FAKETIME
    else:
        print("libfaketime is not installed: skipping the clock scenario")
    if DiskLayer.unavailable() is None:
        names += WITH_DISK
    else:
        print("the disk fault layer is not built: skipping the scenarios that need it")
    paths = [d / n for n in names if (d / n).exists()]
    missing = [n for n in names if not (d / n).exists()]
    if missing:
        print(f"not found in {d}: {', '.join(missing)}", file=sys.stderr)
    scenarios = load_all(paths)
    if scenarios is None or not scenarios:
        return 2
    rows, statuses, reports = [], [], []
    outcomes: list[RunOutcome] = []
    for sc, path in zip(scenarios, paths):
        result = run_recorded(args, sc, path, outcomes, NAME)
        rows += [(sc.name, v) for v in result.verdicts]
        reports.append((sc.name, result.rundir / "report.html", result))
        statuses.append(result.exit_status)
    print()
    verdict_table(rows)
    print()
    for name, report, result in reports:
        print(f"{name:<24} {report}")
        if result.exit_status:
            print(f"{'':<24} reproduce with: {result.reproduce}")
    return worst(statuses)
