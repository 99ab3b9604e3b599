"""Checks of our replication setup written with walsim's pytest fixtures.

No conftest.py and no glue: installing walsim registers its pytest plugin,
which provides ``cluster`` (real PostgreSQL nodes, stopped when the test
ends), ``netd`` (walsim-netd, the fault proxy between nodes) and
``disk_faults`` (the disk fault layer under a node).  See walsim's
docs/pytest.md.
"""

from __future__ import annotations

import psycopg
import pytest

from walsim.core.timeouts import wait_until


def test_standby_behind_a_stalled_link_catches_up(cluster, netd) -> None:
    """Nothing reaches the standby while its link is stalled; after the link
    heals it replays everything the primary wrote."""
    primary = cluster.create_primary("pg1")
    primary.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    link = netd.add_link("pg2", primary.host, primary.port)
    standby = cluster.create_standby("pg2", primary, via=link)
    standby.wait_for_streaming()
    primary.wait_for_catchup(standby, "replay")

    netd.add_fault("wan-down", link="pg2", kind="stall", dir="down")
    primary.execute("INSERT INTO orders SELECT generate_series(1, 1000)")
    target = primary.lsn("insert")
    # the stall holds every byte: the standby cannot replay the insert
    assert standby.scalar("SELECT count(*) FROM orders") == 0

    assert netd.heal("pg2") == 1
    standby.wait_for_replay(target)
    assert standby.scalar("SELECT count(*) FROM orders") == 1000


def test_failing_wal_fsync_panics_and_loses_no_acknowledged_commit(cluster, disk_faults) -> None:
    """A WAL fsync fails with EIO once: PostgreSQL PANICs rather than carry on,
    restarts, and every commit it acknowledged before is there."""
    primary = cluster.create_primary("pg1", durable=True, start=False)
    disk = disk_faults(primary)
    primary.start()
    primary.execute("CREATE TABLE payments (id int PRIMARY KEY)")
    primary.execute("INSERT INTO payments SELECT generate_series(1, 100)")

    since = primary.log_position()
    disk.add("wal-eio", path="pg_wal/0*", ops=["fsync", "fdatasync"], do="errno:EIO", limit=1)
    with pytest.raises(psycopg.Error):
        primary.execute("INSERT INTO payments SELECT generate_series(101, 110)")
    primary.wait_for_log(r"PANIC:  could not (fdatasync|fsync) .*Input/output error", since)

    def accepts_queries() -> bool:
        try:
            return primary.scalar("SELECT count(*) FROM payments WHERE id <= 100") == 100
        except psycopg.Error:
            return False
    wait_until(accepts_queries, what="pg1 back after crash recovery, with its 100 acknowledged rows")
