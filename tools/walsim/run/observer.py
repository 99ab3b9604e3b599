"""The observer: samples every node on shared ticks into ``samples.jsonl``.

Every node is sampled once per *round*: round ``r`` is due at the observer's
start plus ``r`` intervals (100 ms by default, down to 10 ms).  One sampler
thread wakes at the round's tick and sends the round's query to every node
at once (libpq's non-blocking interface, one connection per node), then
collects the answers as they come: the samples of one round are one
cluster-wide moment as nearly as the machine allows, and a frozen or dead
node never holds up the others.  A node whose previous query has not
returned yet (frozen) is skipped in the rounds it misses; a node that cannot
be reached gives a sample with ``up: false`` and the error in each round
(connections are made by a helper thread per node, so a slow connect never
delays a round either).

The query is prepared once per connection and returns the record as JSON
built by the server, LSNs already as integers, plus the server's own clock
(``clock_timestamp()``) at the moment of the sample.  Each record carries
``round`` and ``server_t`` (the server's time of the sample on the run's time
axis), and ``late: true`` when the sample was taken more than a tick after
its round's tick (a frozen or overloaded node); the verdicts that compare
nodes pair the samples of one round (late ones by time instead) and place
them by ``server_t``.  Every round samples the positions (role,
timeline, WAL insert/write/flush, receive/replay); the ``pg_stat_replication``
rows and the ``pg_stat_wal_receiver`` row come every ``detail_every`` rounds
(by default as often as every 100 ms).  Extra sources (walsim-netd's stats)
are sampled by their own thread at a lower rate.  :meth:`Observer.skew`
states how far apart the samples of a round were (the engine records it in
``events.jsonl`` as ``observer_stats``).
"""

from __future__ import annotations

import json
import math
import select
import threading
import time
from typing import Any, Callable

import psycopg
from psycopg import pq

from walsim.core.events import JsonlWriter

#: the shortest interval the observer accepts (docs/benchmarks.md: its cost at 10 ms)
MIN_INTERVAL = 0.01
#: how far outside [sent, answer read] a server's clock may be before it is not trusted (s)
CLOCK_TOLERANCE = 0.002
#: how often the pg_stat_replication / pg_stat_wal_receiver rows are sampled, at least
DETAIL_INTERVAL = 0.1

# One row, two text columns: the server's clock, then the record as JSON
# built by the server (no per-column conversion in Python: the line written
# is the observer's fields followed by the server's text).  LSNs as numbers
# (pg_lsn - '0/0'); the timeline of a standby from its WAL receiver, else
# from its last checkpoint (pg_control_checkpoint() reads a file: only
# evaluated when needed).
_POSITIONS = """
  'role', CASE WHEN rec THEN 'standby' ELSE 'primary' END,
  'timeline', CASE WHEN NOT rec
                   THEN ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int
                   ELSE coalesce((SELECT received_tli FROM pg_stat_get_wal_receiver() WHERE pid IS NOT NULL),
                                 (SELECT timeline_id FROM pg_control_checkpoint())) END,
  'insert_lsn', CASE WHEN NOT rec THEN pg_current_wal_insert_lsn() - '0/0' END,
  'write_lsn', CASE WHEN NOT rec THEN pg_current_wal_lsn() - '0/0' END,
  'flush_lsn', CASE WHEN NOT rec THEN pg_current_wal_flush_lsn() - '0/0' END,
  'receive_lsn', pg_last_wal_receive_lsn() - '0/0',
  'replay_lsn', pg_last_wal_replay_lsn() - '0/0'"""

_DETAIL = """,
  'replication', (SELECT coalesce(json_agg(json_build_object(
        'application_name', application_name, 'state', state, 'sync_state', sync_state,
        'sent_lsn', sent_lsn - '0/0', 'write_lsn', write_lsn - '0/0', 'flush_lsn', flush_lsn - '0/0',
        'replay_lsn', replay_lsn - '0/0',
        'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),
        'replay_lag', extract(epoch FROM replay_lag)) ORDER BY application_name), '[]'::json)
      FROM pg_stat_replication),
  'wal_receiver', (SELECT json_build_object('status', status, 'received_tli', received_tli,
        'flushed_lsn', flushed_lsn - '0/0', 'written_lsn', written_lsn - '0/0',
        'latest_end_lsn', latest_end_lsn - '0/0', 'sender_host', sender_host,
        'sender_port', sender_port, 'slot_name', slot_name)
      FROM pg_stat_wal_receiver WHERE pid IS NOT NULL)"""


def _sample_sql(detail: bool) -> str:
    return ("SELECT extract(epoch FROM clock_timestamp())::text, json_build_object("
            + _POSITIONS + (_DETAIL if detail else "") + ")::text\nFROM pg_is_in_recovery() AS rec\n")


