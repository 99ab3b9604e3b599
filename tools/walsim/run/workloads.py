"""Workloads: the load a scenario puts on the cluster, and what it records.

- :class:`LedgerWorkload`: N client threads, each committing one small
  transaction at a time (``INSERT ... RETURNING pg_current_wal_insert_lsn()``
  in autocommit) with a client-generated unique id, and recording in
  ``ledger.jsonl`` one line per transaction: ``acked`` (with the WAL insert
  position just before its commit record, and the time), ``failed`` (with the
  error and SQLSTATE: the server said the transaction did not commit) or
  ``indeterminate`` (the connection broke, or the client gave up waiting,
  while the commit was in flight: it may or may not have committed).  Ids are
  ``(workload index * 100 + client) * 10^9 + sequence number``: unique across
  clients and ledger workloads without coordination.
- :class:`ReaderWorkload`: read-only clients on standbys (hot standby load
  balancing), recording each read and each error (recovery conflicts: 40001).
- :class:`PgbenchWorkload`: ``pgbench`` as a load generator.

The ledger client (one implementation, whoever chose the primary):

- **endpoints**: a list of :class:`Target` (a name and a conninfo).  With one
  endpoint the clients write to it, whatever it is (a standby answers
  25006, recorded as ``failed``); with several (``search``) each client finds
  the writable one itself, trying each endpoint in turn, the last one found
  writable first (libpq's ``target_session_attrs=read-write`` semantics, done
  here because libpq's multi-host list does not move on when a proxy accepts
  the connection and then closes it).  :meth:`LedgerWorkload.retarget`
  points the workload at a node (walsim's ``promote``); it interrupts commits
  in flight to the old target (they end ``indeterminate``).
- **persistent connections**: one per client, kept until it breaks, the
  target changes or the server stops being writable.
- **timeouts**: ``connect_timeout`` (libpq's, whole connection set-up),
  ``statement_timeout`` (client side: a commit, or the identity query, not
  answered within it has its connection shut down by a watchdog and ends
  ``indeterminate``; walsim never sets the server's statement_timeout,
  because a cancelled wait for a synchronous standby returns *success*), and
  ``tcp_user_timeout`` (libpq's, in the kernel).  All three are scaled by
  ``WALSIM_TIMEOUT_MULT``.
- **who acknowledged**: every connection asks its server who it is
  (``inet_server_addr()``/``inet_server_port()``, the system identifier,
  the timeline) and every commit returns its timeline and the
  ``synchronous_commit`` in effect for it (so a reload is seen at once);
  ``identify`` maps an address to a node name when walsim knows it.

Which account a transaction touches and its amount come from the decision
function with the run's seed (coordinates: workload, client, sequence
number), so two runs with one seed send the same transactions.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import psycopg

from walsim.core import supervise
from walsim.core.decision import decision, uniform
from walsim.core.events import Clock, JsonlWriter
from walsim.core.lsn import parse_lsn
from walsim.core.timeouts import multiplier

LEDGER_TABLE = "walsim_ledger"
LEDGER_DDL = (f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
              "id bigint PRIMARY KEY, client int NOT NULL, seq int NOT NULL, "
              "account int NOT NULL, amount int NOT NULL, "
              "at timestamptz NOT NULL DEFAULT clock_timestamp())")
ID_STRIDE = 1_000_000_000  # id = (workload index * 100 + client) * ID_STRIDE + seq
MAX_CLIENTS = 100          # clients per workload that the id scheme keeps apart

#: SQLSTATE classes after which the transaction may still have committed
_INDETERMINATE_CLASSES = ("08", "57", "58", "XX")

#: defaults of the ledger's timeouts, in seconds before WALSIM_TIMEOUT_MULT
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_STATEMENT_TIMEOUT = 5.0
DEFAULT_TCP_USER_TIMEOUT = 5.0
#: how far behind its slots a paced client may fall and still catch up (seconds):
#: scheduling jitter is made up for; a stall (a frozen server, a statement
#: timeout) is not, since a burst of the backlog after a failover would reach
#: a scenario's next "wait commits" in milliseconds instead of at the rate
MAX_CATCH_UP = 0.1
#: how long the watchdog sleeps when no client is waiting
WATCHDOG_IDLE = 1.0
#: pause between two searches that found no writable endpoint
RETRY_INTERVAL = 0.05

#: asked once per connection: who the server is and whether it takes writes
IDENTITY_SQL = ("SELECT host(inet_server_addr()), inet_server_port(), pg_is_in_recovery(), "
                "current_setting('transaction_read_only'), current_setting('synchronous_commit'), "
                "CASE WHEN pg_is_in_recovery() THEN NULL "
                "ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END")
SYSID_SQL = "SELECT system_identifier::text FROM pg_control_system()"
#: one transaction: its LSN, the synchronous_commit it commits with, its timeline
INSERT_SQL = (f"INSERT INTO {LEDGER_TABLE} (id, client, seq, account, amount) "
              "VALUES (%s, %s, %s, %s, %s) RETURNING pg_current_wal_insert_lsn()::text, "
              "current_setting('synchronous_commit'), pg_walfile_name(pg_current_wal_insert_lsn())")


class Target:
    """An endpoint a client connects to: a name and a conninfo, the latter given as a
    string or as a function (a node's port may change when it restarts)."""

    def __init__(self, name: str, conninfo: str | Callable[[], str]) -> None:
        self.name = name
        self._conninfo = conninfo

    @property
    def conninfo(self) -> str:
        c = self._conninfo
        return c() if callable(c) else c

    def __repr__(self) -> str:
        return f"<Target {self.name}>"


def node_target(node: Any) -> Target:
    """A node as an endpoint (its conninfo read at each connection)."""
    return Target(node.name, node.conninfo)


#: maps a server's (address, port, system identifier) to a node name, or None
Identify = Callable[[str | None, int | None, str | None], "str | None"]


def _timeline_of(walfile: Any) -> int | None:
    return int(str(walfile)[:8], 16) if walfile else None


@dataclass
class Session:
    """A client's connection and what its server said about itself."""

    conn: psycopg.Connection[Any]
    endpoint: str
    generation: int
    node: str
    server: str | None = None
    system_identifier: str | None = None
    timeline: int | None = None
    synchronous_commit: str = "on"
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"node": self.node, "endpoint": self.endpoint, "server": self.server,
                "system_identifier": self.system_identifier, "timeline": self.timeline}


