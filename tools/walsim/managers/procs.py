"""Processes an HA manager adapter starts: each in its own process group, pids recorded.

A :class:`Supervisor` starts every long-running program of a managed cluster
(etcd, Patroni, repmgrd, ``pg_autoctl run``, a user's start command) as the
PostgreSQL user, in a new session (so that Ctrl-C in the terminal reaches
walsim only, and a whole program with its children can be signalled as one
process group), with its output appended to its own log file.  Every start
is written to ``pids.json`` in the cluster's base directory (pid, process
group, start time, what, node), so that a cleanup that does not share this
Python process can still find them; pids are checked against their start
time before any signal, so a recycled pid is never hit.

Stopping is by group: SIGTERM, a grace period, then SIGKILL of every process
still in the group.  :meth:`Supervisor.stop` stops in the order the adapter
gives (managers first, then monitors and the DCS).
"""

from __future__ import annotations

import json
import os
import signal as _signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from walsim.core.errors import ManagerError
from walsim.pg import procs
from walsim.pg.runas import RunAs


@dataclass
class ManagedProcess:
    """One program started by the supervisor."""

    what: str           #: ``manager``, ``dcs``, ``monitor``, ``witness``...
    node: str | None    #: the node it belongs to (None: shared, e.g. the DCS)
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    pid: int = 0
    starttime: int = 0
    #: earlier incarnations (after a restart), still checked at cleanup
    past: list[tuple[int, int]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.what}@{self.node}" if self.node else self.what

    def alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return False
        return bool(self.pid) and procs.alive(self.pid, self.starttime)

    def group(self) -> list[procs.ProcInfo]:
        """Every live process of this program's process group (its children included)."""
        if not self.pid:
            return []
        return group_members(self.pid)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + ln for ln in text.splitlines()[-lines:])


def group_members(pgid: int) -> list[procs.ProcInfo]:
    """Live processes whose process group is ``pgid`` (a scan of /proc)."""
    out = []
    for entry in procs.PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        if int(rest[2]) != pgid or rest[0] in ("Z", "X"):
            continue
        info = procs.stat(int(entry.name))
        if info is not None:
            out.append(info)
    return out


