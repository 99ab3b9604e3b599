"""What the ``run``, ``check``, ``list``, ``report`` and ``demo`` commands share:
finding scenario files, validating them, showing progress, printing verdicts,
writing ``--junit``/``--json`` results.

(A module of :mod:`walsim.commands` whose name starts with ``_`` is not a
subcommand.)"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from walsim.api import RunResult, load_scenario, run_scenario
from walsim.core.errors import ScenarioError, UsageError
from walsim.core.exitstatus import INTERRUPTED, combine
from walsim.core.paths import scenarios_dir
from walsim.judge.export import RunOutcome, write_json, write_junit
from walsim.judge.verdict import Verdict
from walsim.run.engine import new_rundir
from walsim.scenario.model import Scenario


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (CI cancelling a job, ``timeout``) and SIGHUP
    (the terminal or SSH session closing) unwind like Ctrl-C, so that the
    engine stops every server it started and keeps the run directory.  What a
    SIGKILL leaves is the run supervisor's (walsim.core.supervise)."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def default_scenario_dir() -> Path:
    """``$WALSIM_SCENARIOS``, else ``scenarios/`` of the checkout (or install)."""
    return scenarios_dir()


def expand(paths: list[str]) -> list[Path]:
    """Files as given; directories replaced by their ``*.toml`` files (sorted)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(path.glob("*.toml"))
        else:
            out.append(path)
    return out


def load_all(paths: list[Path], err: TextIO = sys.stderr) -> list[Scenario] | None:
    """Every scenario, or None after printing every problem of every file."""
    scenarios, bad = [], False
    for p in paths:
        try:
            sc = load_scenario(p)
            scenarios.append(sc)
            for issue in sc.warnings:
                print(f"walsim-cli: warning: {issue}", file=err)
        except ScenarioError as exc:
            bad = True
            for issue in exc.issues:
                print(f"walsim-cli: {issue}", file=err)
    return None if bad else scenarios


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The SCENARIO... arguments shared by ``run`` and ``check``."""
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                        help="a scenario file, or a directory of *.toml scenario files")


def load_arguments(names: list[str], err: TextIO = sys.stderr) -> list[tuple[Path, Scenario]] | None:
    """The scenarios named on the command line with their paths, or None
    after saying what was wrong (no files found, or every problem of every file)."""
    paths = expand(names)
    if not paths:
        print("walsim-cli: error: no scenario files found", file=err)
        return None
    scenarios = load_all(paths, err)
    if scenarios is None:
        return None
    return list(zip(paths, scenarios))


class Progress:
    """Progress of a run: on a terminal, one line rewritten in place with the
    current step, elapsed time and per-node LSN and lag; otherwise plain lines."""

    def __init__(self, stream: TextIO = sys.stdout, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.ctx: Any = None
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._width = 0

    def __call__(self, message: str, ctx: Any) -> None:
        if ctx is not None:
            self.ctx = ctx
        with self._lock:
            self._clear()
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def __enter__(self) -> "Progress":
        self.start = time.monotonic()
        if self.tty:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="walsim-progress")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            self._clear()
            self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            ctx = self.ctx
            if ctx is None:
                continue
            try:
                line = ctx.status_line(time.monotonic() - self.start)
            except Exception:  # noqa: BLE001 - progress must never break a run
                continue
            cols = max(40, _columns() - 1)
            line = line[:cols]
            with self._lock:
                pad = max(0, self._width - len(line))
                self.stream.write("\r" + line + " " * pad)
                self.stream.flush()
                self._width = len(line)


def _columns() -> int:
    import shutil
    return shutil.get_terminal_size(fallback=(120, 24)).columns or 120


def verdict_table(rows: list[tuple[str, Verdict]], stream: TextIO = sys.stdout) -> None:
    """A plain-text table: scenario, verdict, result, summary."""
    if not rows:
        print("(no verdicts)", file=stream)
        return
    w1 = max(len("scenario"), *(len(s) for s, _ in rows))
    w2 = max(len("verdict"), *(len(v.name) for _, v in rows))
    print(f"{'scenario':<{w1}}  {'verdict':<{w2}}  result  summary", file=stream)
    print(f"{'-' * w1}  {'-' * w2}  ------  -------", file=stream)
    for s, v in rows:
        summary = v.summary if v.judged_at == "end of run" else f"[at {v.judged_at}] {v.summary}"
        summary = summary if len(summary) <= 160 else summary[:157] + "..."
        print(f"{s:<{w1}}  {v.name:<{w2}}  {v.result:<6}  {summary}", file=stream)


def worst(statuses: list[int]) -> int:
    """Combined exit status (:func:`walsim.core.exitstatus.combine`): 130 if a run
    was interrupted, else 1 if any run failed a verdict, else 2 if any errored, else 0."""
    return combine(statuses)


# ------------------------------------------------ machine-readable results

def add_result_arguments(parser: argparse.ArgumentParser) -> None:
    """``--junit FILE`` and ``--json FILE`` (for every command that judges runs)."""
    parser.add_argument("--junit", type=Path, metavar="FILE", default=None,
                        help="write JUnit XML: one test suite per run, one test case per verdict")
    parser.add_argument("--json", type=Path, metavar="FILE", default=None,
                        help="write every run's verdicts, report path, reproduce command and exit status as JSON")


def check_result_paths(args: argparse.Namespace) -> None:
    """Fail before running anything when ``--junit``/``--json`` cannot be written."""
    for opt in ("junit", "json"):
        path: Path | None = getattr(args, opt, None)
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"--{opt} {path}: is a directory (give a file name)")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"--{opt} {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"--{opt} {path}: directory {parent} is not writable")


def write_results(args: argparse.Namespace, outcomes: list[RunOutcome], command: str) -> None:
    if getattr(args, "junit", None) is not None:
        write_junit(outcomes, args.junit)
    if getattr(args, "json", None) is not None:
        write_json(outcomes, args.json, command=command)


def run_recorded(args: argparse.Namespace, scenario: Scenario, path: Path, outcomes: list[RunOutcome],
                 command: str, *, seed: int | None = None, keep: bool = False) -> RunResult:
    """Run one scenario with the progress line and SIGTERM as an interrupt, add
    its outcome to ``outcomes`` and rewrite ``--junit``/``--json``.  When the
    run is interrupted the files are written with the interrupted run (status
    130, its verdicts as judged from what it recorded) before the interrupt
    goes on."""
    rundir = new_rundir(Path(args.out), scenario.name, scenario.seed if seed is None else seed)
    try:
        with sigterm_as_interrupt(), Progress() as progress:
            result = run_scenario(scenario, seed=seed, out=args.out, keep=keep, progress=progress,
                                  argv_file=str(path), rundir=rundir, pg_version=getattr(args, "pg", None))
    except KeyboardInterrupt:
        outcomes.append(RunOutcome.from_rundir(rundir, exit_status=INTERRUPTED))
        write_results(args, outcomes, command)
        raise
    outcomes.append(RunOutcome.from_rundir(result.rundir, result.verdicts, result.exit_status))
    write_results(args, outcomes, command)
    return result

