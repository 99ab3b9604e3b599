"""Failover the way an operator does it: kill -9 the primary, promote a standby,
re-point the other standby, bring the old primary back with pg_rewind."""

from __future__ import annotations

import signal

import pytest

from walsim.pg import procs
from walsim.pg.cluster import Cluster

pytestmark = pytest.mark.pg


@pytest.mark.parametrize("method", ["pg_ctl", "function", "trigger_file"])
def test_failover_repoint_and_rewind(cluster: Cluster, method: str) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    pg3 = cluster.create_standby("pg3", pg1, slot=True)
    pg1.execute("CREATE TABLE ledger (id int PRIMARY KEY, who text)")
    pg1.execute("INSERT INTO ledger SELECT g, 'before' FROM generate_series(1, 100) g")
    pg1.wait_for_catchup(pg2)
    pg1.wait_for_catchup(pg3)
    assert pg1.timeline() == 1

    old_pm = pg1.postmaster_pid()
    assert old_pm is not None
    killed = pg1.kill(signal.SIGKILL)
    assert killed == [old_pm]
    assert not procs.alive(old_pm)
    assert pg1.status() == "crashed"

    new_tli = pg2.promote(method=method)
    assert new_tli == 2
    assert not pg2.in_recovery()
    assert pg2.timeline() == 2

    pg3.repoint(pg2)                  # also creates pg3's slot on pg2
    pg2.wait_for_catchup(pg3)
    assert pg2.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'pg3'") == [(True,)]
    pg2.execute("INSERT INTO ledger SELECT g, 'after' FROM generate_series(101, 150) g")
    pg2.wait_for_catchup(pg3)
    assert pg3.timeline() == 2
    assert pg3.wal_receiver_status()["received_tli"] == 2
    assert pg3.scalar("SELECT count(*) FROM ledger") == 150

    # The old primary rejoins as a standby of the new one.
    pg1.demote(pg2)
    pg2.wait_for_catchup(pg1)
    assert pg1.in_recovery()
    assert pg1.timeline() == 2
    sums = {n.name: n.table_checksum("ledger") for n in (pg1, pg2, pg3)}
    assert len(set(sums.values())) == 1, sums
    assert sums["pg2"].endswith(":150")
    with open(pg1.log_file) as f:
        assert "pg_rewind" in f.read()
