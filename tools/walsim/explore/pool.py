"""Runs of schedules in parallel worker processes, isolated from each other.

Each :class:`Job` runs in a fresh ``python -m walsim.explore.worker``
process (its own session, so a Ctrl-C in the terminal reaches the explorer
only, which then stops every worker in order).  Workers share nothing but
the machine: a cluster directory each, ports reserved through the lock-file
allocator (:mod:`walsim.pg.ports`), a walsim-netd each with its own work
directory.  :meth:`Pool.stop` sends SIGTERM to every worker (the engine
stops its servers and judges the partial run), then SIGKILL to a worker
that has not exited after a grace period; a worker's servers are then
stopped by their pid files (:func:`stop_leftovers`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walsim.core.errors import WalsimError
from walsim.pg.cluster import Cluster

#: seconds a worker has to wind down after SIGTERM before SIGKILL
STOP_GRACE = 60.0


@dataclass
class Job:
    """One run: a schedule file, the run directory it writes, the seed."""

    key: str
    schedule: Path
    rundir: Path
    seed: int
    report: str = "failures"
    #: anything the caller wants back with the result
    tag: Any = None


@dataclass
class Done:
    """A finished job: the worker's exit status, wall time and what the run recorded."""

    job: Job
    status: int
    wall_s: float
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [v["name"] for v in self.verdicts if v.get("result") == "FAIL"]

    @property
    def errors(self) -> list[str]:
        return [v["name"] for v in self.verdicts if v.get("result") == "ERROR"]

    @property
    def result(self) -> str:
        """FAIL, ERROR or PASS (INFO counts as a pass), from the exit status."""
        return {0: "PASS", 1: "FAIL"}.get(self.status, "ERROR")

    @property
    def harness_error(self) -> str | None:
        """What kept the run from being judged normally, if anything."""
        if self.run.get("harness_error"):
            return str(self.run["harness_error"])
        try:
            lines = (self.job.rundir / "harness-error.txt").read_text(errors="replace").strip().splitlines()
            return lines[-1] if lines else "harness error"
        except OSError:
            pass
        if self.status not in (0, 1, 2):
            return f"worker exited with status {self.status}"
        return None


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


class Pool:
    """At most ``jobs`` workers at a time."""

    def __init__(self, jobs: int, python: str = sys.executable) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs = jobs
        self.python = python
        self._running: dict[int, tuple[Job, subprocess.Popen[bytes], float]] = {}
        package_parent = str(Path(__file__).resolve().parents[2])  # the directory holding walsim/
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([package_parent] + [p for p in
                                                 self.env.get("PYTHONPATH", "").split(os.pathsep) if p])

    @property
    def free(self) -> int:
        return self.jobs - len(self._running)

    @property
    def busy(self) -> int:
        return len(self._running)

    def running(self) -> list[Job]:
        return [job for job, _, _ in self._running.values()]

    def submit(self, job: Job) -> None:
        if self.free <= 0:
            raise RuntimeError("no free worker")
        job.rundir.mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", "walsim.explore.worker", str(job.schedule), str(job.rundir), str(job.seed),
                "--report", job.report]
        with open(job.rundir / "worker.log", "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, start_new_session=True, close_fds=True)
        self._running[proc.pid] = (job, proc, time.monotonic())

    def poll(self, timeout: float = 0.2) -> list[Done]:
        """The jobs that finished, waiting up to ``timeout`` for one."""
        deadline = time.monotonic() + timeout
        while True:
            finished = []
            for pid, (job, proc, started) in list(self._running.items()):
                status = proc.poll()
                if status is None:
                    continue
                del self._running[pid]
                finished.append(self._done(job, status, time.monotonic() - started))
            if finished or not self._running or time.monotonic() >= deadline:
                return finished
            time.sleep(0.05)

    def _done(self, job: Job, status: int, wall: float) -> Done:
        verdicts = _read_json(job.rundir / "verdicts.json", [])
        run = _read_json(job.rundir / "run.json", {})
        return Done(job, status if status >= 0 else 128 - status, round(wall, 2),
                    verdicts if isinstance(verdicts, list) else [], run if isinstance(run, dict) else {})

    def cancel(self, keys: set[str], grace: float = STOP_GRACE) -> list[Done]:
        """Stop the running jobs with these keys (SIGTERM, then SIGKILL after ``grace``)
        and wait for them; their (interrupted) results."""
        victims = {pid: entry for pid, entry in self._running.items() if entry[0].key in keys}
        for _, proc, _ in victims.values():
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        done: list[Done] = []
        while any(pid in self._running for pid in victims) and time.monotonic() < deadline:
            for pid, (job, proc, started) in list(victims.items()):
                if pid in self._running and proc.poll() is not None:
                    del self._running[pid]
                    done.append(self._done(job, proc.returncode, time.monotonic() - started))
            time.sleep(0.05)
        for pid, (job, proc, started) in victims.items():
            if pid in self._running:
                _signal(proc, signal.SIGKILL)
                proc.wait()
                del self._running[pid]
                stop_leftovers(job.rundir)
                done.append(self._done(job, 137, time.monotonic() - started))
        return done

    def stop(self, grace: float = STOP_GRACE) -> list[Done]:
        """SIGTERM every worker, wait for them (SIGKILL after ``grace``); their results."""
        for _, proc, _ in self._running.values():
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        done: list[Done] = []
        while self._running and time.monotonic() < deadline:
            done += self.poll(0.2)
        for pid, (job, proc, started) in list(self._running.items()):
            _signal(proc, signal.SIGKILL)
            proc.wait()
            del self._running[pid]
            stop_leftovers(job.rundir)
            done.append(self._done(job, 137, time.monotonic() - started))
        return done


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def stop_leftovers(rundir: Path) -> None:
    """Stop the servers of a worker that was killed, by the pid files of its cluster
    (the directory its event log names)."""
    try:
        for line in (rundir / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "cluster_dir":
                cluster = Cluster.attach(event["path"])
                cluster.destroy(keep=False)
                break
    except (OSError, ValueError, WalsimError):
        pass