#: the full sample (positions and the replication rows)
SAMPLE_SQL = _sample_sql(True)
#: the positions only
POSITIONS_SQL = _sample_sql(False)
_STATEMENTS = {True: (b"walsim_sample", SAMPLE_SQL.encode()), False: (b"walsim_positions", POSITIONS_SQL.encode())}


def shape_sample(node: str, round_id: int, server_wall: str, body: str, start_wall: float,
                 sent_wall: float, received_wall: float) -> dict[str, Any]:
    """The samples.jsonl record of one query result (the server's clock and
    JSON text), sent and answered at the given Unix times; ``start_wall`` is
    the run's start in Unix time (the origin of ``server_t``)."""
    server_t, offset = server_time(float(server_wall), sent_wall, received_wall, start_wall)
    rec: dict[str, Any] = {"node": node, "up": True, "round": round_id, "server_t": server_t}
    if offset is not None:
        rec["clock_offset"] = offset
    rec.update(json.loads(body))
    return rec


def sample_line(t: float, wall: float, node: str, round_id: int, server_t: float, body: str,
                clock_offset: float | None = None, late: bool = False) -> str:
    """The samples.jsonl line of an answered sample: the observer's fields, then
    the members of the server's JSON object ``body``, copied as they came (not
    parsed and dumped again: hundreds of samples a second)."""
    inner = body.strip()[1:].strip()
    off = f', "clock_offset": {clock_offset}' if clock_offset is not None else ""
    off += ', "late": true' if late else ""
    return (f'{{"t": {t}, "wall": {wall}, "node": {json.dumps(node)}, "up": true, '
            f'"round": {round_id}, "server_t": {server_t}{off}' + (", " + inner if inner != "}" else "}"))


def server_time(server_wall: float, sent_wall: float, received_wall: float,
                start_wall: float) -> tuple[float, float | None]:
    """The time of a sample on the run's axis, and the server clock's offset
    when it cannot be trusted.

    The servers run on this machine, so their clock is the observer's: the
    server's ``clock_timestamp()`` must lie between the moment the query was
    sent and the moment its answer was read.  Outside that bracket (beyond
    ``CLOCK_TOLERANCE``) the node's clock is moved (a ``clock`` fault,
    libfaketime): the sample is placed at the middle of the bracket and the
    offset (server minus that middle, in seconds) is returned."""
    if sent_wall - CLOCK_TOLERANCE <= server_wall <= received_wall + CLOCK_TOLERANCE:
        return round(server_wall - start_wall, 6), None
    mid = (sent_wall + received_wall) / 2
    return round(mid - start_wall, 6), round(server_wall - mid, 6)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


class _NodeState:
    """One node's connection and what is in flight on it (sampler thread only,
    except ``pending``/``error``, handed over by the node's connect thread)."""

    __slots__ = ("name", "conn", "fd", "busy_round", "sent_wall", "pending", "error", "error_recorded",
                 "connecting", "lock")

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn: psycopg.Connection[Any] | None = None
        self.fd = -1
        self.busy_round: int | None = None
        self.sent_wall = 0.0
        self.pending: psycopg.Connection[Any] | None = None
        self.error: str | None = None
        self.error_recorded = False
        self.connecting = False
        self.lock = threading.Lock()


