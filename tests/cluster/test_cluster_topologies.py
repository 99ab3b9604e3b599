"""Cascading and synchronous replication."""

from __future__ import annotations

import threading

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.timeouts import scaled, wait_until

pytestmark = pytest.mark.pg


def test_cascading_standby_receives_data(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    pg3 = cluster.create_standby("pg3", pg2)          # upstream is a standby
    assert pg3.upstream is pg2
    # pg3 streams from pg2, not from pg1.
    assert [r["application_name"] for r in pg1.replication_status()] == ["pg2"]
    assert [r["application_name"] for r in pg2.replication_status()] == ["pg3"]
    assert pg3.wal_receiver_status()["sender_port"] == pg2.port

    pg1.execute("CREATE TABLE cascade AS SELECT g AS id FROM generate_series(1, 500) g")
    target = pg1.lsn("write")
    pg1.wait_for_catchup(pg2, lsn=target)
    pg2.wait_for_catchup(pg3, lsn=target)
    assert pg3.scalar("SELECT count(*) FROM cascade") == 500
    assert pg3.table_checksum("cascade") == pg1.table_checksum("cascade")


def test_synchronous_commit_waits_for_paused_standby(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    pg3 = cluster.create_standby("pg3", pg1)
    pg1.set_synchronous_standbys("FIRST 1 (pg2)", synchronous_commit="on")
    wait_until(lambda: {r["application_name"]: r["sync_state"] for r in pg1.replication_status()},
               what="pg2 sync and pg3 async", done=lambda v: v == {"pg2": "sync", "pg3": "async"})
    pg1.execute("CREATE TABLE sync_t (id int)")

    pg2.pause()
    assert pg2.status() == "paused"
    conn = pg1.connect()
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    done = threading.Event()
    errors: list[BaseException] = []

    def commit() -> None:
        try:
            conn.execute("INSERT INTO sync_t VALUES (1)")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=commit, daemon=True)
    try:
        worker.start()
        # The commit is waiting for the synchronous standby (progress-based check).
        wait_until(lambda: pg1.scalar("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", [backend]),
                   what="the committing backend to wait on SyncRep", done=lambda v: v == "SyncRep")
        assert not done.is_set()
        # The asynchronous standby has the row already; the commit still has not returned.
        pg3.wait_for_replay(pg1.lsn("write"))
        assert not done.is_set()
    finally:
        pg2.resume()
    assert done.wait(scaled(60)), "commit did not return after the synchronous standby resumed"
    worker.join()
    conn.close()
    assert not errors, errors
    pg1.wait_for_catchup(pg2)
    assert pg2.scalar("SELECT count(*) FROM sync_t") == 1


def test_any_quorum_and_async(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    cluster.create_standby("pg2", pg1)
    cluster.create_standby("pg3", pg1)
    pg1.set_synchronous_standbys("ANY 1 (pg2, pg3)")
    wait_until(lambda: sorted(r["sync_state"] for r in pg1.replication_status()),
               what="both standbys quorum", done=lambda v: v == ["quorum", "quorum"])
    pg1.set_synchronous_standbys(None)
    wait_until(lambda: sorted(r["sync_state"] for r in pg1.replication_status()),
               what="both standbys async", done=lambda v: v == ["async", "async"])
    with pytest.raises(ValueError):
        pg1.set_synchronous_commit("sometimes")
