"""Durability truth: the flush position walsim-receiver reports is never
ahead of what it has fsynced.  The receiver runs under strace; every
pwrite64 makes bytes dirty, every fsync of the file cleans them, and every
status update sent must not claim a flush position with dirty bytes below it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest

from receiver_support import generate_wal
from walsim.pg.cluster import Cluster
from walsim.pg.node import Node
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until

pytestmark = pytest.mark.pg

SEG = 1024 * 1024
#: pieces of WAL, each flushed and reported before the next is written
ROUNDS = 12
CALL_RE = re.compile(r"^\d+\s+(?P<call>pwrite64|fsync|fdatasync|sendto)\((?P<fd>\d+)<(?P<path>[^>]*)>(?P<rest>.*)$")
PWRITE_TAIL_RE = re.compile(r",\s*(?P<len>\d+),\s*(?P<off>\d+)\)\s*=\s*(?P<ret>-?\d+)")
BYTES_RE = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')


def unhex(text: str) -> str:
    """strace -xx prints paths and buffers as \\xNN escapes."""
    return bytes.fromhex(text.replace("\\x", "")).decode(errors="replace") if text.startswith("\\x") else text


def segment_lsn(name: str, offset: int) -> int | None:
    base = Path(name).name
    if len(base) < 24 or not re.fullmatch(r"[0-9A-F]{24}", base[:24]):
        return None
    hi, lo = int(base[8:16], 16), int(base[16:24], 16)
    return (hi * (2**32 // SEG) + lo) * SEG + offset


def wait_flushed(node: Node, application_name: str, lsn: Lsn) -> None:
    """Wait until the receiver has reported a flush position >= lsn."""
    def flushed() -> Lsn | None:
        v = node.scalar("SELECT flush_lsn::text FROM pg_stat_replication WHERE application_name = %s",
                        (application_name,))
        return Lsn.parse(v) if v else None
    wait_until(flushed, what=f"{application_name} to report {lsn} flushed", done=lambda v: v is not None and v >= lsn,
               logs=[node.log_file])


def status_flushes(data: bytes) -> list[int]:
    """Flush positions of the 'r' CopyData messages in a buffer the receiver sent."""
    out = []
    i = 0
    while i + 5 <= len(data):
        kind = data[i:i + 1]
        (length,) = struct.unpack_from(">I", data, i + 1)
        body = data[i + 5:i + 1 + length]
        if kind == b"d" and body[:1] == b"r" and len(body) == 34:
            out.append(struct.unpack_from(">Q", body, 9)[0])
        i += 1 + length
    return out


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (make deps installs it)")
def test_reported_flush_never_ahead_of_fsync(cluster: Cluster, walsim_build: Path) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=["--wal-segsize=1"])
    wal_dir = cluster.base_dir / "durable"
    wal_dir.mkdir()
    trace = cluster.base_dir / "strace.txt"
    log = cluster.base_dir / "receiver.log"
    conninfo = pg1.conninfo(replication=True, application_name="durable")
    argv = ["strace", "-f", "-y", "-xx", "-s", "4096", "-e", "trace=pwrite64,fsync,fdatasync,sendto",
            "-o", str(trace), str(walsim_build / "bin" / "walsim-receiver"), "-d", conninfo,
            "-D", str(wal_dir), "--synchronous", "-s", "1"]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            # WAL in ROUNDS pieces, each waited for until the receiver reports
            # it flushed: every round forces at least one status update of
            # its own.  (One big INSERT left the number of updates to the
            # scheduler: under load the receiver read it in a few large
            # batches and sent as few as 7.)
            end = Lsn(0)
            for i in range(ROUNDS):
                if i == ROUNDS // 2:
                    pg1.execute("SELECT pg_switch_wal()")
                end = generate_wal(pg1, 3000)
                wait_flushed(pg1, "durable", end)
        finally:
            # SIGINT to the receiver itself (strace would only detach)
            children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            children = [int(p) for p in children_file.read_text().split()] if children_file.exists() else []
            for pid in children:
                os.kill(pid, signal.SIGINT)
            try:
                proc.wait(timeout=scaled(30))
            except subprocess.TimeoutExpired:
                # kill the traced receiver too, or it outlives strace
                for pid in children:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()

    dirty: dict[str, list[tuple[int, int]]] = {}
    reports = 0
    writes = 0
    highest = 0
    for line in trace.read_text(errors="replace").splitlines():
        m = CALL_RE.match(line)
        if not m:
            continue
        call, path, rest = m["call"], unhex(m["path"]), m["rest"]
        key = Path(path).name[:24]
        if call == "pwrite64":
            t = PWRITE_TAIL_RE.search(rest)
            assert t is not None, line
            start = segment_lsn(path, int(t["off"]))
            if start is not None and int(t["ret"]) > 0:
                writes += 1
                dirty.setdefault(key, []).append((start, start + int(t["ret"])))
        elif call in ("fsync", "fdatasync"):
            dirty.pop(key, None)
        elif call == "sendto":
            b = BYTES_RE.search(rest)
            if b is None:
                continue
            data = bytes.fromhex(b.group(1).replace("\\x", ""))
            for flush in status_flushes(data):
                reports += 1
                highest = max(highest, flush)
                for name, ranges in dirty.items():
                    for lo, hi in ranges:
                        assert lo >= flush, (f"flush {Lsn(flush)} reported while {name} bytes "
                                             f"{Lsn(lo)}..{Lsn(hi)} were not fsynced")
    assert writes >= ROUNDS, "segment writes missing from the strace output"
    assert reports >= ROUNDS, "status updates missing from the strace output"
    assert highest >= end
