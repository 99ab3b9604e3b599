"""Helpers of the walsim-receiver suite: running the receiver and pg_receivewal,
reading the event log, comparing WAL directories.

Every process started through :class:`Receivers` is stopped when the test ends
(SIGKILL after a grace period), whatever the outcome.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from walsim.core.lsn import Lsn
from walsim.pg.node import Node
from walsim.core.timeouts import scaled, wait_until

SEGMENT_RE = r"^[0-9A-F]{24}$"


class ReceiverProcess:
    """A running walsim-receiver or pg_receivewal with its log (and event file)."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, events: Path | None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.events_path = events
        self._logf = open(log, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.proc.wait(timeout=scaled(timeout, 60))
        finally:
            if self.proc.returncode is not None:
                self._logf.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float | None = None) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._logf.close()

    def output(self) -> str:
        if not self._logf.closed:
            self._logf.flush()
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        if self.events_path is None or not self.events_path.exists():
            return []
        out = []
        for line in self.events_path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def __repr__(self) -> str:
        return f"<{self.name} pid={self.proc.pid} rc={self.proc.returncode} log={self.log}>"


class Receivers:
    """Starts receivers for one test and cleans them up afterwards."""

    def __init__(self, workdir: Path, build: Path, pg_bindir: Path) -> None:
        self.workdir = workdir
        self.binary = build / "bin" / "walsim-receiver"
        self.pg_receivewal = pg_bindir / "pg_receivewal"
        self.procs: list[ReceiverProcess] = []
        self._count = 0

    def directory(self, name: str) -> Path:
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def walsim(self, directory: Path, conninfo: str, *args: str, name: str = "walsim-receiver",
               events: bool = True) -> ReceiverProcess:
        self._count += 1
        ev = self.workdir / f"events-{self._count}.jsonl" if events else None
        argv = [str(self.binary), "-d", conninfo, "-D", str(directory), "-v", "--reconnect-interval", "1"]
        if ev is not None:
            argv += ["--json-events", str(ev)]
        p = ReceiverProcess(name, argv + list(args), self.workdir / f"{name}-{self._count}.log", ev)
        self.procs.append(p)
        return p

    def pg(self, directory: Path, conninfo: str, *args: str) -> ReceiverProcess:
        self._count += 1
        argv = [str(self.pg_receivewal), "-d", conninfo, "-D", str(directory), "-v", "--no-password"]
        p = ReceiverProcess("pg_receivewal", argv + list(args),
                            self.workdir / f"pg_receivewal-{self._count}.log", None)
        self.procs.append(p)
        return p

    def run(self, directory: Path, conninfo: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run walsim-receiver to completion (for bad-input and option checks)."""
        argv = [str(self.binary), "-d", conninfo, "-D", str(directory), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=scaled(timeout, 60),
                              stdin=subprocess.DEVNULL)

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.proc.send_signal(signal.SIGINT)
                try:
                    p.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
            if not p._logf.closed:
                p._logf.close()


def app_write_lsn(node: Node, application_name: str) -> Lsn | None:
    """write_lsn reported by the receiver with this application_name (None if not connected)."""
    value = node.scalar("SELECT write_lsn::text FROM pg_stat_replication WHERE application_name = %s",
                        [application_name])
    return Lsn.parse(value) if value else None


def wait_received(node: Node, application_name: str, lsn: Lsn, proc: ReceiverProcess | None = None,
                  timeout: float | None = None) -> Lsn:
    """Wait until the receiver reports write_lsn >= lsn on ``node``."""
    def probe() -> Lsn | None:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc} exited early:\n{proc.output()}")
        return app_write_lsn(node, application_name)
    logs: list[object] = [node.log_file] + ([proc.log] if proc else [])
    return wait_until(probe, what=f"{application_name} to receive {lsn} from {node.name}",
                      done=lambda v: v is not None and v >= lsn, timeout=timeout, logs=logs)


def segment_files(directory: Path) -> dict[str, bytes]:
    """Complete segments, .partial and .history files of a directory, by name."""
    out = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and (len(p.name) == 24 or p.name.endswith((".partial", ".history"))):
            out[p.name] = p.read_bytes()
    return out


def complete_segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if len(p.name) == 24 and "." not in p.name)


def generate_wal(node: Node, rows: int = 20000, table: str = "wal_filler") -> Lsn:
    """Write some WAL (inserts into ``table``) and return the flush position afterwards."""
    node.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigint, pad text)")
    node.execute(f"INSERT INTO {table} SELECT g, repeat('x', 100) FROM generate_series(1, {rows}) g")
    lsn = node.lsn("flush") if not node.in_recovery() else node.lsn("replay")
    assert lsn is not None
    return lsn


def iter_events(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e["event"] == kind)
