"""Workloads: the load a scenario puts on the cluster, and what it records.

- :class:`LedgerWorkload`: N client threads, each committing one small
  transaction at a time (``INSERT ... RETURNING pg_current_wal_insert_lsn()``
  in autocommit) with a client-generated unique id, and recording in
  ``ledger.jsonl`` one line per transaction: ``acked`` (with the WAL insert
  position just before its commit record, and the time), ``failed`` (with the
  error and SQLSTATE: the server said the transaction did not commit) or
  ``indeterminate`` (the connection broke while the commit was in flight: it
  may or may not have committed).  Ids are ``(workload index * 100 + client)
  * 10^9 + sequence number``: unique across clients and ledger workloads
  without coordination.  Retargetable to a new primary.
- :class:`ReaderWorkload`: read-only clients on standbys (hot standby load
  balancing), recording each read and each error (recovery conflicts: 40001).
- :class:`PgbenchWorkload`: ``pgbench`` as a load generator.

Which account a transaction touches and its amount come from the decision
function with the run's seed (coordinates: workload, client, sequence
number), so two runs with one seed send the same transactions.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psycopg

from walsim.core import supervise
from walsim.core.decision import decision, uniform
from walsim.core.events import Clock, JsonlWriter
from walsim.core.lsn import parse_lsn

LEDGER_TABLE = "walsim_ledger"
LEDGER_DDL = (f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
              "id bigint PRIMARY KEY, client int NOT NULL, seq int NOT NULL, "
              "account int NOT NULL, amount int NOT NULL, "
              "at timestamptz NOT NULL DEFAULT clock_timestamp())")
ID_STRIDE = 1_000_000_000  # id = (workload index * 100 + client) * ID_STRIDE + seq
MAX_CLIENTS = 100          # clients per workload that the id scheme keeps apart

#: SQLSTATE classes after which the transaction may still have committed
_INDETERMINATE_CLASSES = ("08", "57", "58", "XX")


class Target:
    """What a client connects to: a node's conninfo and name, changeable at run time."""

    def __init__(self, name: str, conninfo: str) -> None:
        self.name = name
        self.conninfo = conninfo


def node_target(node: Any) -> Target:
    return Target(node.name, node.conninfo())


class Workload:
    """Base: a set of client threads sharing a stop flag and a target."""

    kind = "workload"

    def __init__(self, name: str, values: dict[str, Any], seed: int, ledger: JsonlWriter,
                 clock: Clock) -> None:
        self.name = name
        self.values = values
        self.seed = seed
        self.ledger = ledger
        self.clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._abandon()
        self._threads = []
        self.running = False

    def _abandon(self) -> None:
        """Called after stop: clients still blocked (a frozen server) are written off."""

    def retarget(self, node: Any) -> None:
        raise NotImplementedError(f"{self.kind} workloads cannot be retargeted")

    def _pace(self, rate: float, clients: int) -> Callable[[], bool]:
        """A pacer: each call waits for the client's next slot; False once stopping."""
        interval = clients / rate if rate > 0 else 0.0
        nxt = [time.monotonic()]

        def wait() -> bool:
            if interval:
                nxt[0] += interval
                delay = nxt[0] - time.monotonic()
                if delay < -1.0:  # far behind (a stall): do not burst to catch up
                    nxt[0] = time.monotonic()
                elif delay > 0 and self._stop.wait(delay):
                    return False
            return not self._stop.is_set()
        return wait


class LedgerWorkload(Workload):
    kind = "ledger"

    def __init__(self, name: str, values: dict[str, Any], seed: int, ledger: JsonlWriter,
                 clock: Clock, target: Target, index: int = 0) -> None:
        super().__init__(name, values, seed, ledger, clock)
        self.target = target
        #: the workload's position among the ledger workloads: keeps ids unique across them
        self.index = index
        self.generation = 0
        self.acked = 0
        self._inflight: dict[int, dict[str, Any]] = {}
        self._abandoned: set[int] = set()

    @staticmethod
    def setup(node: Any) -> None:
        node.execute(LEDGER_DDL)

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.running = True
        for c in range(self.values["clients"]):
            t = threading.Thread(target=self._client, args=(c,), daemon=True,
                                 name=f"walsim-{self.name}-{c}")
            self._threads.append(t)
            t.start()

    def retarget(self, node: Any) -> None:
        with self._lock:
            self.target = node_target(node)
            self.generation += 1

    def acked_count(self) -> int:
        with self._lock:
            return self.acked

    def _connect(self) -> tuple[psycopg.Connection[Any], str, int, str]:
        with self._lock:
            target, gen = self.target, self.generation
        conn = psycopg.connect(target.conninfo, autocommit=True,
                               connect_timeout=max(1, int(self.values["connect_timeout"])),
                               application_name=f"walsim-{self.name}")
        sc = conn.execute("SHOW synchronous_commit").fetchone()[0]  # type: ignore[index]
        return conn, target.name, gen, str(sc)

    def _client(self, client: int) -> None:
        pace = self._pace(self.values["rate"], self.values["clients"])
        conn: psycopg.Connection[Any] | None = None
        node_name, gen, sync_commit = "", -1, "on"
        seq = 0
        while pace():
            with self._lock:
                stale = gen != self.generation
            if conn is not None and (stale or conn.closed):
                _close(conn)
                conn = None
            if conn is None:
                try:
                    conn, node_name, gen, sync_commit = self._connect()
                except psycopg.Error:
                    # nothing was sent: not a transaction; retry at the next slot
                    if self._stop.wait(0.05):
                        break
                    continue
            seq += 1
            self._one(conn, client, seq, node_name, sync_commit)
            if conn.closed or conn.broken:
                _close(conn)
                conn = None
        if conn is not None:
            _close(conn)

    def _one(self, conn: psycopg.Connection[Any], client: int, seq: int, node: str, sync_commit: str) -> None:
        tid = (self.index * MAX_CLIENTS + client) * ID_STRIDE + seq
        account = uniform(decision(self.seed, "ledger.account", self.name, client, seq), 0,
                          self.values["accounts"] - 1)
        amount = uniform(decision(self.seed, "ledger.amount", self.name, client, seq), 1, 1000)
        rec: dict[str, Any] = {"op": "write", "workload": self.name, "client": client, "seq": seq,
                               "id": tid, "account": account, "amount": amount, "node": node,
                               "synchronous_commit": sync_commit, "sent_t": self.clock.now()}
        with self._lock:
            self._inflight[client] = rec
        try:
            row = conn.execute(f"INSERT INTO {LEDGER_TABLE} (id, client, seq, account, amount) "
                               "VALUES (%s, %s, %s, %s, %s) RETURNING pg_current_wal_insert_lsn()::text",
                               (tid, client, seq, account, amount)).fetchone()
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            broken = conn.closed or conn.broken or state is None or state[:2] in _INDETERMINATE_CLASSES
            rec.update(outcome="indeterminate" if broken else "failed", sqlstate=state,
                       error=str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__)
        else:
            rec.update(outcome="acked", lsn=parse_lsn(row[0]) if row else None)
        self._finish(client, rec)

    def _finish(self, client: int, rec: dict[str, Any]) -> None:
        with self._lock:
            self._inflight.pop(client, None)
            if client in self._abandoned:
                return  # already written off as indeterminate by stop()
            if rec["outcome"] == "acked":
                self.acked += 1
        self.ledger.write(rec)

    def _abandon(self) -> None:
        with self._lock:
            left = dict(self._inflight)
            self._abandoned.update(left)
            self._inflight.clear()
        for rec in left.values():
            rec.update(outcome="indeterminate", error="still in flight when the workload stopped",
                       sqlstate=None)
            self.ledger.write(rec)