class Supervisor:
    """Starts, tracks and stops the programs of one managed cluster."""

    def __init__(self, runas: RunAs, state_file: Path, env: Mapping[str, str],
                 on_event: Callable[..., None] | None = None) -> None:
        self.runas = runas
        self.state_file = state_file
        self.env = dict(env)
        self.procs: list[ManagedProcess] = []
        self._event = on_event or (lambda *a, **k: None)

    def start(self, what: str, node: str | None, argv: Sequence[str | os.PathLike[str]], log: Path,
              *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ManagedProcess:
        """Start ``argv`` as the PostgreSQL user in a new session; output appended to ``log``."""
        mp = ManagedProcess(what, node, [os.fspath(a) for a in argv], log)
        self.procs.append(mp)
        self._spawn(mp, env, cwd)
        return mp

    def _spawn(self, mp: ManagedProcess, env: Mapping[str, str] | None, cwd: Path | None) -> None:
        full_env = self.runas.environment({**self.env, **(env or {})})
        log = open(mp.log, "ab")
        try:
            self.runas.chown(mp.log)
            log.write(f"walsim: starting {' '.join(mp.argv)}\n".encode())
            log.flush()
            try:
                mp.proc = self.runas.popen(mp.argv, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                           start_new_session=True)
            except OSError as exc:
                raise ManagerError(f"cannot start {mp.label} ({mp.argv[0]}): {exc}") from None
        finally:
            log.close()
        info = procs.stat(mp.proc.pid)
        if mp.pid:
            mp.past.append((mp.pid, mp.starttime))
        mp.pid = mp.proc.pid
        mp.starttime = info.starttime if info is not None else 0
        self._save()
        self._event("process_start", what=mp.what, node=mp.node, pid=mp.pid, argv=mp.argv[:3])

    def restart(self, mp: ManagedProcess, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> None:
        """Start a stopped (killed) program again with the same command."""
        if mp.alive():
            raise ManagerError(f"{mp.label} is still running (pid {mp.pid})")
        self._reap(mp)
        self._spawn(mp, env, cwd)

    def find(self, what: str, node: str | None = None) -> ManagedProcess | None:
        return next((p for p in self.procs if p.what == what and p.node == node), None)

    def _save(self) -> None:
        data = [{"what": p.what, "node": p.node, "pid": p.pid, "pgid": p.pid, "starttime": p.starttime,
                 "argv": p.argv, "log": str(p.log), "past": p.past} for p in self.procs]
        tmp = self.state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self.state_file)
        except OSError:
            pass  # informative; the in-memory list is what stop() uses

    @staticmethod
    def _reap(mp: ManagedProcess) -> None:
        if mp.proc is not None:
            try:
                mp.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass

    def signal(self, mp: ManagedProcess, sig: int, *, group: bool = True,
               exclude: Sequence[int] = ()) -> list[int]:
        """Send ``sig`` to the program (its whole group by default, except ``exclude``)."""
        targets = [(i.pid, i.starttime) for i in mp.group()] if group else [(mp.pid, mp.starttime)]
        sent = []
        for pid, st in targets:
            if pid in exclude:
                continue
            if procs.kill_if_same(pid, st, sig):
                sent.append(pid)
        return sent

    def stop_one(self, mp: ManagedProcess, grace: float = 10.0, sig: int = _signal.SIGTERM) -> list[str]:
        """Stop one program: ``sig`` to its group, then SIGKILL of what is left after ``grace``."""
        problems: list[str] = []
        members = [(i.pid, i.starttime) for i in mp.group()]
        for pid, st in members:
            procs.kill_if_same(pid, st, _signal.SIGCONT)  # a paused program must hear the signal
            procs.kill_if_same(pid, st, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(procs.alive(p, st) for p, st in members):
            self._reap(mp)
            time.sleep(0.05)
        left = [(p, st) for p, st in members + [(i.pid, i.starttime) for i in mp.group()]
                if procs.alive(p, st)]
        for pid, st in dict.fromkeys(left):
            if procs.kill_if_same(pid, st, _signal.SIGKILL):
                problems.append(f"{mp.label}: killed pid {pid} still running {grace:.0f}s after "
                                f"{_signal.Signals(sig).name}")
        for pid, st in mp.past:  # an earlier incarnation's leftovers
            procs.kill_if_same(pid, st, _signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(procs.alive(p, st) for p, st in left):
            time.sleep(0.05)
        if mp.proc is not None:
            try:
                mp.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append(f"{mp.label}: pid {mp.pid} could not be reaped")
        return problems

    def stop(self, order: Sequence[str], grace: float = 10.0) -> list[str]:
        """Stop every program, the kinds in ``order`` first (in that order), then the rest."""
        problems: list[str] = []
        ranked = sorted(self.procs, key=lambda p: order.index(p.what) if p.what in order else len(order))
        for mp in ranked:
            try:
                problems += self.stop_one(mp, grace)
            except Exception as exc:  # noqa: BLE001 - one program must not keep the others running
                problems.append(f"{mp.label}: {type(exc).__name__}: {exc}")
        return problems


def leftovers(state_file: Path) -> list[dict[str, Any]]:
    """Processes recorded in a ``pids.json`` that are still alive (for tests and cleanup)."""
    try:
        data = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    out = []
    for p in data:
        for pid, st in [(p["pid"], p["starttime"])] + [tuple(x) for x in p.get("past", [])]:
            if procs.alive(pid, st):
                out.append({**p, "pid": pid})
            out += [{**p, "pid": i.pid, "child": True} for i in group_members(pid) if i.pid != pid]
    return out
