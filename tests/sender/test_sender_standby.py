"""A real PostgreSQL 15 standby streaming from walsim-sender.

The standby is a pg_basebackup of a real primary; walsim-sender serves the
primary's archive.  The standby must reach ``streaming``, replay to the
sender's xlogpos and end up with the primary's table contents.
"""

from __future__ import annotations

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled

from sender_support import archiving_primary, identify_system, switch_and_archive

pytestmark = pytest.mark.pg


@pytest.mark.parametrize("auth", ["scram-sha-256", "trust"])
def test_standby_streams_archive(cluster: Cluster, start_sender, auth: str) -> None:
    primary, archive = archiving_primary(cluster)
    primary.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    # the standby's base backup comes first; everything after it must stream
    port_res = cluster.ports.reserve()
    standby = cluster.create_standby("s1", primary, via=("127.0.0.1", port_res.port), start=False)
    port_res.release()
    primary.execute("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
    primary.execute("UPDATE t SET v = v || 'x' WHERE id % 7 = 0")
    switch_and_archive(primary, archive)
    primary.execute("INSERT INTO t SELECT g, 'tail' FROM generate_series(20001, 20100) g")
    switch_and_archive(primary, archive)

    args = ["--auth", auth] + (["--passfile", str(cluster.passfile)] if auth != "trust" else [])
    sender = start_sender(archive, *args)
    sysid, tli, xlogpos = identify_system(sender, cluster)
    assert sysid == str(primary.scalar("SELECT system_identifier FROM pg_control_system()"))
    assert tli == 1
    # the sender's end of WAL is the end of the last archived record, not a file size
    assert Lsn(xlogpos) <= Lsn(primary.scalar("SELECT pg_current_wal_lsn()::text"))

    standby.repoint("127.0.0.1", sender.port)
    standby.start()
    status = standby.wait_for_streaming(timeout=scaled(60))
    assert status["status"] == "streaming"
    standby.wait_for_replay(xlogpos, timeout=scaled(60))
    assert standby.table_checksum("t") == primary.table_checksum("t")
    assert standby.scalar("SELECT count(*) FROM t") == 20100
    log = standby.log_file.read_text(errors="replace")
    assert "error reading result of streaming command" not in log
    events = sender.event_list()
    assert any(e["event"] == "start_replication" for e in events)
    assert any(e["event"] == "auth_ok" and e["method"] == auth for e in events)