def _close(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close cleanly
        pass


class ReaderWorkload(Workload):
    kind = "reader"

    def __init__(self, name: str, values: dict[str, Any], seed: int, ledger: JsonlWriter,
                 clock: Clock, targets: list[Target]) -> None:
        super().__init__(name, values, seed, ledger, clock)
        self.targets = targets

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.running = True
        for c in range(self.values["clients"]):
            t = threading.Thread(target=self._client, args=(c,), daemon=True, name=f"walsim-{self.name}-{c}")
            self._threads.append(t)
            t.start()

    def _client(self, client: int) -> None:
        pace = self._pace(self.values["rate"], self.values["clients"])
        conns: dict[str, psycopg.Connection[Any]] = {}
        n = 0
        while pace():
            n += 1
            target = self.targets[(client + n) % len(self.targets)]
            account = uniform(decision(self.seed, "reader.account", self.name, client, n), 0, 15)
            rec: dict[str, Any] = {"op": "read", "workload": self.name, "client": client, "seq": n,
                                   "node": target.name}
            try:
                conn = conns.get(target.name)
                if conn is None or conn.closed:
                    conn = psycopg.connect(target.conninfo, autocommit=True,
                                           connect_timeout=max(1, int(self.values["connect_timeout"])),
                                           application_name=f"walsim-{self.name}")
                    conns[target.name] = conn
                row = conn.execute(f"SELECT count(*) FROM {LEDGER_TABLE} WHERE account = %s",
                                   (account,)).fetchone()
                rec.update(outcome="ok", rows=row[0] if row else None)
            except psycopg.Error as exc:
                rec.update(outcome="failed", sqlstate=getattr(exc, "sqlstate", None),
                           error=(str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])
                bad = conns.pop(target.name, None)
                if bad is not None:
                    _close(bad)
            self.ledger.write(rec)
        for c in conns.values():
            _close(c)


class PgbenchWorkload(Workload):
    """``pgbench`` against one node: initialised at setup, restarted on retarget."""

    kind = "pgbench"

    def __init__(self, name: str, values: dict[str, Any], seed: int, ledger: JsonlWriter,
                 clock: Clock, target: Target, pgbench: str, log_path: Path) -> None:
        super().__init__(name, values, seed, ledger, clock)
        self.target = target
        self.pgbench = pgbench
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def setup(self) -> None:
        with open(self.log_path, "ab") as log:
            subprocess.run([self.pgbench, "-i", "-q", "-s", str(self.values["scale"]), self.target.conninfo],
                           stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300)

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        argv = [self.pgbench, "-n", "-c", str(self.values["clients"]), "-T", "86400", "-P", "1",
                "--random-seed", str(self.seed % (1 << 31))]
        if self.values["rate"]:
            argv += ["-R", str(self.values["rate"])]
        argv.append(self.target.conninfo)
        self.log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        supervise.register_process(self._proc.pid, f"pgbench {self.name}")
        self.running = True
        self.ledger.write({"op": "pgbench", "workload": self.name, "event": "start",
                           "node": self.target.name, "pid": self._proc.pid})

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self.ledger.write({"op": "pgbench", "workload": self.name, "event": "stop",
                               "node": self.target.name, "returncode": self._proc.returncode})
            self._proc = None
            self.log.close()
        self.running = False

    def retarget(self, node: Any) -> None:
        was = self.running
        self.stop()
        self.target = node_target(node)
        if was:
            self.start()
