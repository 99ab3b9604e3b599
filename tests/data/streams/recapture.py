#!/usr/bin/python3
"""Recapture the real protocol streams under tests/data/streams/.

Builds a throwaway PostgreSQL 15 primary, then records both directions of
two replication connections through a logging TCP relay on the loopback:

* ``standby.fe`` / ``standby.be``: a standby's walreceiver (SSLRequest, SCRAM
  authentication, IDENTIFY_SYSTEM, START_REPLICATION, XLogData, keepalives,
  status updates and hot standby feedback) until the standby is stopped;
* ``receivewal.fe`` / ``receivewal.be``: ``pg_receivewal --endpos`` from start
  to the clean end of COPY.

``.fe`` is the client -> server byte stream, ``.be`` server -> client.  The
files are small (a few hundred kB) because the cluster is fresh and the
workload tiny.  Usage (as root or as a user that can run PostgreSQL)::

    /usr/bin/python3 tests/data/streams/recapture.py [--bindir DIR]

Only the standard library is used so the script keeps working whatever
happens to the walsim package.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = "capture-only-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """Runs PostgreSQL programs as the unprivileged `postgres` user when root."""

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.as_postgres = os.geteuid() == 0

    def argv(self, prog: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / prog), *args]
        if self.as_postgres:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def run(self, prog: str, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = dict(os.environ, PGPASSFILE=str(self.workdir / "pgpass"), **(env or {}))
        res = subprocess.run(self.argv(prog, *args), cwd=self.workdir, env=full_env,
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{prog} {' '.join(args)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
        return res.stdout


class Relay:
    """A TCP relay that appends each direction of each connection to memory."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.conns: list[dict[str, bytearray]] = []
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            rec = {"fe": bytearray(), "be": bytearray()}
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._pump, args=(client, server, rec["fe"]), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, rec["be"]), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, log: bytearray) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    log.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping = True
        self.listener.close()

    def replication_conns(self) -> list[dict[str, bytearray]]:
        with self.lock:
            return [c for c in self.conns if b"START_REPLICATION" in c["fe"]]


def wait_for(what: str, check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", default=os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    bindir = Path(args.bindir)
    out = Path(args.out)

    work = Path(tempfile.mkdtemp(prefix="walsim-capture-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(work, pw.pw_uid, pw.pw_gid)
    r = Runner(bindir, work)
    pport, sport = free_port(), free_port()
    started: list[Path] = []
    try:
        pri, stby = work / "primary", work / "standby"
        pwfile = work / "pw"
        pwfile.write_text(PASSWORD + "\n")
        passfile = work / "pgpass"
        passfile.write_text(f"*:*:*:repl:{PASSWORD}\n")
        passfile.chmod(0o600)
        if r.as_postgres:
            for f in (pwfile, passfile):
                os.chown(f, pw.pw_uid, pw.pw_gid)
        r.run("initdb", "-D", str(pri), "-U", "postgres", "--auth-local=trust",
              "--auth-host=scram-sha-256", "--wal-segsize=1")
        with open(pri / "postgresql.conf", "a") as f:
            f.write(f"port = {pport}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{work}'\n"
                    "fsync = off\nwal_level = replica\nmax_wal_senders = 4\nwal_keep_size = 64MB\n")
        with open(pri / "pg_hba.conf", "a") as f:
            f.write("host replication repl 127.0.0.1/32 scram-sha-256\n")
        r.run("pg_ctl", "-D", str(pri), "-l", str(work / "primary.log"), "-w", "start")
        started.append(pri)
        psql = ("psql", "-h", str(work), "-p", str(pport), "-U", "postgres", "-d", "postgres", "-Atq", "-c")
        r.run(*psql, f"CREATE ROLE repl WITH REPLICATION LOGIN PASSWORD '{PASSWORD}'")
        r.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(pport), "-U", "repl", "-D", str(stby),
              "-X", "stream", "--no-sync")

        relay = Relay(pport)
        with open(stby / "postgresql.conf", "a") as f:
            f.write(f"port = {sport}\nhot_standby_feedback = on\nwal_receiver_status_interval = 1\n"
                    f"primary_conninfo = 'host=127.0.0.1 port={relay.port} user=repl "
                    f"application_name=s1 passfile={passfile}'\n")
        (stby / "standby.signal").touch()
        if r.as_postgres:
            os.chown(stby / "standby.signal", pw.pw_uid, pw.pw_gid)
        r.run("pg_ctl", "-D", str(stby), "-l", str(work / "standby.log"), "-w", "start")
        started.append(stby)

        def streaming() -> bool:
            return r.run(*psql, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").strip() == "1"

        wait_for("standby streaming", streaming)
        r.run(*psql, "CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 200)")
        target = r.run(*psql, "SELECT pg_current_wal_lsn()").strip()

        def replayed() -> bool:
            return r.run(*psql, f"SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= '{target}'").strip() == "1"

        wait_for("standby replay", replayed)
        time.sleep(1.5)			# one more round of status updates and feedback
        r.run("pg_ctl", "-D", str(stby), "-m", "fast", "-w", "stop")
        started.remove(stby)
        wait_for("standby connection capture", lambda: len(relay.replication_conns()) >= 1)
        time.sleep(0.5)
        standby = relay.replication_conns()[0]

        end = r.run(*psql, "SELECT pg_current_wal_lsn()").strip()
        rw = work / "rw"
        rw.mkdir()
        if r.as_postgres:
            os.chown(rw, pw.pw_uid, pw.pw_gid)
        r.run("pg_receivewal", "-h", "127.0.0.1", "-p", str(relay.port), "-U", "repl", "-D", str(rw),
              f"--endpos={end}", "--no-sync", "-n")
        time.sleep(0.5)
        conns = relay.replication_conns()
        receivewal = conns[-1]
        relay.close()

        for name, rec in (("standby", standby), ("receivewal", receivewal)):
            (out / f"{name}.fe").write_bytes(bytes(rec["fe"]))
            (out / f"{name}.be").write_bytes(bytes(rec["be"]))
            print(f"{name}: {len(rec['fe'])} bytes client->server, {len(rec['be'])} bytes server->client")
        return 0
    finally:
        for d in reversed(started):
            try:
                r.run("pg_ctl", "-D", str(d), "-m", "immediate", "-w", "stop")
            except Exception as e:  # keep stopping the others
                print(f"warning: stopping {d}: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
