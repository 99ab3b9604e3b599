"""Keepalives, pings, wal_sender_timeout and SIGTERM shutdown of
walsim-sender, observed with a raw client and with pg_receivewal."""

from __future__ import annotations

import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until

from sender_support import RawClient, archiving_primary, identify_system, switch_and_archive

pytestmark = pytest.mark.pg

PG_EPOCH = 946684800


@pytest.fixture
def archive(cluster: Cluster) -> Path:
    primary, archive = archiving_primary(cluster)
    primary.execute("CREATE TABLE t AS SELECT g, repeat('x', 300) AS v FROM generate_series(1, 60000) g")
    switch_and_archive(primary, archive)
    primary.stop()
    return archive


def stream_from(c: RawClient, lsn: str) -> None:
    c.startup()
    c.until(b"Z")
    c.query(f"START_REPLICATION {lsn} TIMELINE 1")
    assert c.read()[0] == b"W"


def test_pings_keepalives_timeout(cluster: Cluster, archive: Path, start_sender) -> None:
    sender = start_sender(archive, "--auth", "trust", "--wal-sender-timeout", "4s")
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    c = RawClient(sender.host, sender.port, timeout=30)
    first = Lsn(Lsn(xlogpos) - 3 * 8192 - 100)      # not page aligned: the first cut is at a page
    stream_from(c, str(first))
    pos = first
    sizes = []
    # all WAL up to xlogpos, contiguous, at most 128 KiB, cut at page boundaries, walEnd = xlogpos
    while pos < Lsn(xlogpos):
        t, body = c.read()
        assert t == b"d" and body[:1] == b"w", (t, body[:1])
        start, wal_end, send_time = struct.unpack("!QQq", body[1:25])
        assert start == pos and wal_end == Lsn(xlogpos)
        assert abs(send_time / 1e6 + PG_EPOCH - time.time()) < 60
        n = len(body) - 25
        assert 0 < n <= 128 * 1024
        pos += n
        if pos < Lsn(xlogpos):
            assert pos % 8192 == 0
        sizes.append(n)
    assert pos == Lsn(xlogpos)
    # silence: after wal_sender_timeout/2 a keepalive asking for a reply, walEnd = sent
    t, body = c.read()
    assert t == b"d" and body[:1] == b"k" and len(body) == 18
    wal_end, _ts, reply = struct.unpack("!QqB", body[1:])
    assert wal_end == Lsn(xlogpos) and reply == 1
    # hot standby feedback of the right length is accepted silently
    now = int((time.time() - PG_EPOCH) * 1e6)
    c.message(b"d", b"h" + struct.pack("!qIIII", now, 0, 0, 0, 0))
    # our ping gets an immediate keepalive with replyRequested = 0
    c.message(b"d", b"r" + struct.pack("!QQQqB", pos, 0, 0, now, 1))
    t, body = c.read()
    assert t == b"d" and body[:1] == b"k"
    assert struct.unpack("!QqB", body[1:])[2] == 0
    # and then silence until wal_sender_timeout: the sender closes the connection
    t0 = time.monotonic()
    while True:
        m = c.read()
        if m is None:
            break
        assert m[0] == b"d" and m[1][:1] == b"k", m   # at most another ping
    assert time.monotonic() - t0 < scaled(30)
    events = [e["event"] for e in sender.event_list()]
    assert "timeout" in events
    assert sender.alive()


def test_sigterm_sends_everything_then_copy0(cluster: Cluster, archive: Path, start_sender,
                                             tmp_path: Path) -> None:
    sender = start_sender(archive, "--passfile", str(cluster.passfile))
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    out = tmp_path / "rw"
    out.mkdir()
    names = sorted(p.name for p in archive.iterdir() if len(p.name) == 24)
    (out / names[0]).write_bytes((archive / names[0]).read_bytes())
    conninfo = f"host=127.0.0.1 port={sender.port} user={cluster.replication_user} passfile={cluster.passfile}"
    rw = subprocess.Popen([str(cluster.pg.path("pg_receivewal")), "-d", conninfo, "-D", str(out),
                           "--no-loop", "--verbose", "--status-interval", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: sender.event_list(), what="pg_receivewal streaming",
                   done=lambda ev: any(e["event"] == "start_replication" for e in ev), timeout=scaled(30))
        sender.proc.send_signal(signal.SIGTERM)
        _out, err = rw.communicate(timeout=scaled(60))
    finally:
        if rw.poll() is None:
            rw.kill()
            rw.wait()
    assert sender.proc.wait(scaled(30)) == 0
    # PG15 pg_receivewal's reaction to "COPY 0" without CopyDone
    assert "replication stream was terminated before stop point" in err, err
    assert rw.returncode == 1
    # and it had received every byte first
    for name in names:
        assert (out / name).read_bytes() == (archive / name).read_bytes(), name
    assert any(e["event"] == "shutdown" for e in sender.event_list())
