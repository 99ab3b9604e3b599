"""Ledger outcome classification and observer sample shaping, without a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from walsim.core.events import Clock, JsonlWriter, read_jsonl
from walsim.run.observer import shape_sample
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
    primary = shape_sample("pg1", {
        "in_recovery": False, "insert_lsn": "0/3000200", "write_lsn": "0/3000100", "flush_lsn": "0/3000100",
        "receive_lsn": None, "replay_lsn": None, "primary_tli": 2, "checkpoint_tli": 1,
        "replication": [{"application_name": "pg2", "state": "streaming", "sent_lsn": "0/3000100",
                         "write_lsn": "0/3000100", "flush_lsn": "0/3000100", "replay_lsn": "0/3000080",
                         "replay_lag": 0.002}],
        "wal_receiver": None})
    assert primary["role"] == "primary" and primary["timeline"] == 2
    assert primary["insert_lsn"] == 0x3000200 and primary["replication"][0]["replay_lsn"] == 0x3000080
    standby = shape_sample("pg2", {
        "in_recovery": True, "insert_lsn": None, "write_lsn": None, "flush_lsn": None,
        "receive_lsn": "0/3000100", "replay_lsn": "0/3000080", "primary_tli": None, "checkpoint_tli": 1,
        "replication": [], "wal_receiver": {"status": "streaming", "received_tli": 2, "flushed_lsn": "0/3000100"}})
    assert standby["role"] == "standby" and standby["timeline"] == 2
    assert standby["wal_receiver"]["flushed_lsn"] == 0x3000100
    json.dumps(standby)
