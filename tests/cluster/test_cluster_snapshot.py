"""Clusters copied from a snapshot image: standbys that stream, replay and pass the same checks as
standbys made by pg_basebackup; fresh passwords per copy; the image cache (keyed, owner-only);
walsim-cli cluster up --snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from walsim.core.timeouts import scaled, wait_until
from walsim.pg.cluster import Cluster
from walsim.pg import snapshot
from walsim.pg.snapshot import SnapshotError, cache_root, private_dir

pytestmark = pytest.mark.pg
CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"


@pytest.mark.parametrize("snapshot", [False, True], ids=["pg_basebackup", "snapshot"])
def test_standbys_stream_replay_promote_and_cascade(cluster_factory, snapshot: bool) -> None:
    c: Cluster = cluster_factory(snapshot=snapshot)
    pg1 = c.create_primary("pg1")
    pg2 = c.create_standby("pg2", pg1, slot=True)
    pg3 = c.create_standby("pg3", pg2)  # cascading
    assert (pg1.image is not None, pg2.image is not None, pg3.image is not None) == (snapshot,) * 3
    assert [(r["application_name"], r["state"]) for r in pg1.replication_status()] == [("pg2", "streaming")]
    assert [(r["application_name"], r["state"]) for r in pg2.replication_status()] == [("pg3", "streaming")]
    assert pg2.wal_receiver_status()["sender_port"] == pg1.port
    assert pg3.wal_receiver_status()["sender_port"] == pg2.port
    assert pg1.scalar("SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'") is True
    assert pg2.in_recovery() and pg3.in_recovery() and pg2.timeline() == 1

    pg1.execute("CREATE TABLE snap AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g")
    target = pg1.lsn("write")
    pg1.wait_for_catchup(pg2, lsn=target)
    pg2.wait_for_catchup(pg3, lsn=target)
    assert pg3.table_checksum("snap") == pg2.table_checksum("snap") == pg1.table_checksum("snap")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        pg2.execute("INSERT INTO snap VALUES (0, 'x')")

    # failover: pg2 promoted, pg3 follows it onto timeline 2
    pg1.stop("fast")
    assert pg2.promote() == 2
    pg2.execute("INSERT INTO snap VALUES (2001, 'after')")
    pg2.wait_for_catchup(pg3)
    assert pg3.scalar("SELECT count(*) FROM snap") == 2001
    assert pg3.timeline() == 2


def test_every_copy_gets_fresh_passwords(cluster_factory) -> None:
    a = cluster_factory(snapshot=True)
    b = cluster_factory(snapshot=True)
    p1, p2 = a.create_primary("pg1"), b.create_primary("pg1")
    assert p1.image is not None and p1.image.dir == p2.image.dir
    image = p1.image
    assert a.replication_password != b.replication_password != image.replication_password
    assert a._superuser_password not in (b._superuser_password, image.superuser_password)
    # the image's passwords, stored in the cache, open none of the copies
    for node in (p1, p2):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(node.conninfo(passfile="/dev/null"), password=image.superuser_password,
                            connect_timeout=5).close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(node.conninfo(replication=True, passfile="/dev/null"),
                            password=image.replication_password, connect_timeout=5).close()
    # and a copy's own password opens only that copy
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(p2.conninfo(passfile="/dev/null"), password=a._superuser_password, connect_timeout=5).close()
    assert p1.scalar("SELECT 1") == 1
    s = a.create_standby("pg2", p1)  # streams with the fresh replication password
    assert s.image is not None and s.wal_receiver_status()["status"] == "streaming"


def test_images_are_cached_and_keyed_by_settings(cluster_factory, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALSIM_SNAPSHOT_CACHE", str(tmp_path / "cache"))
    first = cluster_factory(snapshot=True).create_primary("pg1", settings={"work_mem": "5MB"})
    again = cluster_factory(snapshot=True).create_primary("pg1", settings={"work_mem": "5MB"})
    other = cluster_factory(snapshot=True).create_primary("pg1", settings={"work_mem": "6MB"})
    assert first.image.dir == again.image.dir != other.image.dir
    assert first.image.dir.parent == tmp_path / "cache"
    assert "built snapshot image" in first.log_file.read_text()
    assert "built snapshot image" not in again.log_file.read_text()
    assert "the primary of snapshot image" in again.log_file.read_text()
    assert other.scalar("SHOW work_mem") == "6MB"
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    for entry in (first.image.dir, other.image.dir):
        assert entry.stat().st_mode & 0o777 == 0o700
        assert (entry / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_spare_copies_are_made_ahead_and_moved_into_place(cluster_factory, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALSIM_SNAPSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WALSIM_SNAPSHOT_SPARES", "1")
    a = cluster_factory(snapshot=True)
    p1 = a.create_primary("pg1", settings={"work_mem": "7MB"})
    image = p1.image
    assert "copied the primary of snapshot image" in p1.log_file.read_text()
    snapshot.wait_refills(120)
    assert (len(snapshot.spares(image, "primary")), len(snapshot.spares(image, "standby"))) == (1, 2)
    assert (image.dir / "spares").stat().st_mode & 0o777 == 0o700
    b = cluster_factory(snapshot=True)
    q1 = b.create_primary("pg1", settings={"work_mem": "7MB"})
    q2 = b.create_standby("pg2", q1, start=False)
    q3 = b.create_standby("pg3", q1, start=False)
    b.start_nodes([q2, q3])
    for node, role in ((q1, "primary"), (q2, "standby"), (q3, "standby")):
        assert f"moved a spare copy of the {role} of snapshot image" in node.log_file.read_text()
    q1.execute("CREATE TABLE spare AS SELECT 1 AS x")
    q1.wait_for_catchup(q2)
    q1.wait_for_catchup(q3)
    assert q3.scalar("SELECT x FROM spare") == 1
    snapshot.wait_refills(120)
    assert (len(snapshot.spares(image, "primary")), len(snapshot.spares(image, "standby"))) == (1, 2)
    monkeypatch.setenv("WALSIM_SNAPSHOT_SPARES", "0")
    c = cluster_factory(snapshot=True)
    r1 = c.create_primary("pg1", settings={"work_mem": "8MB"})
    snapshot.wait_refills(60)
    assert "copied the primary" in r1.log_file.read_text() and snapshot.spares(r1.image, "primary") == []


def test_a_standby_is_base_backed_up_when_the_upstream_lost_the_image_wal(cluster_factory) -> None:
    c = cluster_factory(snapshot=True)
    pg1 = c.create_primary("pg1", settings={"wal_keep_size": 0, "min_wal_size": "32MB", "max_wal_size": "64MB"})
    seg = pg1.image.resume_segment
    for _ in range(6):
        pg1.execute("CREATE TABLE IF NOT EXISTS filler (x int)")
        pg1.execute("INSERT INTO filler SELECT 1")
        pg1.switch_wal()
        pg1.checkpoint()
    wait_until(lambda: (pg1.data_dir / "pg_wal" / seg).exists(), what=f"{seg} recycled",
               done=lambda v: not v, timeout=30)
    pg2 = c.create_standby("pg2", pg1)
    assert pg2.image is None and "taking a base backup instead" in pg2.log_file.read_text()
    assert pg2.wal_receiver_status()["status"] == "streaming"


def test_the_cache_directory_must_be_private(tmp_path: Path) -> None:
    d = tmp_path / "c"
    assert private_dir(d) == d and d.stat().st_mode & 0o777 == 0o700
    os.chmod(d, 0o755)
    with pytest.raises(SnapshotError, match="has mode 0755; it must give no access to group or others"):
        private_dir(d)
    link = tmp_path / "link"
    os.chmod(d, 0o700)
    link.symlink_to(d)
    with pytest.raises(SnapshotError, match="is not a directory"):
        private_dir(link)
    if os.geteuid() == 0:
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
        with pytest.raises(SnapshotError, match="belongs to uid 65534"):
            private_dir(other)
    assert cache_root().name.startswith("walsim-snapshots-") or os.environ.get("WALSIM_SNAPSHOT_CACHE")


@pytest.fixture
def workdir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="walsim-clitest-"))
    os.chmod(parent, 0o755)
    yield parent / "cluster"
    shutil.rmtree(parent, ignore_errors=True)


def test_cluster_up_snapshot(workdir: Path) -> None:
    out_path = workdir.parent / "up.out"
    with open(out_path, "w") as out:
        up = subprocess.Popen([str(CLI), "cluster", "up", "--standbys", "2", "--snapshot", "--sync", "FIRST1",
                               "--dir", str(workdir)], stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: "walsim: stop:" in out_path.read_text() or up.poll() is not None,
                   what="walsim-cli cluster up --snapshot to print the ready banner", timeout=180, logs=[out_path])
        assert up.poll() is None, out_path.read_text()
        status = subprocess.run([str(CLI), "cluster", "status", "--dir", str(workdir)], capture_output=True,
                                text=True, timeout=scaled(60))
        rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:4]}
        assert rows["pg2"][-1] == "streaming/sync" and rows["pg3"][-1] == "streaming/potential", status.stdout
        assert "the standby of snapshot image" in (workdir / "pg2" / "postgresql.log").read_text()
        down = subprocess.run([str(CLI), "cluster", "down", "--dir", str(workdir)], capture_output=True,
                              text=True, timeout=scaled(120))
        assert down.returncode == 0 and up.wait(timeout=scaled(60)) == 0
        assert not workdir.exists()
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=scaled(60))
