"""Timelines: walsim-sender serves an archive holding a promotion
(timeline 1 -> 2, with 00000002.history and the switch segment only in
timeline 2's file) to clients that are still on timeline 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled

from sender_support import (archiving_primary, identify_system, replication_sql,
                            switch_and_archive)

pytestmark = pytest.mark.pg


def promoted_archive(cluster: Cluster) -> tuple[Path, object, object]:
    """pg1 archives timeline 1, s1 (promoted) archives timeline 2 into the
    same directory; returns the archive, the new primary and a standby of
    pg1 taken before any of it, not started, pointed nowhere yet."""
    pg1, archive = archiving_primary(cluster)
    s1 = cluster.create_standby("s1", pg1, settings={"archive_mode": "on",
                                                     "archive_command": f"cp %p {archive}/%f"})
    port = cluster.ports.reserve()
    s2 = cluster.create_standby("s2", pg1, via=("127.0.0.1", port.port), start=False)
    port.release()
    pg1.execute("CREATE TABLE t (id int, v text)")
    pg1.execute("INSERT INTO t SELECT g, 'tl1' FROM generate_series(1, 5000) g")
    switch_and_archive(pg1, archive)
    pg1.execute("INSERT INTO t SELECT g, 'tl1b' FROM generate_series(1, 100) g")
    pg1.wait_for_catchup(s1)
    pg1.stop()
    assert s1.promote() == 2
    s1.execute("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1, 3000) g")
    switch_and_archive(s1, archive)
    assert (archive / "00000002.history").exists()
    return archive, s1, s2


def test_standby_follows_timeline_switch(cluster: Cluster, start_sender) -> None:
    archive, s1, s2 = promoted_archive(cluster)
    history = (archive / "00000002.history").read_text()
    switch = Lsn(history.split("\t")[1])
    # the switch segment of timeline 1 is only a .partial: it must come from timeline 2's file
    seg = f"{switch >> 32:08X}{(switch & 0xFFFFFFFF) >> 24:08X}"
    assert (archive / f"00000002{seg}").exists()

    sender = start_sender(archive, "--auth", "trust")
    _sysid, tli, xlogpos = identify_system(sender, cluster)
    assert tli == 2
    r = replication_sql(sender, cluster, "TIMELINE_HISTORY 2")
    assert r.returncode == 0 and r.stdout.startswith("00000002.history|1\t")

    s2.repoint("127.0.0.1", sender.port)
    offset = s2.log_position()
    s2.start()
    s2.wait_for_replay(xlogpos, timeout=scaled(90))
    assert s2.timeline() == 2
    assert s2.table_checksum("t") == s1.table_checksum("t")
    log = s2.log_since(offset)
    assert "error reading result of streaming command" not in log
    assert "FATAL" not in log, log[-3000:]
    events = [e["event"] for e in sender.event_list()]
    assert "end_of_timeline" in events


def test_historic_timeline_commands(cluster: Cluster, start_sender, tmp_path: Path) -> None:
    """PostgreSQL's order of checks and results for a historic timeline."""
    archive, _s1, _s2 = promoted_archive(cluster)
    history = (archive / "00000002.history").read_text()
    switch = Lsn(history.split("\t")[1])
    sender = start_sender(archive, "--auth", "trust")

    # unknown timeline, start past the switch point: errors before COPY
    r = replication_sql(sender, cluster, "START_REPLICATION 0/3000000 TIMELINE 3")
    assert "requested timeline 3 is not in this server's history" in r.stderr
    r = replication_sql(sender, cluster, f"START_REPLICATION {Lsn(switch + 8)} TIMELINE 1")
    assert "is not in this server's history" in r.stderr
    assert f"This server's history forked from timeline 1 at {switch}" in r.stderr

    # exactly at the switch point: no COPY, just the next timeline's row
    r = replication_sql(sender, cluster, f"START_REPLICATION {switch} TIMELINE 1")
    assert r.returncode == 0, r.stderr
    # psql prints the row, then the tag of the last of the two CommandCompletes
    assert r.stdout.split() == [f"2|{switch}", "START_REPLICATION"]

    # pg_receivewal from timeline 1 follows to timeline 2 through the sender
    out = tmp_path / "rw"
    out.mkdir()
    seg1 = f"00000001{switch >> 32:08X}{((switch & 0xFFFFFFFF) >> 24) - 1:08X}"
    (out / seg1).write_bytes((archive / seg1).read_bytes())
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    conninfo = f"host=127.0.0.1 port={sender.port} user={cluster.replication_user}"
    rw = subprocess.run([str(cluster.pg.path("pg_receivewal")), "-d", conninfo, "-D", str(out),
                         "--no-loop", "--verbose", "--endpos", str(Lsn(Lsn(xlogpos) - 1))],
                        capture_output=True, text=True, timeout=scaled(120))
    assert rw.returncode == 0, rw.stderr
    assert "switched to timeline 2" in rw.stderr
    assert (out / "00000002.history").read_bytes() == (archive / "00000002.history").read_bytes()
    for name in sorted(p.name for p in out.iterdir() if p.name.startswith("00000002") and len(p.name) == 24):
        assert (out / name).read_bytes() == (archive / name).read_bytes(), name
