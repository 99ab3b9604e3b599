"""walsim's public API and its composition root.

This is where walsim's parts are put together: :func:`vocabulary` lists every
fault layer, the built-in step kinds and every verdict kind (registering a new
fault layer or verdict module is one line here), and the functions below use
it so that a caller never assembles anything by hand::

    from walsim.api import load_scenario, run_scenario

    scenario = load_scenario("scenarios/failover-sync.toml")
    result = run_scenario(scenario, seed=7)
    for v in result.verdicts:
        print(v.name, v.result, v.summary)

:func:`open_run` reads a run directory back (its ``scenario.toml`` parsed with
the same vocabulary), :func:`judge` recomputes its verdicts and report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from walsim.core.errors import RunInProgress, RunInterrupted
from walsim.core.exitstatus import INTERRUPTED
from walsim.core.errors import ScenarioError
from walsim.faults.clock import ClockLayer
from walsim.faults.disk import DiskLayer
from walsim.faults.manager import ManagerLayer
from walsim.faults.net import NetLayer
from walsim.faults.process import ProcessLayer
from walsim.judge import availability, convergence, corruption, durability, lag, logs, managed, roles
from walsim.judge.record import RunRecord
from walsim.judge.report import build_index, build_report
from walsim.judge.verdict import Verdict, judge_run, overall
from walsim.managers.command import CommandManager
from walsim.managers.patroni import PatroniManager
from walsim.managers.pgaf import PgAutoFailoverManager
from walsim.managers.repmgr import RepmgrManager
from walsim.run import steps
from walsim.run.engine import ProgressFn, execute, new_rundir, now_iso
from walsim.run.settle import write_json
from walsim.scenario import loader
from walsim.scenario.model import Scenario
from walsim.scenario.registry import Vocabulary
from walsim.scenario.schema import Issue

#: the fault layers, in the order their hooks run (teardown: the reverse)
FAULT_LAYERS = (NetLayer, DiskLayer, ClockLayer, ProcessLayer, ManagerLayer)
#: the modules whose ``KINDS`` are the verdict kinds
VERDICT_MODULES = (durability, convergence, corruption, roles, lag, availability, logs, managed)
#: the HA manager adapters, by ``[manager] kind``
MANAGERS = (PatroniManager, RepmgrManager, PgAutoFailoverManager, CommandManager)


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Every step kind, verdict kind and fault layer walsim ships."""
    vocab = Vocabulary()
    vocab.add_steps(steps.KINDS)
    for layer in FAULT_LAYERS:
        vocab.add_layer(layer)
    for module in VERDICT_MODULES:
        vocab.add_verdicts(module.KINDS)
    for manager in MANAGERS:
        vocab.add_manager(manager)
    return vocab


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (raises :class:`~walsim.core.errors.ScenarioError`)."""
    return loader.load_scenario(path, vocabulary())


def parse_scenario(text: str, file: str = "<string>") -> Scenario:
    """Validate scenario text; ``file`` names it in error messages."""
    return loader.parse_scenario(text, vocabulary(), file)


def open_run(rundir: str | Path) -> RunRecord:
    """The record of a run directory, with the scenario it ran (its ``scenario.toml``)."""
    d = Path(rundir)
    p = d / "scenario.toml"
    if not p.is_file():
        raise ScenarioError([Issue(str(d), "(directory)", "not a run directory (no scenario.toml)")])
    return RunRecord(d, parse_scenario(p.read_text(encoding="utf-8"), str(p)))


@dataclass
class RunResult:
    rundir: Path
    verdicts: list[Verdict]
    exit_status: int
    seed: int
    step_error: str | None
    harness_error: str | None
    reproduce: str


#: when :func:`judge` writes ``report.html``: always, or only for a run that did not pass
REPORT_WHEN = ("always", "failures")


def judge(record: RunRecord, report: str = "always") -> tuple[list[Verdict], int]:
    """Judge a recorded run: ``verdicts.json`` and ``report.html`` written, the exit status.
    With ``report="failures"`` the page is written only when the status is not 0
    (``walsim-cli report`` writes it later for any run)."""
    if report not in REPORT_WHEN:
        raise ValueError(f"report must be one of {', '.join(REPORT_WHEN)}, not {report!r}")
    verdicts = judge_run(record)
    write_json(record.dir / "verdicts.json", [v.to_json() for v in verdicts])
    status = overall(verdicts)
    if report == "always" or status != 0:
        try:
            build_report(record, verdicts)
        except Exception as exc:  # noqa: BLE001 - the verdicts stand without the page
            (record.dir / "report-error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    return verdicts, status


def update_index(parent: Path) -> None:
    """Rewrite ``index.html`` of a directory of runs; a failure is written
    beside it and never fails the run."""
    try:
        build_index(parent)
    except Exception as exc:  # noqa: BLE001 - the runs stand without the index
        (parent / "index-error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


def run_scenario(scenario: Scenario, *, seed: int | None = None, out: str | Path = "walsim-runs",
                 keep: bool = False, progress: ProgressFn | None = None,
                 rundir: Path | None = None, argv_file: str | None = None,
                 report: str = "always", index: bool = True,
                 pg_version: int | None = None) -> RunResult:
    """Run one scenario, record it and judge it.  Never raises for a failing system
    or a harness error (both are verdicts); KeyboardInterrupt propagates after
    the cluster is torn down and the partial run is judged.  ``report`` says
    when ``report.html`` is written (see :func:`judge`); ``index=False`` leaves
    the parent directory's ``index.html`` alone (an exploration writes its own);
    ``pg_version`` overrides the scenario's ``[cluster] version``.  One run at a
    time per process: :class:`~walsim.core.errors.RunInProgress` if another
    thread's run is in progress (run scenarios in parallel as processes)."""
    seed = scenario.seed if seed is None else seed
    created = rundir is None
    rundir = rundir or new_rundir(Path(out), scenario.name, seed)
    reproduce = f"walsim-cli run {argv_file or scenario.path} --seed {seed}"
    if pg_version is not None:
        scenario = dataclasses.replace(scenario, pg_version=pg_version)
        reproduce += f" --pg {pg_version}"
    elif scenario.pg_version is None and os.environ.get("WALSIM_PG", "").strip():
        reproduce += f" --pg {os.environ['WALSIM_PG'].strip()}"       # the test suites' choice
    try:
        done = execute(scenario, seed=seed, rundir=rundir, keep=keep, progress=progress, reproduce=reproduce)
    except RunInProgress:
        if created:
            with contextlib.suppress(OSError):
                rundir.rmdir()  # still empty: nothing of this run was started
        raise
    info = done.run_info
    info.update(step_error=done.step_error, harness_error=done.harness_error, elapsed_s=done.elapsed_s)
    write_json(rundir / "run.json", info)
    verdicts, status = judge(RunRecord(rundir, scenario), report)
    if done.interrupted is not None:
        # the same status the CLI exits with (130), and what stopped the run
        info.update(exit_status=INTERRUPTED, interrupted=str(done.interrupted) or "SIGINT",
                    judged_status=status)
    else:
        info.update(exit_status=status)
    info.update(finished=now_iso())
    write_json(rundir / "run.json", info)
    if index:
        update_index(rundir.parent)
    if done.interrupted is not None:
        raise RunInterrupted(rundir, str(done.interrupted) or "interrupted") from done.interrupted
    return RunResult(rundir, verdicts, status, seed, done.step_error, done.harness_error, reproduce)
