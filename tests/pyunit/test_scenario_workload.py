"""Ledger outcome classification and observer sample shaping, without a server."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import walsim.run.workloads as workloads
from walsim.core.events import Clock, JsonlWriter, read_jsonl
from walsim.run.observer import percentile, row_members, server_time, shape_sample
from walsim.run.workloads import ID_STRIDE, LedgerWorkload, Session, Target


class FakeCursor:
    def __init__(self, row: Any) -> None:
        self.row = row

    def fetchone(self) -> Any:
        return self.row


class FakeConn:
    """Stands for a psycopg connection: execute returns a row or raises."""

    def __init__(self, result: Any, closed_after: bool = False) -> None:
        self.result = result
        self.closed = False
        self.broken = False
        self.closed_after = closed_after

    def execute(self, query: str, params: Any = None) -> FakeCursor:
        if isinstance(self.result, BaseException):
            if self.closed_after:
                self.closed = True
            raise self.result
        return FakeCursor(self.result)


def _ledger(tmp_path: Path, index: int = 0) -> tuple[LedgerWorkload, Path]:
    path = tmp_path / "ledger.jsonl"
    values = {"clients": 1, "rate": 0.0, "accounts": 4, "connect_timeout": 1.0}
    wl = LedgerWorkload("ledger", values, 42, JsonlWriter(path, Clock()), Clock(), Target("pg1", ""),
                        index=index)
    return wl, path


def session(conn: FakeConn, node: str = "pg1") -> Session:
    return Session(conn, node, 0, node, server="127.0.0.1:5432", system_identifier="7", timeline=1)  # type: ignore[arg-type]


def _error(cls: type[psycopg.Error], message: str) -> psycopg.Error:
    return cls(message)


@pytest.mark.parametrize("result,closed_after,outcome", [
    (("0/3000148", "remote_apply", "000000020000000000000003"), False, "acked"),
    (_error(psycopg.errors.ReadOnlySqlTransaction, "cannot execute INSERT in a read-only transaction"), False, "failed"),
    (_error(psycopg.errors.UniqueViolation, "duplicate key"), False, "failed"),
    (_error(psycopg.errors.AdminShutdown, "terminating connection due to administrator command"), True, "indeterminate"),
    (_error(psycopg.OperationalError, "server closed the connection unexpectedly"), True, "indeterminate"),
    (_error(psycopg.errors.QueryCanceled, "canceling statement due to user request"), False, "indeterminate"),
], ids=["acked", "read-only", "unique", "admin-shutdown", "connection-lost", "cancelled-57014"])
def test_outcome_classification(tmp_path: Path, result: Any, closed_after: bool, outcome: str) -> None:
    wl, path = _ledger(tmp_path)
    wl._one(session(FakeConn(result, closed_after)), client=3, seq=7)
    rec = read_jsonl(path)[0]
    assert rec["outcome"] == outcome
    assert rec["id"] == 3 * ID_STRIDE + 7 and rec["node"] == "pg1"
    if outcome == "acked":
        assert rec["lsn"] == 0x3000148 and wl.acked_count() == 1
        # what the commit itself returned: the synchronous_commit it ran with, its timeline
        assert rec["synchronous_commit"] == "remote_apply" and rec["timeline"] == 2
    else:
        assert rec["error"] and wl.acked_count() == 0


def test_ids_unique_across_ledger_workloads(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, pa = _ledger(tmp_path / "a", index=0)
    b, pb = _ledger(tmp_path / "b", index=1)
    for wl in (a, b):
        wl._one(session(FakeConn(("0/1", "on", None))), client=3, seq=1)
    assert read_jsonl(pa)[0]["id"] != read_jsonl(pb)[0]["id"]


def test_choices_follow_the_seed(tmp_path: Path) -> None:
    wl, path = _ledger(tmp_path)
    for seq in range(1, 20):
        wl._one(session(FakeConn(("0/1", "on", None))), client=0, seq=seq)
    first = [(r["account"], r["amount"]) for r in read_jsonl(path)]
    (tmp_path / "again").mkdir()
    wl2, path2 = _ledger(tmp_path / "again")
    for seq in range(1, 20):
        wl2._one(session(FakeConn(("0/1", "on", None))), client=0, seq=seq)
    assert first == [(r["account"], r["amount"]) for r in read_jsonl(path2)]
    assert len(set(first)) > 5 and all(0 <= a < 4 for a, _ in first)


def test_in_flight_at_stop_is_indeterminate_once(tmp_path: Path) -> None:
    wl, path = _ledger(tmp_path)
    wl._inflight[0] = {"op": "write", "workload": "ledger", "client": 0, "seq": 1, "id": 1, "node": "pg1",
                       "synchronous_commit": "on", "sent_t": 0.0}
    wl._abandon()
    # the frozen client returns later: its record must not be written twice
    wl._finish(0, {"op": "write", "client": 0, "seq": 1, "id": 1, "outcome": "acked", "sent_t": 0.0})
    recs = read_jsonl(path)
    assert [r["outcome"] for r in recs] == ["indeterminate"]


def test_shape_sample() -> None:
    """The server builds the record (LSNs as numbers); the observer adds the
    node, the round and the server's time on the run's axis."""
    primary = shape_sample("pg1", 7, "1000012.250000", {
        "role": "primary", "timeline": 2, "insert_lsn": 0x3000200,
        "write_lsn": 0x3000100, "flush_lsn": 0x3000100, "receive_lsn": None, "replay_lsn": None,
        "replication": [{"application_name": "pg2", "state": "streaming", "sent_lsn": 0x3000100,
                         "write_lsn": 0x3000100, "flush_lsn": 0x3000100, "replay_lsn": 0x3000080,
                         "replay_lag": 0.002}],
        "wal_receiver": None}, start_wall=1000000.0, sent_wall=1000012.2495, received_wall=1000012.2512)
    assert primary["node"] == "pg1" and primary["up"] and primary["round"] == 7
    assert primary["server_t"] == 12.25
    assert primary["role"] == "primary" and primary["timeline"] == 2
    assert primary["insert_lsn"] == 0x3000200 and primary["replication"][0]["replay_lsn"] == 0x3000080
    json.dumps(primary)
    assert "clock_offset" not in primary


def test_a_moved_server_clock_is_not_trusted() -> None:
    """A node whose clock is an hour behind (a clock fault): its sample is placed
    between the query's send and its answer, and the offset is recorded."""
    smp = shape_sample("pg2", 3, "996412.25", {"role": "standby"}, start_wall=1000000.0,
                       sent_wall=1000012.24, received_wall=1000012.26)
    assert smp["server_t"] == pytest.approx(12.25) and smp["clock_offset"] == pytest.approx(-3600.0)
    assert server_time(1000012.2505, 1000012.25, 1000012.251, 1000000.0) == (pytest.approx(12.2505), None)
    t, off = server_time(1000012.31, 1000012.25, 1000012.251, 1000000.0)
    assert t == pytest.approx(12.2505) and off == pytest.approx(0.0595)


