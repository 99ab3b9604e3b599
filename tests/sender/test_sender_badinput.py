"""walsim-sender under bad and hostile input: protocol errors get
PostgreSQL's SQLSTATEs, sessions survive ERRORs, nothing crashes, no
descriptor or process is leaked, memory stays bounded."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.timeouts import scaled, wait_until

from sender_support import (RawClient, SenderProcess, archiving_primary, error_fields,
                            identify_system, switch_and_archive)

pytestmark = pytest.mark.pg


@pytest.fixture
def archive(cluster: Cluster) -> Path:
    primary, archive = archiving_primary(cluster)
    primary.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    switch_and_archive(primary, archive)
    primary.stop()
    return archive


def connected(sender: SenderProcess) -> RawClient:
    c = RawClient(sender.host, sender.port)
    c.startup()
    msgs = c.until(b"Z")
    assert msgs[0] == (b"R", struct.pack("!I", 0)), msgs[0]
    params = {b.split(b"\0")[0].decode(): b.split(b"\0")[1].decode() for t, b in msgs if t == b"S"}
    assert params["integer_datetimes"] == "on" and params["server_version"].startswith("15.")
    assert any(t == b"K" for t, _ in msgs)
    return c


def expect_error(c: RawClient, sqlstate: str, text: str = "") -> dict[str, str]:
    msgs = c.until(b"E")
    f = error_fields(msgs[-1][1])
    assert f["C"] == sqlstate, f
    assert text in f["M"], f
    return f


def no_children(sender: SenderProcess) -> None:
    wait_until(sender.children, what="every connection process of the sender to exit",
               done=lambda ch: ch == [], timeout=scaled(30), logs=[sender.log])


def test_protocol_errors_keep_session(cluster: Cluster, archive: Path, start_sender) -> None:
    sender = start_sender(archive, "--auth", "trust")
    c = connected(sender)
    # SQL is refused, the session stays usable
    c.query("SELECT 1")
    expect_error(c, "0A000", "cannot execute SQL commands in WAL sender for physical replication")
    assert c.read()[0] == b"Z"
    # syntax error in a replication command
    c.query("START_REPLICATION 0/ZZ")
    expect_error(c, "42601")
    assert c.read()[0] == b"Z"
    # unknown SHOW
    c.query("SHOW no_such_thing")
    expect_error(c, "42704", 'unrecognized configuration parameter "no_such_thing"')
    assert c.read()[0] == b"Z"
    # the values pg_receivewal parses
    c.query("SHOW wal_segment_size")
    msgs = c.until(b"Z")
    assert any(t == b"D" and b"16MB" in b for t, b in msgs)
    # TIMELINE_HISTORY 1: RowDescription first, then 58P01, as PostgreSQL 15
    c.query("TIMELINE_HISTORY 1")
    msgs = c.until(b"Z")
    assert [t for t, _ in msgs] == [b"T", b"E", b"Z"]
    assert error_fields(msgs[1][1])["C"] == "58P01"
    # extended protocol: 08P01, then everything is skipped until Sync
    c.message(b"P", b"\0SELECT 1\0\0\0")
    c.message(b"B", b"\0\0\0\0\0\0\0\0")
    c.message(b"S", b"")
    msgs = c.until(b"Z")
    assert [t for t, _ in msgs] == [b"E", b"Z"]
    assert error_fields(msgs[0][1])["C"] == "08P01"
    # start ahead of the end of WAL: CopyBothResponse, then the error, then Z
    c.query("START_REPLICATION FF/0 TIMELINE 1")
    msgs = c.until(b"Z")
    assert [t for t, _ in msgs] == [b"W", b"E", b"Z"]
    assert "ahead of the WAL flush position" in error_fields(msgs[1][1])["M"]
    # a segment that is not there: 58P01 inside COPY
    c.query("START_REPLICATION 0/1000 TIMELINE 1")
    msgs = c.until(b"Z")
    f = error_fields([m for m in msgs if m[0] == b"E"][0][1])
    assert f["C"] == "58P01" and "has already been removed" in f["M"], f
    # a status update of the wrong length: 08P01, copy over, session alive
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    c.query(f"START_REPLICATION {xlogpos} TIMELINE 1")
    assert c.read()[0] == b"W"
    c.message(b"d", b"r" + b"\0" * 20)
    f = expect_error(c, "08P01", "invalid standby message")
    assert c.read()[0] == b"Z"
    c.query("IDENTIFY_SYSTEM")
    assert [t for t, _ in c.until(b"Z")] == [b"T", b"D", b"C", b"Z"]
    # client CopyDone: CopyDone, two CommandCompletes, ReadyForQuery
    c.query(f"START_REPLICATION {xlogpos} TIMELINE 1")
    assert c.read()[0] == b"W"
    c.message(b"c", b"")
    msgs = c.until(b"Z")
    assert [t for t, _ in msgs if t != b"d"] == [b"c", b"C", b"C", b"Z"]
    # an unknown CopyData subtype ends the connection without an ErrorResponse
    c.query(f"START_REPLICATION {xlogpos} TIMELINE 1")
    assert c.read()[0] == b"W"
    c.message(b"d", b"q1234")
    assert c.closed()
    c.close()
    assert sender.alive()


def test_startup_refusals(cluster: Cluster, archive: Path, start_sender) -> None:
    sender = start_sender(archive, "--passfile", str(cluster.passfile))
    # SSLRequest: 'N', then a startup packet on the same socket
    c = RawClient(sender.host, sender.port)
    c.send(struct.pack("!II", 8, 80877103))
    assert c.read_byte() == b"N"
    c.startup({"user": "replicator", "replication": "bogus"})
    f = expect_error(c, "22023", 'invalid value for parameter "replication"')
    assert f["S"] == "FATAL"
    c.close()
    # not a replication connection
    c = RawClient(sender.host, sender.port)
    c.startup({"user": "replicator", "database": "postgres"})
    expect_error(c, "0A000")
    c.close()
    # no user
    c = RawClient(sender.host, sender.port)
    c.startup({"replication": "true"})
    expect_error(c, "28000")
    c.close()
    # a minor version we do not speak: NegotiateProtocolVersion, then SCRAM
    c = RawClient(sender.host, sender.port)
    c.startup({"user": "replicator", "replication": "true", "_pq_.bogus": "1"}, version=(3 << 16) | 5)
    m = c.read()
    # the version offered is the whole Int32, 3.0 = 196608, as PostgreSQL 15 sends it (observed;
    # walsim-sender used to send the bare minor, 0)
    assert m[0] == b"v" and struct.unpack("!II", m[1][:8]) == ((3 << 16) | 0, 1) and b"_pq_.bogus" in m[1]
    m = c.read()
    assert m[0] == b"R" and struct.unpack("!I", m[1][:4])[0] == 10 and b"SCRAM-SHA-256" in m[1]
    c.close()
    # protocol 2: refused
    c = RawClient(sender.host, sender.port)
    c.startup({"user": "replicator"}, version=2 << 16)
    expect_error(c, "0A000", "unsupported frontend protocol")
    c.close()
    # a wrong password through libpq: 28P01
    bad = cluster.base_dir / "badpass"
    bad.write_text(f"*:*:*:{cluster.replication_user}:wrong\n")
    bad.chmod(0o600)
    import subprocess
    r = subprocess.run([str(cluster.pg.path("psql")), "-X", "-d",
                        f"host=127.0.0.1 port={sender.port} user={cluster.replication_user} "
                        f"passfile={bad} replication=true", "-c", "IDENTIFY_SYSTEM"],
                       capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode != 0 and "password authentication failed" in r.stderr
    assert sender.alive()


def test_hostile_clients_leak_nothing(cluster: Cluster, archive: Path, start_sender) -> None:
    # --no-follow: the listener then never re-reads the directory, so its
    # descriptor count is a pure function of the connections it handled
    sender = start_sender(archive, "--auth", "trust", "--no-follow")
    connected(sender).close()
    no_children(sender)
    fds_before = sender.fd_count()

    # garbage instead of a startup packet: FATAL, closed
    c = RawClient(sender.host, sender.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    f = expect_error(c, "08P01")
    assert f["S"] == "FATAL"
    c.close()
    # an oversized message after startup: refused, closed
    c = connected(sender)
    c.send(b"Q" + struct.pack("!I", 0x3FFFFFFF))
    c.send(b"x" * 65536)
    expect_error(c, "08P01")
    assert c.closed()
    c.close()
    # a client that disconnects in the middle of messages
    for partial in (struct.pack("!I", 40) + b"\0\3\0\0user\0", b"\0\0"):
        c = RawClient(sender.host, sender.port)
        c.send(partial)
        c.close()
    c = connected(sender)
    c.send(b"Q\0\0\0\x40IDENT")
    c.close()

    # 50 concurrent clients connecting and vanishing at every stage
    def hostile(i: int) -> None:
        try:
            s = socket.create_connection((sender.host, sender.port), timeout=scaled(10))
            if i % 3 == 1:
                s.sendall(struct.pack("!I", 8))
            elif i % 3 == 2:
                body = struct.pack("!I", 196608) + b"user\0replicator\0replication\0true\0\0"
                s.sendall(struct.pack("!I", len(body) + 4) + body + b"Q\0\0\0\x10IDENTIFY_SYSTEM\0")
            s.close()
        except OSError:
            pass

    threads = [threading.Thread(target=hostile, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    no_children(sender)
    assert sender.alive()
    assert sender.fd_count() == fds_before, sorted(
        __import__("os").readlink(f"/proc/{sender.pid}/fd/{fd}")
        for fd in __import__("os").listdir(f"/proc/{sender.pid}/fd"))
    rss_kb = int([line for line in Path(f"/proc/{sender.pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS")][0].split()[1])
    assert rss_kb < 64 * 1024, f"listener RSS {rss_kb} kB"
    # and it still serves
    _sysid, tli, _pos = identify_system(sender, cluster)
    assert tli == 1


def test_system_id_override_and_connection_limit(cluster: Cluster, archive: Path, start_sender) -> None:
    sender = start_sender(archive, "--auth", "trust", "--system-id", "12345", "--max-connections", "1")
    # GSSENCRequest: 'N' as well, then a startup packet
    c = RawClient(sender.host, sender.port)
    c.send(struct.pack("!II", 8, 80877104))
    assert c.read_byte() == b"N"
    c.startup()
    c.until(b"Z")
    c.query("IDENTIFY_SYSTEM")
    msgs = c.until(b"Z")
    row = [b for t, b in msgs if t == b"D"][0]
    assert b"12345" in row
    # a second client while the first is connected: FATAL 53300 after its startup packet
    d = RawClient(sender.host, sender.port)
    d.startup()
    f = expect_error(d, "53300", "number of requested standby connections exceeds max_wal_senders (currently 1)")
    assert f["S"] == "FATAL"
    d.close()
    c.message(b"X", b"")
    c.close()
    no_children(sender)
    e = connected(sender)
    e.close()


def test_slot_in_use_and_released(cluster: Cluster, archive: Path, start_sender) -> None:
    sender = start_sender(archive, "--auth", "trust")
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    a = connected(sender)
    a.query("CREATE_REPLICATION_SLOT busy PHYSICAL RESERVE_WAL")
    msgs = a.until(b"Z")
    assert [t for t, _ in msgs] == [b"T", b"D", b"C", b"Z"]
    a.query(f'START_REPLICATION SLOT "busy" {xlogpos} TIMELINE 1')
    assert a.read()[0] == b"W"
    # a second client: 55006 before any CopyBothResponse; DROP refused as well
    b = connected(sender)
    b.query(f'START_REPLICATION SLOT "busy" {xlogpos} TIMELINE 1')
    msgs = b.until(b"Z")
    assert [t for t, _ in msgs] == [b"E", b"Z"]
    f = error_fields(msgs[0][1])
    assert f["C"] == "55006" and 'replication slot "busy" is active for PID' in f["M"], f
    b.query("DROP_REPLICATION_SLOT busy")
    assert error_fields(b.until(b"E")[-1][1])["C"] == "55006"
    b.until(b"Z")
    # the first client vanishes: the slot is free again
    a.close()
    def try_start() -> bytes:
        b.query(f'START_REPLICATION SLOT "busy" {xlogpos} TIMELINE 1')
        t = b.read()[0]
        if t == b"E":
            b.until(b"Z")       # still active: the error, then ReadyForQuery
        return t

    wait_until(try_start, what="the slot to become free", done=lambda t: t == b"W", timeout=scaled(30))
    b.message(b"c", b"")
    b.until(b"Z")
    b.query("DROP_REPLICATION_SLOT busy")
    assert [t for t, _ in b.until(b"Z")] == [b"C", b"Z"]
    b.close()
