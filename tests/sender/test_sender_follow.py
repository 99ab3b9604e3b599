"""Follow mode: walsim-sender serves a directory that pg_receivewal is
filling from a real primary right now (a relay), to a real standby.  Rows
committed on the primary must appear on the standby behind the relay."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from walsim.pg.cluster import Cluster
from walsim.core.timeouts import scaled, wait_until

pytestmark = pytest.mark.pg


def test_standby_follows_growing_directory(cluster: Cluster, start_sender, tmp_path: Path) -> None:
    pg1 = cluster.create_primary("pg1")
    relay_dir = tmp_path / "relay"
    relay_dir.mkdir()
    log = tmp_path / "pg_receivewal.log"
    with open(log, "ab") as out:
        rw = subprocess.Popen([str(cluster.pg.path("pg_receivewal")), "-d",
                               pg1.conninfo(replication=True), "-D", str(relay_dir),
                               "--synchronous", "--verbose", "--no-loop"],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: list(relay_dir.glob("*.partial")), what="pg_receivewal's first .partial",
                   timeout=scaled(30), logs=[log])
        port = cluster.ports.reserve()
        standby = cluster.create_standby("s1", pg1, via=("127.0.0.1", port.port), start=False)
        port.release()
        pg1.execute("CREATE TABLE t (id int, v text)")
        sender = start_sender(relay_dir, "--passfile", str(cluster.passfile))
        standby.repoint("127.0.0.1", sender.port)
        standby.start()
        standby.wait_for_streaming(timeout=scaled(60))

        # rows committed now reach the standby through pg_receivewal -> directory -> sender
        delays = []
        for i in range(1, 21):
            pg1.execute("INSERT INTO t VALUES (%s, 'follow')", [i])
            t0 = time.monotonic()
            wait_until(lambda: standby.scalar("SELECT count(*) FROM t WHERE id = %s", [i]),
                       what=f"row {i} on the standby behind the relay", timeout=scaled(30),
                       logs=[standby.log_file, sender.log, log],
                       tolerate=(psycopg.errors.UndefinedTable,))   # CREATE TABLE not replayed yet
            delays.append(time.monotonic() - t0)
        # a segment boundary crossed while following (pg_receivewal renames .partial)
        pg1.execute("SELECT pg_switch_wal()")
        pg1.execute("INSERT INTO t SELECT g, 'after switch' FROM generate_series(100, 5100) g")
        wait_until(lambda: standby.scalar("SELECT count(*) FROM t"), what="rows after a segment switch",
                   done=lambda n: n == 5021, timeout=scaled(60), logs=[standby.log_file, sender.log])
        assert standby.table_checksum("t") == pg1.table_checksum("t")
        print(f"follow delay over 20 commits: median {sorted(delays)[10] * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms")
    finally:
        rw.send_signal(signal.SIGINT)
        try:
            rw.wait(scaled(20))
        except subprocess.TimeoutExpired:
            rw.kill()
            rw.wait()


def test_standby_follows_live_promotion(cluster: Cluster, start_sender, tmp_path: Path) -> None:
    """The directory is filled by pg_receivewal from a standby s1 that is then
    promoted: pg_receivewal switches to timeline 2 (history file, new
    segments), walsim-sender ends timeline 1 for its connected standby at the
    switch point, and that standby follows to timeline 2 without reconnecting
    errors."""
    pg1 = cluster.create_primary("pg1")
    s1 = cluster.create_standby("s1", pg1)
    relay_dir = tmp_path / "relay"
    relay_dir.mkdir()
    log = tmp_path / "pg_receivewal.log"
    with open(log, "ab") as out:
        rw = subprocess.Popen([str(cluster.pg.path("pg_receivewal")), "-d",
                               s1.conninfo(replication=True), "-D", str(relay_dir),
                               "--synchronous", "--verbose"],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: list(relay_dir.glob("*.partial")), what="pg_receivewal's first .partial",
                   timeout=scaled(30), logs=[log])
        port = cluster.ports.reserve()
        s2 = cluster.create_standby("s2", pg1, via=("127.0.0.1", port.port), start=False)
        port.release()
        pg1.execute("CREATE TABLE t (id int, v text)")
        pg1.execute("INSERT INTO t SELECT g, 'tl1' FROM generate_series(1, 1000) g")
        sender = start_sender(relay_dir, "--passfile", str(cluster.passfile))
        s2.repoint("127.0.0.1", sender.port)
        offset = s2.log_position()
        s2.start()
        s2.wait_for_streaming(timeout=scaled(60))
        wait_until(lambda: s2.scalar("SELECT count(*) FROM t"), what="timeline 1 rows on s2",
                   done=lambda n: n == 1000, timeout=scaled(60), logs=[s2.log_file, sender.log],
                   tolerate=(psycopg.errors.UndefinedTable,))
        pg1.wait_for_catchup(s1)
        pg1.stop()
        assert s1.promote() == 2
        s1.execute("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1, 500) g")
        wait_until(lambda: (relay_dir / "00000002.history").exists(), what="pg_receivewal on timeline 2",
                   timeout=scaled(60), logs=[log])
        wait_until(lambda: s2.scalar("SELECT count(*) FROM t"), what="timeline 2 rows on s2",
                   done=lambda n: n == 1500, timeout=scaled(90), logs=[s2.log_file, sender.log, log])
        assert s2.timeline() == 2
        assert s2.table_checksum("t") == s1.table_checksum("t")
        text = s2.log_since(offset)
        assert "error reading result of streaming command" not in text
        assert any(e["event"] == "end_of_timeline" for e in sender.event_list())
    finally:
        rw.send_signal(signal.SIGINT)
        try:
            rw.wait(scaled(20))
        except subprocess.TimeoutExpired:
            rw.kill()
            rw.wait()
