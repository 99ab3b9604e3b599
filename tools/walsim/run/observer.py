"""The observer: samples every node on shared ticks into ``samples.jsonl``.

Every node is sampled once per *round*: round ``r`` is due at the observer's
start plus ``r`` intervals (100 ms by default, down to 10 ms).  The rounds
are run by ``walsim-sampler`` (ref/sampler), a C program this class starts
and feeds: at the round's tick it sends the round's query to every node at
once (libpq's non-blocking interface, one connection per node) and collects
the answers together just after, so the samples of one round are one
cluster-wide moment as nearly as the machine allows, and a frozen or dead
node never holds up the others.  A node whose previous query has not
returned yet (frozen) is skipped in the rounds it misses; a node that cannot
be reached gives a sample with ``up: false`` and the error when it is first
missed and then once per detail round, and is reconnected in the background.
(The rounds were run in Python until issue 18: at a 10 ms tick the Python
loop alone cost more than the whole observer may; docs/benchmarks.md.)

This module owns *what* is sampled: the query is prepared once per
connection and returns the server's own clock (``clock_timestamp()``) at the
moment of the sample, then one column per member of the record, which the
sampler writes by type (LSNs as integers).  Each record carries ``round``
and ``server_t`` (the server's time of the sample on the run's time axis),
and ``late: true`` when the sample was taken more than a tick after its
round's tick (a frozen or overloaded node); the verdicts that compare nodes
pair the samples of one round (late ones by time instead) and place them by
``server_t``.
Every round samples the positions (role, WAL insert/write/flush,
receive/replay); the timeline, the ``pg_stat_replication`` rows and the
``pg_stat_wal_receiver`` row come every ``detail_every`` rounds (by default
as often as every 100 ms).  The sampler's lines are read in batches
(every ``READ_EVERY`` seconds) and appended to ``samples.jsonl`` unparsed;
only their head (node, round, server time) is read, for :attr:`counts`,
:attr:`latest` and :meth:`Observer.skew` (recorded by the engine in
``events.jsonl`` as ``observer_stats``).  Extra sources (walsim-netd's
stats) are sampled by their own thread at a lower rate.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import select
import subprocess
import threading
import time
from typing import IO, Any, Callable, Sequence

import psycopg

from walsim.core.errors import HarnessError
from walsim.core.events import JsonlWriter
from walsim.core.lsn import parse_lsn
from walsim.core.paths import find_program, not_found, program_candidates
from walsim.core.supervise import register_process

#: the shortest interval the observer accepts (docs/benchmarks.md: its cost at 10 ms)
MIN_INTERVAL = 0.01
#: how far outside [sent, answer read] a server's clock may be before it is not trusted (s)
CLOCK_TOLERANCE = 0.002
#: how often the pg_stat_replication / pg_stat_wal_receiver rows are sampled, at least
DETAIL_INTERVAL = 0.1
#: how often the sampler's lines are read and written out, and conninfos checked (s)
READ_EVERY = 0.2
#: the sampler's output pipe: seconds of samples it holds if the reader is held up
PIPE_SIZE = 1 << 20

# One row: the server's clock, then one column per member of the record,
# named as the member.  walsim-sampler writes each column by its type (an
# LSN as an integer, json as it came: ref/sampler/line.h); plain columns
# cost the server less than a JSON object built per sample, and that is
# most of what sampling costs at a 10 ms tick (docs/benchmarks.md), and
# for the same reason the timeline comes with the detail rounds only (it
# changes at a promotion; a third of the positions query's cost).  The
# timeline of a standby from its WAL receiver, else from its last
# checkpoint (pg_control_checkpoint() reads a file: only evaluated when
# needed).
_POSITIONS = """
  CASE WHEN rec THEN 'standby' ELSE 'primary' END AS role,
  CASE WHEN NOT rec THEN pg_current_wal_insert_lsn() END AS insert_lsn,
  CASE WHEN NOT rec THEN pg_current_wal_lsn() END AS write_lsn,
  CASE WHEN NOT rec THEN pg_current_wal_flush_lsn() END AS flush_lsn,
  pg_last_wal_receive_lsn() AS receive_lsn,
  pg_last_wal_replay_lsn() AS replay_lsn"""

_DETAIL = """,
  CASE WHEN NOT rec
       THEN ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int
       ELSE coalesce((SELECT received_tli FROM pg_stat_get_wal_receiver() WHERE pid IS NOT NULL),
                     (SELECT timeline_id FROM pg_control_checkpoint())) END AS timeline,
  (SELECT coalesce(json_agg(json_build_object(
        'application_name', application_name, 'state', state, 'sync_state', sync_state,
        'sent_lsn', sent_lsn - '0/0', 'write_lsn', write_lsn - '0/0', 'flush_lsn', flush_lsn - '0/0',
        'replay_lsn', replay_lsn - '0/0',
        'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),
        'replay_lag', extract(epoch FROM replay_lag)) ORDER BY application_name), '[]'::json)
      FROM pg_stat_replication) AS replication,
  (SELECT json_build_object('status', status, 'received_tli', received_tli,
        'flushed_lsn', flushed_lsn - '0/0', 'written_lsn', written_lsn - '0/0',
        'latest_end_lsn', latest_end_lsn - '0/0', 'sender_host', sender_host,
        'sender_port', sender_port, 'slot_name', slot_name)
      FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS wal_receiver"""


def _sample_sql(detail: bool) -> str:
    return ("SELECT date_part('epoch', clock_timestamp()) AS server_clock,"
            + _POSITIONS + (_DETAIL if detail else "") + "\nFROM pg_is_in_recovery() AS rec\n")


#: the full sample (positions and the replication rows)
SAMPLE_SQL = _sample_sql(True)
#: the positions only
POSITIONS_SQL = _sample_sql(False)

# The head of a sampler line (ref/sampler/line.h): node, up, round, server time, late.
_HEAD = re.compile(r'\{"t": [^,]+, "wall": [^,]+, "node": "((?:[^"\\]|\\.)*)", "up": (true|false), '
                   r'"round": (-?\d+)(?:, "server_t": ([-+0-9.eE]+)(?:, "clock_offset": [-+0-9.eE]+)?'
                   r'(, "late": true)?)?')


#: pg_lsn's type OID: sampled LSNs are written as integers
PG_LSN_OID = 3220


def row_members(columns: Sequence[Any], row: Sequence[Any]) -> dict[str, Any]:
    """The members of a sample from a psycopg row of the sample query and its
    ``cursor.description``: every column after the clock by name, LSNs as
    integers (what walsim-sampler writes for the rounds' samples)."""
    out: dict[str, Any] = {}
    for col, value in zip(columns[1:], row[1:]):
        if col.type_code == PG_LSN_OID and value is not None:
            value = parse_lsn(str(value))
        out[col.name] = value
    return out


def shape_sample(node: str, round_id: int, server_wall: str, members: dict[str, Any], start_wall: float,
                 sent_wall: float, received_wall: float) -> dict[str, Any]:
    """The samples.jsonl record of one query result (the server's clock and
    the other columns by name, as :func:`row_members` makes them), sent and
    answered at the given Unix times; ``start_wall`` is the run's start in
    Unix time (the origin of ``server_t``)."""
    server_t, offset = server_time(float(server_wall), sent_wall, received_wall, start_wall)
    rec: dict[str, Any] = {"node": node, "up": True, "round": round_id, "server_t": server_t}
    if offset is not None:
        rec["clock_offset"] = offset
    rec.update(members)
    return rec


def server_time(server_wall: float, sent_wall: float, received_wall: float,
                start_wall: float) -> tuple[float, float | None]:
    """The time of a sample on the run's axis, and the server clock's offset
    when it cannot be trusted.

    The servers run on this machine, so their clock is the observer's: the
    server's ``clock_timestamp()`` must lie between the moment the query was
    sent and the moment its answer was read.  Outside that bracket (beyond
    ``CLOCK_TOLERANCE``) the node's clock is moved (a ``clock`` fault,
    libfaketime): the sample is placed at the middle of the bracket and the
    offset (server minus that middle, in seconds) is returned.  (walsim-sampler
    places the rounds' samples the same way, ref/sampler/line.c, with the same
    tolerance; this one is for :meth:`Observer.sample_now`.)"""
    if sent_wall - CLOCK_TOLERANCE <= server_wall <= received_wall + CLOCK_TOLERANCE:
        return round(server_wall - start_wall, 6), None
    mid = (sent_wall + received_wall) / 2
    return round(mid - start_wall, 6), round(server_wall - mid, 6)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


class Observer:
    """Samples nodes until stopped.  ``conninfo_of(name)`` gives each node's
    current conninfo (nodes can move ports when restarted: it is asked again
    every ``READ_EVERY`` seconds and a change is passed on to the sampler)."""

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
        #: node -> its last line, as written (parsed on demand by :attr:`latest`)
        self._latest: dict[str, str] = {}
        self.counts: dict[str, int] = {n: 0 for n in nodes}
        # round -> server_t of each node that answered in it (for skew())
        self._rounds: dict[int, list[float]] = {}
        self._late = 0  # samples taken more than a tick after their round's tick
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._sent_conninfo: dict[str, str] = {}
        self._partial = b""
        #: why the sampler ended early, if it did (also written to samples.jsonl)
        self.error: str | None = None

    @property
    def sampler_pid(self) -> int | None:
        """The pid of the running ``walsim-sampler`` (for measuring its cost)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, connect_timeout: float = 2.0) -> None:
        """Start the sampler, which connects to every node (at most
        ``connect_timeout`` seconds: a node that is down is sampled as down),
        then starts the rounds."""
        program = find_program("walsim-sampler")
        if program is None:
            raise HarnessError(not_found("walsim-sampler", program_candidates("walsim-sampler")))
        clock = self.writer.clock
        argv = [str(program), "--interval", repr(self.interval), "--detail-every", str(self.detail_every),
                "--start-mono", repr(clock.start_mono), "--start-wall", repr(clock.start_wall),
                "--positions-sql", POSITIONS_SQL, "--detail-sql", SAMPLE_SQL,
                "--start-timeout", repr(connect_timeout)]
        for n in self.nodes:
            argv += ["--node", n]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._proc = proc
        # its input ends when this process does, whatever kills it: the sampler then exits
        register_process(proc.pid, "walsim-sampler (the observer)")
        assert proc.stdin is not None and proc.stdout is not None
        try:
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default 64 kB holds a quarter of a second at 10 ms: enough, if less slack
        os.set_blocking(proc.stdout.fileno(), False)
        self._send_conninfos()
        self._tell("start")
        self._await_ready(proc.stdout, connect_timeout + 5.0)
        t = threading.Thread(target=self._read_loop, daemon=True, name="walsim-observe")
        self._threads.append(t)
        t.start()
        for name, (fn, every) in self.extra.items():
            t = threading.Thread(target=self._sample_extra, args=(name, fn, every), daemon=True,
                                 name=f"walsim-observe-{name}")
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 3.0) -> None:
        """End the rounds: the sampler's input is closed, what it wrote is read
        to its end, and it is killed if it is not gone within ``timeout``."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        if proc is not None:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for f in (proc.stdout, proc.stderr):
                if f is not None:
                    f.close()

    @property
    def latest(self) -> dict[str, dict[str, Any]]:
        """The last sample of each node, as written (parsed on demand: the
        progress line asks once a second, the samples come hundreds a second)."""
        return {node: json.loads(line) for node, line in list(self._latest.items())}

    def skew(self) -> dict[str, Any]:
        """How far apart in server time the samples of one round were: over
        the rounds in which every node answered within the tick, the spread
        (latest minus earliest ``server_t``) as p50, p99 and max in
        milliseconds; ``late``: samples taken more than a tick after theirs."""
        full = [ts for ts in list(self._rounds.values()) if len(ts) == len(self.nodes)]
        spreads = [(max(ts) - min(ts)) * 1000 for ts in full]
        out: dict[str, Any] = {"interval_ms": round(self.interval * 1000, 3), "rounds": len(full),
                               "late": self._late}
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
                cur = conn.execute(SAMPLE_SQL)
                row = cur.fetchone()
            assert row is not None and cur.description is not None
            rec = shape_sample(node, -1, row[0], row_members(cur.description, row),
                               self.writer.clock.start_wall, sent, time.time())
            del rec["round"]
        except psycopg.Error as exc:
            rec = {"node": node, "up": False, "error": _first_line(exc)}
        return self.writer.write(rec)

    # ------------------------------------------------------------ the sampler
    def _tell(self, line: str) -> None:
        """One line to the sampler's input (nothing if it is gone: its end is noticed by the reader)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.closed:
            return
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def _send_conninfos(self) -> None:
        """Tell the sampler where each node is, when that changed."""
        for n in self.nodes:
            try:
                conninfo = self.conninfo_of(n)
            except Exception:  # noqa: BLE001 - a node not there yet: sampled as down until it is
                continue
            if self._sent_conninfo.get(n) != conninfo and "\n" not in conninfo:
                self._sent_conninfo[n] = conninfo
                self._tell(f"conninfo {n} {conninfo}")

    def _await_ready(self, out: IO[bytes], timeout: float) -> None:
        """Wait for the sampler's "ready" (its first connections made or given up)."""
        fd = out.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise HarnessError(f"walsim-sampler did not start within {timeout:.0f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.stop()
                raise HarnessError(f"walsim-sampler failed to start: {self._stderr_text()}")
            buf += chunk
        first, _, rest = buf.partition(b"\n")
        if first != b"ready":
            self.stop()
            raise HarnessError(f"walsim-sampler said {first[:200]!r} instead of ready")
        self._partial = rest

    def _stderr_text(self) -> str:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return "no message"
        try:
            proc.wait(1.0)
            text = proc.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            text = ""
        return f"{text or 'no message'} (exit status {proc.returncode})"

    def _read_loop(self) -> None:
        """Every ``READ_EVERY`` seconds: what the sampler wrote, out to the
        file; new conninfos in.  Ends at the sampler's end of output."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            eof = self._drain(fd)
            if eof:
                break
            if self._stop.is_set():
                # input closed: the sampler writes what it has and exits; read until then
                select.select([fd], [], [], READ_EVERY)
                continue
            self._send_conninfos()
            self._stop.wait(READ_EVERY)
        if not self._stop.is_set():
            self.error = f"walsim-sampler ended during the run: {self._stderr_text()}"
            self.writer.write({"source": "observer", "error": self.error})

    def _drain(self, fd: int) -> bool:
        """Read what is there and write its whole lines; True at end of output."""
        chunks = [self._partial]
        eof = False
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            lines = data[:cut].decode(errors="replace").splitlines()
            for line in lines:
                self._note(line)
            self.writer.write_lines(lines)
        return eof

    def _note(self, line: str) -> None:
        """Count one sampler line and keep what skew() and latest need."""
        m = _HEAD.match(line)
        if m is None:
            return
        node = m.group(1)
        self._latest[node] = line
        self.counts[node] = self.counts.get(node, 0) + 1
        if m.group(2) == "true" and m.group(4) is not None:
            if m.group(5):
                self._late += 1
            else:
                self._rounds.setdefault(int(m.group(3)), []).append(float(m.group(4)))

    def _sample_extra(self, name: str, fn: Callable[[], Any], every: float) -> None:
        while not self._stop.is_set():
            try:
                rec = {"source": name, "stats": fn()}
            except Exception as exc:  # noqa: BLE001 - a dead source is recorded, not fatal
                rec = {"source": name, "error": f"{type(exc).__name__}: {exc}"}
            self.writer.write(rec)
            self._stop.wait(every)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