def test_row_members_names_columns_and_makes_lsns_integers() -> None:
    """sample_now's row: the columns after the clock by name, pg_lsn as an
    integer (as walsim-sampler writes the rounds' samples), json as loaded."""

    class Col:
        def __init__(self, name: str, type_code: int) -> None:
            self.name, self.type_code = name, type_code

    cols = [Col("server_clock", 25), Col("role", 25), Col("insert_lsn", 3220), Col("replay_lsn", 3220),
            Col("replication", 114)]
    row = ("1000012.25", "primary", "0/3000028", None, [{"application_name": "pg2"}])
    assert row_members(cols, row) == {"role": "primary", "insert_lsn": 0x3000028, "replay_lsn": None,
                                      "replication": [{"application_name": "pg2"}]}


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


class FakeTime:
    """A monotonic clock the test moves; ``wait`` (the stop event's) moves it too."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float | None = None) -> bool:
        self.now += seconds or 0.0
        return False

    def is_set(self) -> bool:
        return False


def test_a_paced_client_makes_up_jitter_but_not_a_stall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a stall (a commit that waited out its statement timeout) the client
    goes on at its rate: a burst of the backlog would let a scenario's next
    "wait commits" end within milliseconds of a failover (frozen-primary thawed
    pg1 while commits were still in flight to it, PostgreSQL 13 in CI)."""
    fake = FakeTime()
    monkeypatch.setattr(workloads, "time", fake)
    wl, _ = _ledger(tmp_path)
    monkeypatch.setattr(wl, "_stop", fake)
    pace = wl._pace(rate=200.0, clients=4)  # one slot per 20 ms for this client

    def burst_after(stall: float) -> int:
        """calls that return at once after ``stall`` seconds without a call"""
        fake.now += stall
        n = 0
        while True:
            before = fake.now
            assert pace()
            if fake.now > before:
                return n
            n += 1

    pace()
    # jitter (50 ms late): the two or three slots missed are made up at once
    assert burst_after(0.05) in (2, 3)
    # a stall of a second, with each length around the old 1 s threshold
    for stall in (0.5, 0.99, 1.01, 3.0):
        assert burst_after(stall) <= workloads.MAX_CATCH_UP / 0.02 + 1, stall


class SocketConn:
    """Stands for a psycopg connection whose socket is one end of a socketpair."""

    def __init__(self) -> None:
        self.mine, self.peer = socket.socketpair()

        class PgConn:
            socket = self.mine.fileno()
        self.pgconn = PgConn()

    def cut(self) -> bool:
        """Whether the watchdog shut the socket down (the peer reads end of file)."""
        self.peer.setblocking(False)
        try:
            return self.peer.recv(1) == b""
        except BlockingIOError:
            return False


def test_the_watchdog_cuts_a_client_off_at_its_deadline_and_spares_one_answered(tmp_path: Path) -> None:
    """The statement timeout is kept by the watchdog sleeping until the earliest
    deadline (a fresh shorter one wakes it): a late cut-off leaves a frozen
    server thawed in between time to acknowledge the commit the client gave up
    on.  Only the lower bound is asserted here; the lateness is measured in
    docs/benchmarks.md."""
    wl, _ = _ledger(tmp_path)
    wl.statement_timeout = 0.3
    slow, quick = SocketConn(), SocketConn()
    wl._stop.clear()
    watchdog = threading.Thread(target=wl._watchdog, daemon=True)
    watchdog.start()
    try:
        started = time.monotonic()
        busy = wl._waiting(0, slow)  # type: ignore[arg-type]
        wl._waiting(1, quick)  # type: ignore[arg-type]
        wl._done_waiting(1)  # answered in time
        while not busy.fired and time.monotonic() - started < 30:
            time.sleep(0.01)
        assert busy.fired and slow.cut()
        assert time.monotonic() - started >= 0.3
        assert not quick.cut()
    finally:
        wl.stop()
        watchdog.join(10)
    assert not watchdog.is_alive(), "stop() did not wake the watchdog"
