"""Helpers of the walsim-sender suite: the sender process, a primary that
archives its WAL, replication commands through psql."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from walsim.pg.cluster import Cluster
from walsim.pg.node import Node
from walsim.pg.ports import PortReservation
from walsim.core.timeouts import scaled, wait_until


class SenderProcess:
    """A running ``walsim-sender``; :meth:`stop` sends SIGTERM and waits."""

    def __init__(self, binary: Path, waldir: Path, reservation: PortReservation, workdir: Path,
                 args: Sequence[str] = ()) -> None:
        self.waldir = waldir
        self.reservation = reservation
        self.port = reservation.port
        self.host = "127.0.0.1"
        self.log = workdir / f"sender-{self.port}.log"
        self.events = workdir / f"sender-{self.port}.events"
        argv = [str(binary), "-D", str(waldir), "--listen", f"{self.host}:{self.port}",
                "--json-events", str(self.events), *args]
        if os.environ.get("WALSIM_SENDER_VALGRIND"):
            # every connection process too; errors make the process exit 99
            argv = ["valgrind", "--quiet", "--trace-children=yes", "--error-exitcode=99",
                    "--leak-check=full", "--errors-for-leak-kinds=definite",
                    f"--log-file={workdir}/valgrind-%p.log", *argv]
        self._out = open(self.log, "ab")
        # the port stays reserved in the allocator; free the socket just before binding
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, close_fds=True)
        wait_until(self._listening, what=f"walsim-sender listening on port {self.port}",
                   timeout=scaled(60), logs=[self.log])

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"walsim-sender exited with {self.proc.returncode}: "
                               f"{self.log.read_text(errors='replace')[-2000:]}")
        return "listening on" in self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def event_list(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float | None = None) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(timeout, 30))
            except subprocess.TimeoutExpired:
                for child in self.children():
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def archiving_primary(cluster: Cluster, name: str = "pg1", **settings: object) -> tuple[Node, Path]:
    """A primary whose archive_command copies every finished segment to an archive."""
    archive = cluster.runas.makedirs(cluster.base_dir / "archive", 0o755)
    conf: dict[str, object] = {"archive_mode": "on",
                               "archive_command": f"cp %p {archive}/%f",
                               "wal_keep_size": "256MB"}
    conf.update(settings)
    primary = cluster.create_primary(name, settings=conf)
    return primary, archive


def switch_and_archive(primary: Node, archive: Path) -> str:
    """Finish the current segment and wait until the archiver copied it; its name."""
    last = primary.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    primary.execute("SELECT pg_switch_wal()")
    wait_until(lambda: (archive / last).exists() and
               primary.scalar("SELECT last_archived_wal FROM pg_stat_archiver") is not None and
               primary.scalar("SELECT last_archived_wal FROM pg_stat_archiver") >= last,
               what=f"segment {last} archived", timeout=scaled(60))
    return last


def replication_sql(node_or_sender: Any, cluster: Cluster, command: str,
                    user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one replication command through psql (simple query protocol)."""
    host = node_or_sender.host
    port = node_or_sender.port
    conninfo = (f"host={host} port={port} user={user or cluster.replication_user} "
                f"passfile={cluster.passfile} replication=true dbname=replication")
    return subprocess.run([str(cluster.pg.path("psql")), "-X", "-A", "-t", "-F", "|",
                           "-d", conninfo, "-c", command],
                          capture_output=True, text=True, timeout=scaled(30))


def identify_system(sender: Any, cluster: Cluster) -> tuple[str, int, str]:
    r = replication_sql(sender, cluster, "IDENTIFY_SYSTEM")
    assert r.returncode == 0, r.stderr
    sysid, tli, xlogpos, _db = r.stdout.strip().split("|")
    return sysid, int(tli), xlogpos


class RawClient:
    """A minimal frontend speaking protocol 3.0 over a raw socket, for the
    conversations libpq will not have (garbage, half messages, bad lengths)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        import socket
        self.sock = socket.create_connection((host, port), timeout=scaled(timeout))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def startup(self, params: dict[str, str] | None = None, version: int = 196608) -> None:
        import struct
        p = params if params is not None else {"user": "replicator", "replication": "true"}
        body = struct.pack("!I", version) + b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                                                      for k, v in p.items()) + b"\0"
        self.send(struct.pack("!I", len(body) + 4) + body)

    def message(self, mtype: bytes, body: bytes) -> None:
        import struct
        self.send(mtype + struct.pack("!I", len(body) + 4) + body)

    def query(self, sql_text: str) -> None:
        self.message(b"Q", sql_text.encode() + b"\0")

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read(self) -> tuple[bytes, bytes] | None:
        """The next (type, body), or None at EOF."""
        import struct
        while len(self.buf) < 5:
            if not self._fill():
                return None
        length = struct.unpack("!I", self.buf[1:5])[0]
        while len(self.buf) < 1 + length:
            if not self._fill():
                return None
        msg = (self.buf[:1], self.buf[5:1 + length])
        self.buf = self.buf[1 + length:]
        return msg

    def read_byte(self) -> bytes:
        while not self.buf:
            if not self._fill():
                return b""
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def until(self, mtype: bytes) -> list[tuple[bytes, bytes]]:
        """Messages up to and including the first of type mtype (raises at EOF)."""
        got = []
        while True:
            m = self.read()
            if m is None:
                raise EOFError(f"connection closed before {mtype!r}; got {[t for t, _ in got]}")
            got.append(m)
            if m[0] == mtype:
                return got

    def closed(self) -> bool:
        """True when the server has closed the connection (drains what is left)."""
        try:
            while self._fill():
                pass
            return True
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def error_fields(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields
