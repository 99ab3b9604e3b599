"""The observer: samples every node about every 100 ms into ``samples.jsonl``.

One thread per node (a frozen or dead node must not stop the others from
being sampled), one connection each, one query per sample returning role,
timeline, the node's WAL positions, its ``pg_stat_replication`` rows and its
``pg_stat_wal_receiver`` row.  A node that does not answer gives a sample with
``up: false`` and the error.  Extra sources (walsim-netd's stats) are sampled
by their own thread at a lower rate.  LSNs are stored as integers.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import psycopg
from psycopg.rows import dict_row

from walsim.core.events import JsonlWriter
from walsim.core.lsn import lsn_or_none

SAMPLE_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_insert_lsn()::text END AS insert_lsn,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS write_lsn,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_flush_lsn()::text END AS flush_lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       CASE WHEN NOT pg_is_in_recovery()
            THEN ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int
       END AS primary_tli,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
       (SELECT coalesce(json_agg(json_build_object(
            'application_name', application_name, 'state', state, 'sync_state', sync_state,
            'sent_lsn', sent_lsn::text, 'write_lsn', write_lsn::text, 'flush_lsn', flush_lsn::text,
            'replay_lsn', replay_lsn::text,
            'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),
            'replay_lag', extract(epoch FROM replay_lag)) ORDER BY application_name), '[]'::json)
          FROM pg_stat_replication) AS replication,
       (SELECT json_build_object('status', status, 'received_tli', received_tli,
            'flushed_lsn', flushed_lsn::text, 'written_lsn', written_lsn::text,
            'latest_end_lsn', latest_end_lsn::text, 'sender_host', sender_host,
            'sender_port', sender_port, 'slot_name', slot_name)
          FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS wal_receiver
"""

_LSN_KEYS = ("sent_lsn", "write_lsn", "flush_lsn", "replay_lsn", "written_lsn", "flushed_lsn",
             "latest_end_lsn")


def shape_sample(node: str, row: dict[str, Any]) -> dict[str, Any]:
    """The samples.jsonl record of one query result."""
    in_rec = bool(row["in_recovery"])
    wr = row.get("wal_receiver")
    timeline = row["primary_tli"] if not in_rec else ((wr or {}).get("received_tli") or row["checkpoint_tli"])
    repl = []
    for r in row.get("replication") or []:
        r = dict(r)
        for k in _LSN_KEYS:
            if k in r:
                r[k] = lsn_or_none(r[k])
        repl.append(r)
    if wr:
        wr = dict(wr)
        for k in _LSN_KEYS:
            if k in wr:
                wr[k] = lsn_or_none(wr[k])
    return {
        "node": node, "up": True, "role": "standby" if in_rec else "primary",
        "timeline": timeline,
        "insert_lsn": lsn_or_none(row["insert_lsn"]), "write_lsn": lsn_or_none(row["write_lsn"]),
        "flush_lsn": lsn_or_none(row["flush_lsn"]), "receive_lsn": lsn_or_none(row["receive_lsn"]),
        "replay_lsn": lsn_or_none(row["replay_lsn"]),
        "replication": repl, "wal_receiver": wr,
    }


class Observer:
    """Samples nodes until stopped.  ``conninfo_of(name)`` gives each node's
    current conninfo (nodes can move ports when restarted)."""

    def __init__(self, nodes: list[str], conninfo_of: Callable[[str], str], writer: JsonlWriter,
                 interval: float = 0.1,
                 extra: dict[str, tuple[Callable[[], Any], float]] | None = None) -> None:
        self.nodes = nodes
        self.conninfo_of = conninfo_of
        self.writer = writer
        self.interval = interval
        self.extra = extra or {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {n: 0 for n in nodes}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in self.nodes:
            t = threading.Thread(target=self._sample_node, args=(n,), daemon=True, name=f"walsim-observe-{n}")
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

    def sample_now(self, node: str) -> dict[str, Any]:
        """One sample taken synchronously (used at the end of a run)."""
        try:
            with psycopg.connect(self.conninfo_of(node), autocommit=True, connect_timeout=2,
                                 row_factory=dict_row, application_name="walsim-observer") as conn:
                row = conn.execute(SAMPLE_SQL).fetchone()
            rec = shape_sample(node, row)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            rec = {"node": node, "up": False, "error": _first_line(exc)}
        return self.writer.write(rec)

    def _sample_node(self, node: str) -> None:
        conn: psycopg.Connection[Any] | None = None
        nxt = time.monotonic()
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo_of(node), autocommit=True, connect_timeout=1,
                                           row_factory=dict_row, application_name="walsim-observer")
                row = conn.execute(SAMPLE_SQL).fetchone()
                rec = shape_sample(node, row)  # type: ignore[arg-type]
            except (psycopg.Error, OSError) as exc:
                rec = {"node": node, "up": False, "error": _first_line(exc)}
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                    conn = None
            except Exception as exc:  # noqa: BLE001 - e.g. the node object changed under us
                rec = {"node": node, "up": False, "error": f"{type(exc).__name__}: {exc}"}
            self.latest[node] = self.writer.write(rec)
            self.counts[node] = self.counts.get(node, 0) + 1
            nxt += self.interval
            delay = nxt - time.monotonic()
            if delay < 0:
                nxt = time.monotonic()
                delay = 0.0
            self._stop.wait(delay)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

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
