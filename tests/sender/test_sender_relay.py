"""tools/walsim-relay: walsim-receiver fills a directory from a real primary
while walsim-sender serves it to a real standby."""

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


def test_relay_standby_follows(cluster: Cluster, repo_top: Path, walsim_build: Path, tmp_path: Path) -> None:
    if not (walsim_build / "bin" / "walsim-receiver").exists():
        pytest.fail("walsim-receiver is not built")
    pg1 = cluster.create_primary("pg1")
    relay_dir = tmp_path / "relay"
    port = cluster.ports.reserve()
    log = tmp_path / "relay.log"
    with open(log, "ab") as out:
        relay = subprocess.Popen([str(repo_top / "tools" / "walsim-relay"),
                                  "--primary", pg1.conninfo(replication=True), "-D", str(relay_dir),
                                  "--listen", f"127.0.0.1:{port.port}", "--passfile", str(cluster.passfile)],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: "listening on" in log.read_text(errors="replace") or relay.poll() is not None,
                   what="the relay's sender to listen", timeout=scaled(60), logs=[log])
        assert relay.poll() is None, log.read_text()
        standby = cluster.create_standby("s1", pg1, via=("127.0.0.1", port.port))
        standby.wait_for_streaming(timeout=scaled(60))
        pg1.execute("CREATE TABLE t (id int)")
        delays = []
        for i in range(10):
            pg1.execute("INSERT INTO t VALUES (%s)", [i])
            t0 = time.monotonic()
            wait_until(lambda: standby.scalar("SELECT count(*) FROM t WHERE id = %s", [i]),
                       what=f"row {i} behind the relay", timeout=scaled(30), logs=[log, standby.log_file],
                       tolerate=(psycopg.errors.UndefinedTable,))   # CREATE TABLE not replayed yet
            delays.append(time.monotonic() - t0)
        pg1.execute("INSERT INTO t SELECT generate_series(100, 50000)")
        pg1.execute("SELECT pg_switch_wal()")
        pg1.execute("INSERT INTO t VALUES (-1)")
        wait_until(lambda: standby.scalar("SELECT count(*) FROM t"), what="all rows behind the relay",
                   done=lambda n: n == 49912, timeout=scaled(60), logs=[log, standby.log_file])
        assert standby.table_checksum("t") == pg1.table_checksum("t")
        print(f"relay delay: median {sorted(delays)[5] * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            relay.wait(scaled(60))
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
        port.release()
    assert relay.returncode == 0, log.read_text()[-3000:]