@dataclass
class _Busy:
    """A client waiting for its server: the connection and when to give up on it."""

    conn: psycopg.Connection[Any]
    deadline: float
    fired: bool = False


def interrupt(conn: psycopg.Connection[Any]) -> bool:
    """Shut a connection's socket down under a thread blocked on it (a frozen server
    still has its kernel acknowledge every byte: nothing else wakes the thread)."""
    try:
        fd = conn.pgconn.socket
    except Exception:  # noqa: BLE001 - already closed
        return False
    try:
        s = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)  # a dup: closing it keeps fd
    except OSError:
        return False
    try:
        s.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        s.close()


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
                if delay < -MAX_CATCH_UP:  # behind by more than jitter (a stall): do not burst
                    nxt[0] = time.monotonic()
                elif delay > 0 and self._stop.wait(delay):
                    return False
            return not self._stop.is_set()
        return wait


class LedgerWorkload(Workload):
    kind = "ledger"

    def __init__(self, name: str, values: dict[str, Any], seed: int, ledger: JsonlWriter,
                 clock: Clock, target: Target | Sequence[Target], index: int = 0, *,
                 search: bool | None = None, identify: Identify | None = None) -> None:
        super().__init__(name, values, seed, ledger, clock)
        self.endpoints: list[Target] = [target] if isinstance(target, Target) else list(target)
        if not self.endpoints:
            raise ValueError(f"ledger workload {name} has no endpoint")
        #: search the endpoints for the writable one (default: when there are several)
        self.search = len(self.endpoints) > 1 if search is None else search
        self.identify = identify
        #: the workload's position among the ledger workloads: keeps ids unique across them
        self.index = index
        self.generation = 0
        self.acked = 0
        #: the endpoint last found writable: every client tries it first
        self._preferred = 0
        #: endpoints a client gave up on (no answer within statement_timeout), by name: when;
        #: searches try them last for a while (a frozen server costs a connect_timeout each)
        self._suspect: dict[str, float] = {}
        self._inflight: dict[int, dict[str, Any]] = {}
        self._abandoned: set[int] = set()
        self._busy: dict[int, _Busy] = {}
        #: wakes the watchdog when a client starts waiting (an earlier deadline) or on stop
        self._wake = threading.Condition(self._lock)
        #: when the watchdog wakes next by itself
        self._watch_until = 0.0
        mult = multiplier()
        self.connect_timeout = float(values.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT) * mult
        self.statement_timeout = float(values.get("statement_timeout") or DEFAULT_STATEMENT_TIMEOUT) * mult
        self.tcp_user_timeout = float(values.get("tcp_user_timeout") or DEFAULT_TCP_USER_TIMEOUT) * mult

    @property
    def target(self) -> Target:
        """The endpoint clients try first (the only one without search)."""
        with self._lock:
            return self.endpoints[self._preferred]

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
        w = threading.Thread(target=self._watchdog, daemon=True, name=f"walsim-{self.name}-watchdog")
        self._threads.append(w)
        w.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        super().stop(timeout)
        self._interrupt_all()  # threads still blocked return now; their records are written off

    def retarget(self, node: Any) -> None:
        """Point the workload at ``node``: without search it becomes the only endpoint;
        with search it is tried first (added if it was not an endpoint).  Commits in
        flight elsewhere are interrupted (indeterminate)."""
        new = node if isinstance(node, Target) else node_target(node)
        with self._lock:
            if self.search:
                names = [e.name for e in self.endpoints]
                if new.name in names:
                    self._preferred = names.index(new.name)
                else:
                    self.endpoints.insert(0, new)
                    self._preferred = 0
            else:
                self.endpoints = [new]
                self._preferred = 0
            self.generation += 1
        self._interrupt_all()

    def acked_count(self) -> int:
        with self._lock:
            return self.acked

    # ------------------------------------------------------------ watchdog
    def _watchdog(self) -> None:
        """Shuts down the connection of a client still waiting at its deadline, at
        that deadline: a statement_timeout kept late would let a server thawed
        in between acknowledge the commit the client had given up on.  The
        socket is shut down under the lock, so never under a later query of
        the same connection."""
        with self._wake:
            while not self._stop.is_set():
                now = time.monotonic()
                pending = [b for b in self._busy.values() if not b.fired]
                for b in pending:
                    if now >= b.deadline:
                        self._cut(b)
                waits = [b.deadline - now for b in pending if not b.fired]
                self._watch_until = now + (min(waits) if waits else WATCHDOG_IDLE)
                self._wake.wait(self._watch_until - now)

    def _interrupt_all(self) -> None:
        with self._lock:
            for b in self._busy.values():
                self._cut(b)

    @staticmethod
    def _cut(b: _Busy) -> None:
        """Give up on a wait (the lock held: the wait is still the connection's own)."""
        b.fired = True
        interrupt(b.conn)

    def _waiting(self, client: int, conn: psycopg.Connection[Any]) -> _Busy:
        b = _Busy(conn, time.monotonic() + self.statement_timeout)
        with self._wake:
            self._busy[client] = b
            # rarely: a new deadline is a whole statement_timeout away, after every pending one
            if b.deadline < self._watch_until:
                self._wake.notify()
        return b

    def _done_waiting(self, client: int) -> None:
        with self._lock:
            self._busy.pop(client, None)

    # ------------------------------------------------------------ sessions
    def _order(self) -> tuple[list[Target], int]:
        """The endpoints in the order to try: the preferred one first, then the others
        in turn; endpoints recently given up on go last."""
        with self._lock:
            eps, first = list(self.endpoints), self._preferred
            now = time.monotonic()
            recent = {n for n, t in self._suspect.items() if now - t < 3 * self.statement_timeout}
            order = eps[first:] + eps[:first]
            return [e for e in order if e.name not in recent] + [e for e in order if e.name in recent], \
                self.generation

    def _open(self, client: int) -> tuple[Session | None, dict[str, str]]:
        """A session on the first endpoint that answers (and, with search, takes
        writes); None and why each endpoint was passed over otherwise."""
        order, gen = self._order()
        tried: dict[str, str] = {}
        for ep in order:
            if self._stop.is_set():
                break
            try:
                conn = psycopg.connect(ep.conninfo, autocommit=True,
                                       connect_timeout=max(2, round(self.connect_timeout)),
                                       tcp_user_timeout=max(1, round(self.tcp_user_timeout * 1000)),
                                       keepalives=1, keepalives_idle=max(1, round(self.tcp_user_timeout)),
                                       keepalives_interval=1, keepalives_count=3,
                                       application_name=f"walsim-{self.name}")
            except psycopg.Error as exc:
                tried[ep.name] = _first_line(exc)
                continue
            sess = self._identify(client, conn, ep, gen)
            if sess is None:
                tried[ep.name] = "no answer to the identity query"
                _close(conn)
                continue
            if isinstance(sess, str):
                tried[ep.name] = sess
                _close(conn)
                continue
            with self._lock:
                names = [e.name for e in self.endpoints]
                if ep.name in names and gen == self.generation:
                    self._preferred = names.index(ep.name)
            return sess, tried
        return None, tried

    def _identify(self, client: int, conn: psycopg.Connection[Any], ep: Target, gen: int) -> Session | str | None:
        self._waiting(client, conn)
        try:
            row = conn.execute(IDENTITY_SQL).fetchone()
            try:
                sysid = conn.execute(SYSID_SQL).fetchone()
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    raise
                sysid = None  # pg_control_system() may be denied to the role: optional
                del exc
        except psycopg.Error:
            return None
        finally:
            self._done_waiting(client)
        if row is None:
            return None
        addr, port, in_recovery, read_only, sync_commit, walfile = row
        sid = str(sysid[0]) if sysid else None
        if self.search and (in_recovery or str(read_only) == "on"):
            return "in recovery" if in_recovery else "read-only (default_transaction_read_only)"
        name = self.identify(addr, port, sid) if self.identify else None
        sess = Session(conn, ep.name, gen, name or (f"{addr}:{port}" if addr else ep.name),
                       server=f"{addr}:{port}" if addr else None, system_identifier=sid,
                       timeline=_timeline_of(walfile), synchronous_commit=str(sync_commit))

        def on_notice(diag: Any) -> None:
            if (diag.severity_nonlocalized or diag.severity or "") == "WARNING":
                sess.warnings.append(str(diag.message_primary or "")[:300])
        conn.add_notice_handler(on_notice)
        return sess

    # -------------------------------------------------------------- client
    def _client(self, client: int) -> None:
        pace = self._pace(self.values["rate"], self.values["clients"])
        sess: Session | None = None
        searching_since: float | None = None
        seq = 0
        while pace():
            with self._lock:
                stale = sess is not None and sess.generation != self.generation
            if sess is not None and (stale or sess.conn.closed or sess.conn.broken):
                _close(sess.conn)
                sess = None
            if sess is None:
                sess, tried = self._open(client)
                if sess is None:
                    # nothing was sent: not a transaction; retry at the next slot
                    if searching_since is None:
                        searching_since = self.clock.now()
                        self.ledger.write({"op": "session", "event": "none", "workload": self.name,
                                           "client": client, "tried": tried})
                    if self._stop.wait(RETRY_INTERVAL):
                        break
                    continue
                searching_since = None
                self.ledger.write({"op": "session", "event": "open", "workload": self.name, "client": client,
                                   **sess.describe(), "synchronous_commit": sess.synchronous_commit,
                                   "passed_over": tried or None})
            seq += 1
            self._one(sess, client, seq)
            if sess.conn.closed or sess.conn.broken:
                _close(sess.conn)
                sess = None
        if sess is not None:
            _close(sess.conn)

    def _one(self, sess: Session, client: int, seq: int) -> None:
        tid = (self.index * MAX_CLIENTS + client) * ID_STRIDE + seq
        account = uniform(decision(self.seed, "ledger.account", self.name, client, seq), 0,
                          self.values["accounts"] - 1)
        amount = uniform(decision(self.seed, "ledger.amount", self.name, client, seq), 1, 1000)
        rec: dict[str, Any] = {"op": "write", "workload": self.name, "client": client, "seq": seq,
                               "id": tid, "account": account, "amount": amount, **sess.describe(),
                               "synchronous_commit": sess.synchronous_commit, "sent_t": self.clock.now()}
        conn = sess.conn
        with self._lock:
            self._inflight[client] = rec
        sess.warnings.clear()
        busy = self._waiting(client, conn)
        try:
            row = conn.execute(INSERT_SQL, (tid, client, seq, account, amount)).fetchone()
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            broken = conn.closed or conn.broken or state is None or state[:2] in _INDETERMINATE_CLASSES
            if busy.fired:
                broken = True
                with self._lock:
                    moved = sess.generation != self.generation
                err = ("the workload moved to another endpoint while the commit was in flight: "
                       "the client closed the connection" if moved else
                       f"no answer within statement_timeout ({self.statement_timeout:g} s): "
                       "the client closed the connection")
                if not moved and self.search:
                    with self._lock:
                        self._suspect[sess.endpoint] = time.monotonic()
                rec.update(outcome="indeterminate", sqlstate=state, error=err, cut_off=True)
            else:
                rec.update(outcome="indeterminate" if broken else "failed", sqlstate=state,
                           error=_first_line(exc))
        else:
            if row:
                sess.synchronous_commit = str(row[1])
                sess.timeline = _timeline_of(row[2]) or sess.timeline
                rec.update(synchronous_commit=sess.synchronous_commit, timeline=sess.timeline)
            rec.update(outcome="acked", lsn=parse_lsn(row[0]) if row else None)
        finally:
            self._done_waiting(client)
        if sess.warnings:
            rec["warning"] = sess.warnings[0]
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


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
        self.target = node if isinstance(node, Target) else node_target(node)
        if was:
            self.start()
