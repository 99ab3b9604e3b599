"""libwalsim-disk.so under real PostgreSQL 15 nodes.

Each test loads the disk layer into one node (walsim.sim.disk.DiskFaults), puts
a fault under it, and checks what PostgreSQL does and that it recovers once
the fault is healed.  Tests about durability run with fsync on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import psycopg
import pytest

from walsim.pg.cluster import Cluster, wait_all_streaming
from walsim.sim.disk import DiskFaults
from walsim.core.lsn import Lsn
from walsim.pg.node import Node
from walsim.core.timeouts import scaled, wait_until

pytestmark = pytest.mark.pg

CORRUPT_WAL = (r"incorrect resource manager data checksum|invalid record length|invalid magic number|"
               r"invalid info bits|invalid xl_prev|record with incorrect prev-link|"
               r"invalid contrecord length|invalid resource manager ID|unexpected pageaddr|"
               r"there is no contrecord flag|invalid record offset")


def insert_rows(node: Node, first: int, last: int) -> None:
    node.execute("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(%s::int, %s::int) g",
                 [first, last])


def wait_connectable(node: Node, timeout: float = 60) -> None:
    def probe() -> bool:
        try:
            return node.scalar("SELECT 1") == 1
        except psycopg.Error:
            return False

    wait_until(probe, what=f"{node.name} to accept queries again", timeout=timeout,
               logs=[node.log_file])


def test_wal_fsync_eio_panics_then_recovers(cluster: Cluster) -> None:
    """fsync of a WAL segment fails with EIO: PostgreSQL PANICs (it never
    retries a failed fsync); once the disk is healed it recovers, and every
    commit it acknowledged is there."""
    pg1 = cluster.create_primary("pg1", durable=True, start=False)
    disk = DiskFaults.load(pg1)
    pg1.start()
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    insert_rows(pg1, 1, 100)

    since = pg1.log_position()
    # limit=1: one failure.  A rule still failing while crash recovery
    # flushes would PANIC the startup process, and the postmaster gives up.
    disk.add("wal-eio", path="pg_wal/0*", ops=["fsync", "fdatasync"], do="errno:EIO", limit=1)
    with pytest.raises(psycopg.Error):
        # The commit's WAL flush fails: the backend (or the WAL writer) PANICs
        # and the postmaster ends every session.
        insert_rows(pg1, 101, 110)
    match = pg1.wait_for_log(r"PANIC:  could not (fdatasync|fsync) (file|log file) .*"
                             r"Input/output error", since)
    fired = disk.trace()
    assert fired and fired[0]["rule"] == "wal-eio" and fired[0]["effect"] == "errno:EIO"
    assert fired[0]["path"].startswith("pg_wal/0") and fired[0]["op"] in ("fsync", "fdatasync")

    disk.delete("wal-eio")
    # Crash recovery (restart_after_crash) now succeeds.
    wait_connectable(pg1)
    assert pg1.scalar("SELECT count(*) FROM t WHERE id <= 100") == 100
    # The failed transaction was never acknowledged: either outcome is allowed,
    # but not half of it.
    assert pg1.scalar("SELECT count(*) FROM t WHERE id > 100") in (0, 10)
    assert "PANIC" in match.group(0)


def test_walsender_read_flip_is_detected_and_healed(cluster: Cluster) -> None:
    """A bit flipped in WAL the primary's walsender reads reaches the standby
    as a corrupt record: the standby detects it and does not apply it; after
    the heal it fetches clean WAL and converges."""
    pg1 = cluster.create_primary("pg1", start=False)
    disk = DiskFaults.load(pg1, seed=5)
    pg1.start()
    cluster.create_replication_role(pg1)
    pg2 = cluster.create_standby("pg2", pg1)
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    insert_rows(pg1, 1, 1000)
    pg1.wait_for_catchup(pg2)

    since = pg2.log_position()
    # The first byte a walsender read returns starts a record or a page
    # header (it resumes at the last flush point or a page boundary), so
    # flipping its top bit always breaks a checked field.
    disk.add("flip", path="pg_wal/0*", ops=["read"], do="flip:0.7", limit=1)
    insert_rows(pg1, 1001, 2000)
    wait_until(lambda: disk.stats("flip").fired, what="the walsender's read to be corrupted",
               logs=[pg1.log_file])
    bad = pg2.wait_for_log(CORRUPT_WAL, since)
    # Not applied: replay stays before the corrupt record.
    bad_lsn = re.search(r"at ([0-9A-F]+/[0-9A-F]+)", pg2.log_since(since)[bad.start():])
    assert bad_lsn is not None
    replayed = pg2.lsn("replay")
    assert replayed is not None and replayed <= Lsn.parse(bad_lsn.group(1))
    disk.delete("flip")

    # PostgreSQL 15 keeps re-reading the corrupt copy it already flushed to
    # its pg_wal (the WAL receiver's flush position is past it); a restart
    # makes it stream that segment again, clean this time.
    pg2.restart()
    insert_rows(pg1, 2001, 2100)
    pg1.wait_for_catchup(pg2, "replay")
    assert pg2.table_checksum("t") == pg1.table_checksum("t")
    assert pg2.scalar("SELECT count(*) FROM t") == 2100


def test_standby_enospc_on_wal_write_then_catches_up(cluster: Cluster) -> None:
    """ENOSPC on the standby's pg_wal writes: the WAL receiver cannot store
    what it receives and says so; after the heal the standby catches up."""
    pg1 = cluster.create_primary("pg1")
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    pg2 = cluster.create_standby("pg2", pg1, start=False)
    disk = DiskFaults.load(pg2)
    pg2.start()
    wait_all_streaming(pg1, [pg2])
    insert_rows(pg1, 1, 100)
    pg1.wait_for_catchup(pg2)

    since = pg2.log_position()
    disk.add("full", path="pg_wal/0*", ops=["write"], do="errno:ENOSPC")
    insert_rows(pg1, 101, 1100)
    pg2.wait_for_log(r"could not write to log segment .*No space left on device", since)
    target = pg1.lsn("write")
    assert target is not None
    assert disk.stats("full").fired >= 1
    # While the disk is full the standby never reports the new WAL as flushed.
    row = [r for r in pg1.replication_status() if r["application_name"] == "pg2"]
    assert not row or row[0]["flush_lsn"] is None or str(row[0]["flush_lsn"]) != str(target)

    disk.delete("full")
    wait_connectable(pg2)
    pg1.wait_for_catchup(pg2, "replay", target)
    assert pg2.table_checksum("t") == pg1.table_checksum("t")


class Committer(threading.Thread):
    """Inserts one row per transaction and records which commits the
    primary acknowledged; the commit in flight when the connection dies is
    indeterminate."""

    def __init__(self, node: Node) -> None:
        super().__init__(daemon=True)
        self.conn = node.connect()
        self.acked: list[int] = []
        self.indeterminate: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                self.conn.execute("INSERT INTO t VALUES (%s, 'x')", [n])
                self.acked.append(n)
        except psycopg.Error:
            self.indeterminate = n
        finally:
            self.conn.close()


def wait_for(cond: Callable[[], bool], what: str, node: Node, timeout: float = 60) -> None:
    wait_until(cond, what=what, timeout=timeout, logs=[node.log_file])


@pytest.mark.parametrize("level", ["remote_write", "on"])
def test_standby_power_cut_loses_only_what_remote_write_allows(cluster: Cluster, level: str) -> None:
    """A power cut of the synchronous standby while it is flushing WAL.

    With ``synchronous_commit = remote_write`` the primary acknowledges a
    commit once the standby has *written* it, so commits acknowledged during
    the standby's flush are lost from the standby's disk; with ``on``
    (remote flush) none are.  The standby's WAL flush is slowed down (a delay
    rule) so that the cut lands inside a flush, and the standby's files are
    rolled back to their last fsync by the undo journal."""
    pg1 = cluster.create_primary("pg1", durable=True)
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    pg2 = cluster.create_standby("pg2", pg1, durable=True, start=False)
    disk = DiskFaults.load(pg2, journal=True)
    pg2.start()
    wait_all_streaming(pg1, [pg2])
    pg1.set_synchronous_standbys("*", synchronous_commit=level)
    wait_for(lambda: [r["sync_state"] for r in pg1.replication_status()] == ["sync"],
             "pg2 to be the synchronous standby", pg1)

    delay_us = int(scaled(4.0) * 1_000_000)
    disk.add("slow-flush", path="pg_wal/0*", ops=["fdatasync", "fsync"], do=f"delay:{delay_us}")
    committer = Committer(pg1)
    committer.start()
    try:
        wait_for(lambda: len(committer.acked) >= 2, "two acknowledged commits", pg1)
        receiver = pg2.pid("walreceiver")

        def receiver_flushes() -> int:
            return sum(1 for f in disk.trace() if f["pid"] == receiver)

        fires = receiver_flushes()
        wait_for(lambda: receiver_flushes() > fires, "a WAL receiver flush to start", pg2)
        if level == "remote_write":
            # A commit acknowledged now was written, not flushed: the flush
            # that would make it durable sleeps in the delay.
            acked = len(committer.acked)
            wait_for(lambda: len(committer.acked) > acked, "a commit acknowledged on write", pg1)
        report = disk.power_cut()
    finally:
        committer.stop.set()
        pg1.stop("fast")
        committer.join(scaled(30))
    assert not committer.is_alive()
    acked = set(committer.acked)
    assert acked

    disk.clear()
    pg2.start()
    present = {r[0] for r in pg2.query("SELECT id FROM t")}
    missing = sorted(acked - present)
    print(f"synchronous_commit={level}: {len(acked)} acknowledged commits, {len(missing)} missing "
          f"on the standby after the power cut ({report.text})")
    if level == "on":
        assert missing == [], f"commits acknowledged under 'on' lost: {missing}"
    else:
        assert missing, "remote_write: the commit acknowledged during the flush survived"
        assert report.writes > 0
        # Only the newest commits can be missing, never one before a present one.
        assert min(missing) > max(present - set(missing), default=0)


def test_lying_wal_fsync_then_power_cut_loses_acknowledged_commits(cluster: Cluster) -> None:
    """A disk that acknowledges WAL fsyncs without doing them: PostgreSQL
    acknowledges the commits, and a power cut takes them away (the undo
    journal rolls the WAL back to the last real sync).  Commits made before
    the disk started lying survive."""
    pg1 = cluster.create_primary("pg1", durable=True, start=False)
    disk = DiskFaults.load(pg1, journal=True)
    pg1.start()
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    for i in range(1, 21):
        insert_rows(pg1, i, i)
    disk.add("liar", path="pg_wal/0*", ops=["sync"], do="lie")
    for i in range(21, 31):
        insert_rows(pg1, i, i)                  # each one acknowledged
    assert disk.stats("liar").fired >= 10
    report = disk.power_cut()
    assert report.writes > 0
    disk.clear()
    pg1.start()
    present = {r[0] for r in pg1.query("SELECT id FROM t")}
    assert set(range(1, 21)) <= present
    assert not present & set(range(21, 31)), f"survived a lying fsync: {sorted(present)}"


@pytest.mark.parametrize("strict", [True, False], ids=["posix", "ext4"])
def test_directory_model_and_a_checkpointed_table(cluster: Cluster, strict: bool) -> None:
    """Under the POSIX crash model (only a directory fsync makes a new entry
    durable) PostgreSQL 15 loses the file of a table created and
    checkpointed before the cut: it fsyncs the file, never its directory,
    and redo starts after the checkpoint that would have recreated it.  Under
    the default model (ext4/xfs: the file's own fsync keeps its entry) the
    table survives."""
    pg1 = cluster.create_primary("pg1", durable=True, start=False)
    disk = DiskFaults.load(pg1, journal=True, strict_dirs=strict)
    pg1.start()
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    insert_rows(pg1, 1, 100)
    relpath = pg1.scalar("SELECT pg_relation_filepath('t')")
    pg1.execute("CHECKPOINT")
    report = disk.power_cut()
    pg1.start()
    if strict:
        assert report.entries > 0
        assert not (pg1.data_dir / relpath).exists()
        with pytest.raises(psycopg.errors.UndefinedFile, match="could not open file"):
            pg1.scalar("SELECT count(*) FROM t")
    else:
        assert pg1.scalar("SELECT count(*) FROM t") == 100


def test_missing_region_passes_through_and_says_so_once(cluster: Cluster) -> None:
    """A node whose region file is gone runs normally; its log says once
    that the layer passes everything through."""
    pg1 = cluster.create_primary("pg1", start=False)
    disk = DiskFaults.load(pg1)
    disk.region.unlink()
    pg1.start()
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    insert_rows(pg1, 1, 100)
    pg1.execute("CHECKPOINT")
    assert pg1.scalar("SELECT count(*) FROM t") == 100
    log = pg1.log_file.read_text()
    assert log.count("walsim-disk: region") == 1
    assert f"{disk.region}" in log and "passing every call through" in log
