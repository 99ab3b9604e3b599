"""One run of a schedule in a process of its own: ``python -m walsim.explore.worker``.

The explorer starts one worker per run (:mod:`walsim.explore.pool`), so that
runs share nothing but the machine: each has its own cluster directory,
ports from the lock-file allocator, walsim-netd with its own work directory,
and its own signal handling.  SIGTERM unwinds like Ctrl-C: the engine stops
every server it started, the partial run is judged, and the worker exits 130.
Exit status: the run's (0, 1, 2), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path
from typing import Sequence

from walsim.api import REPORT_WHEN, load_scenario, run_scenario
from walsim.core.errors import ScenarioError
from walsim.pg.snapshot import wait_refills

#: seconds a worker waits at its end for the spare copies it started (walsim.pg.snapshot)
REFILL_WAIT = 30.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walsim.explore.worker",
                                     description="run one schedule into a given run directory")
    parser.add_argument("schedule", type=Path)
    parser.add_argument("rundir", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("--report", choices=REPORT_WHEN, default="failures")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        scenario = load_scenario(args.schedule)
    except ScenarioError as exc:
        (args.rundir / "harness-error.txt").write_text(f"invalid schedule:\n{exc}\n")
        print(exc, file=sys.stderr)
        return 2
    try:
        result = run_scenario(scenario, seed=args.seed, rundir=args.rundir, argv_file=str(args.schedule),
                              report=args.report, index=False)
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - the explorer records it as a harness error
        (args.rundir / "harness-error.txt").write_text(traceback.format_exc())
        traceback.print_exc()
        return 2
    # Spare copies for the next runs are made while this one runs; let them finish
    # (bounded) rather than leave them half done.
    wait_refills(REFILL_WAIT)
    return result.exit_status


if __name__ == "__main__":  # pragma: no cover - run by the pool
    sys.exit(main())