class Observer:
    """Samples nodes until stopped.  ``conninfo_of(name)`` gives each node's
    current conninfo (nodes can move ports when restarted)."""

    def __init__(self, nodes: list[str], conninfo_of: Callable[[str], str], writer: JsonlWriter,
                 interval: float = 0.1,
                 extra: dict[str, tuple[Callable[[], Any], float]] | None = None,
                 detail_every: int | None = None) -> None:
        if not interval >= MIN_INTERVAL:
            raise ValueError(f"observer interval {interval} s is below {MIN_INTERVAL} s")
        self.nodes = nodes
        self.conninfo_of = conninfo_of
        self.writer = writer
        self.interval = interval
        self.detail_every = detail_every or max(1, round(DETAIL_INTERVAL / interval))
        self.extra = extra or {}
        # node -> (the fields the observer wrote, the server's JSON text or None)
        self._latest: dict[str, tuple[dict[str, Any], str | None]] = {}
        self.counts: dict[str, int] = {n: 0 for n in nodes}
        # round -> server_t of each node that answered in it (for skew())
        self._rounds: dict[int, list[float]] = {}
        self._rounds_lock = threading.Lock()
        self._late = 0  # samples taken more than a tick after their round's tick
        self._t0 = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._states = {n: _NodeState(n) for n in nodes}
        self._lines: list[str] = []  # samples not written yet (sampler thread only)

    def start(self, connect_timeout: float = 2.0) -> None:
        """Connect to every node (at most ``connect_timeout`` seconds: a node that
        is down is sampled as down), then start the rounds."""
        for st in self._states.values():
            self._connect_async(st)
        deadline = time.monotonic() + connect_timeout
        while time.monotonic() < deadline and any(st.connecting for st in self._states.values()):
            time.sleep(0.005)
        self._t0 = time.monotonic() + self.interval
        t = threading.Thread(target=self._sample_loop, daemon=True, name="walsim-observe")
        self._threads.append(t)
        t.start()
        for name, (fn, every) in self.extra.items():
            t = threading.Thread(target=self._sample_extra, args=(name, fn, every), daemon=True,
                                 name=f"walsim-observe-{name}")
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        for st in self._states.values():
            with st.lock:
                conns = [c for c in (st.conn, st.pending) if c is not None]
                st.conn = st.pending = None
            for c in conns:
                _close(c)

    @property
    def latest(self) -> dict[str, dict[str, Any]]:
        """The last sample of each node, as written (parsed on demand: the
        progress line asks once a second, the samples come hundreds a second)."""
        out = {}
        for node, (head, body) in list(self._latest.items()):
            rec = dict(head)
            if body is not None:
                rec.update(json.loads(body))
            out[node] = rec
        return out

    def skew(self) -> dict[str, Any]:
        """How far apart in server time the samples of one round were: over
        the rounds in which every node answered within the tick, the spread
        (latest minus earliest ``server_t``) as p50, p99 and max in
        milliseconds; ``late``: samples taken more than a tick after theirs."""
        with self._rounds_lock:
            full = [ts for ts in self._rounds.values() if len(ts) == len(self.nodes)]
            late = self._late
        spreads = [(max(ts) - min(ts)) * 1000 for ts in full]
        out: dict[str, Any] = {"interval_ms": round(self.interval * 1000, 3), "rounds": len(full), "late": late}
        if spreads and len(self.nodes) > 1:
            out.update(skew_p50_ms=round(percentile(spreads, 0.5), 3),
                       skew_p99_ms=round(percentile(spreads, 0.99), 3), skew_max_ms=round(max(spreads), 3))
        return out

    def sample_now(self, node: str) -> dict[str, Any]:
        """One sample taken synchronously (used at the end of a run; no round)."""
        try:
            with psycopg.connect(self.conninfo_of(node), autocommit=True, connect_timeout=2,
                                 application_name="walsim-observer") as conn:
                sent = time.time()
                row = conn.execute(SAMPLE_SQL).fetchone()
            assert row is not None
            rec = shape_sample(node, -1, row[0], row[1], self.writer.clock.start_wall, sent, time.time())
            del rec["round"]
        except psycopg.Error as exc:
            rec = {"node": node, "up": False, "error": _first_line(exc)}
        return self.writer.write(rec)

    # ------------------------------------------------------------ connections
    def _connect_async(self, st: _NodeState) -> None:
        with st.lock:
            if st.connecting or self._stop.is_set():
                return
            st.connecting = True
        threading.Thread(target=self._connect, args=(st,), daemon=True,
                         name=f"walsim-observe-connect-{st.name}").start()

    def _connect(self, st: _NodeState) -> None:
        conn: psycopg.Connection[Any] | None = None
        error: str | None = None
        try:
            conn = psycopg.connect(self.conninfo_of(st.name), autocommit=True, connect_timeout=1,
                                   application_name="walsim-observer")
            for name, text in _STATEMENTS.values():
                _check(conn.pgconn.prepare(name, text), pq.ExecStatus.COMMAND_OK)
            conn.pgconn.nonblocking = 1
        except (psycopg.Error, OSError) as exc:
            error = _first_line(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the node object changed under us
            error = f"{type(exc).__name__}: {exc}"
        if error is not None and conn is not None:
            _close(conn)
            conn = None
        with st.lock:
            st.connecting = False
            if self._stop.is_set():
                stale, conn = conn, None
            else:
                stale = None
            st.pending, st.error = conn, error
        if stale is not None:
            _close(stale)

    def _drop(self, st: _NodeState, error: str) -> None:
        if st.conn is not None:
            _close(st.conn)
        st.conn, st.fd, st.busy_round, st.error = None, -1, None, error

    # ---------------------------------------------------------------- rounds
    def _round_due(self, r: int) -> float:
        return self._t0 + r * self.interval

    def _next_round(self, r: int) -> int:
        """The next round after ``r`` that is not already past (missed rounds are skipped)."""
        now_round = int((time.monotonic() - self._t0) // self.interval)
        return max(r + 1, now_round + 1)

    def _sample_loop(self) -> None:
        start_wall = self.writer.clock.start_wall
        r = 0
        while not self._stop.is_set():
            if time.monotonic() >= self._round_due(r):
                self._send_round(r)
                r = self._next_round(r)
            busy = {st.fd: st for st in self._states.values()
                    if st.conn is not None and st.busy_round is not None}
            delay = max(0.0, self._round_due(r) - time.monotonic())
            if not busy:
                self._flush()
                if self._stop.wait(delay):
                    break
                continue
            try:
                ready, _, _ = select.select(list(busy), [], [], delay)
            except (OSError, ValueError):  # a socket closed under us: find it below
                ready = list(busy)
            for fd in ready:
                self._receive(busy[fd], start_wall)
            self._flush()
        self._flush()

    def _send_round(self, r: int) -> None:
        detail = r % self.detail_every == 0
        name = _STATEMENTS[detail][0]
        for st in self._states.values():
            if st.conn is None:
                with st.lock:
                    st.conn, st.pending = st.pending, None
                    error = st.error
                if st.conn is None:
                    # unreachable: one sample when it starts, then one per detail round
                    if detail or not st.error_recorded:
                        self._record(st.name, {"node": st.name, "up": False, "round": r,
                                               "error": error or "not connected yet"}, None)
                        st.error_recorded = True
                    self._connect_async(st)
                    continue
            if st.busy_round is not None:
                continue  # still answering an earlier round (frozen, or slow): no sample this round
            try:
                pg = st.conn.pgconn
                st.fd = pg.socket
                st.sent_wall = time.time()
                pg.send_query_prepared(name, None)
                while pg.flush() == 1:
                    select.select([], [pg.socket], [], self.interval)
                st.busy_round = r
            except (psycopg.Error, OSError) as exc:
                self._drop(st, _first_line(exc))
                self._record(st.name, {"node": st.name, "up": False, "round": r, "error": st.error}, None)
                st.error_recorded = True
                self._connect_async(st)

    def _receive(self, st: _NodeState, start_wall: float) -> None:
        assert st.conn is not None and st.busy_round is not None
        r = st.busy_round
        pg = st.conn.pgconn
        try:
            pg.consume_input()
            if pg.is_busy():
                return
            res = pg.get_result()
            while pg.get_result() is not None:  # the end of the query's results
                pass
            if res is None:
                raise psycopg.OperationalError("the sample query returned no result")
            _check(res, pq.ExecStatus.TUPLES_OK)
            clock_text, body_bytes = res.get_value(0, 0), res.get_value(0, 1)
            if clock_text is None or body_bytes is None:
                raise psycopg.DataError("the sample query returned NULL")
        except (psycopg.Error, OSError) as exc:
            self._drop(st, _first_line(exc))
            self._record(st.name, {"node": st.name, "up": False, "round": r, "error": st.error}, None)
            st.error_recorded = True
            self._connect_async(st)
            return
        st.busy_round, st.error_recorded = None, False
        server_t, offset = server_time(float(clock_text), st.sent_wall, time.time(), start_wall)
        # taken more than a tick after its round's tick (a frozen or overloaded node):
        # not one moment with the others of its round (verdicts do not pair it by round)
        late = server_t - (self._t0 - self.writer.clock.start_mono + r * self.interval) > self.interval
        with self._rounds_lock:
            if late:
                self._late += 1
            else:
                self._rounds.setdefault(r, []).append(server_t)
        rec: dict[str, Any] = {"node": st.name, "up": True, "round": r, "server_t": server_t}
        if offset is not None:
            rec["clock_offset"] = offset
        if late:
            rec["late"] = True
        self._record(st.name, rec, body_bytes.decode())

    def _record(self, node: str, rec: dict[str, Any], body: str | None) -> None:
        """Queue one sample (written by :meth:`_flush`, once per pass of the loop)."""
        t, wall = self.writer.stamp()
        head = {"t": t, "wall": wall, **rec}
        if body is None:
            self._lines.append(json.dumps(head, default=str))
        else:
            self._lines.append(sample_line(t, wall, node, rec["round"], rec["server_t"], body,
                                           rec.get("clock_offset"), rec.get("late", False)))
        self._latest[node] = (head, body)
        self.counts[node] = self.counts.get(node, 0) + 1

    def _flush(self) -> None:
        if self._lines:
            self.writer.write_lines(self._lines)
            self._lines = []

    def _sample_extra(self, name: str, fn: Callable[[], Any], every: float) -> None:
        while not self._stop.is_set():
            try:
                rec = {"source": name, "stats": fn()}
            except Exception as exc:  # noqa: BLE001 - a dead source is recorded, not fatal
                rec = {"source": name, "error": f"{type(exc).__name__}: {exc}"}
            self.writer.write(rec)
            self._stop.wait(every)


def _check(res: "pq.abc.PGresult", want: "pq.ExecStatus") -> "pq.abc.PGresult":
    if res.status != want:
        raise psycopg.OperationalError((res.error_message or b"").decode(errors="replace").strip()
                                       or f"sample query: {pq.ExecStatus(res.status).name}")
    return res


def _close(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
