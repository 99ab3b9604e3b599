"""walsim-receiver against a misbehaving server (a scripted fake speaking the
v3 protocol with trust auth, replaying real PostgreSQL 15 WAL from
tests/data/wal): each problem is a clear error, a non-zero exit, no file
with wrong bytes; pings are answered; nothing unverified is acknowledged."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver_support import Receivers
from walsim.pg.ports import PortAllocator
from walsim.core.timeouts import scaled
from receiver_wire import FakeServer, FakeServerScript, keepalive, xlogdata

SEG = 1024 * 1024
SEG9 = 0x900000


@pytest.fixture(scope="module")
def segment9(repo_top: Path) -> bytes:
    return (repo_top / "tests" / "data" / "wal" / "000000010000000000000009").read_bytes()


@pytest.fixture
def bin_receivers(tmp_path: Path, walsim_build: Path) -> Iterator[Receivers]:
    r = Receivers(tmp_path, walsim_build, Path("/nonexistent"))
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def fake(port_allocator: PortAllocator) -> Iterator[list[FakeServer]]:
    made: list[FakeServer] = []
    reservations = []

    def start(script: FakeServerScript) -> FakeServer:
        # the reservation is held while the fake listens, so no other test takes the port
        res = port_allocator.reserve()
        reservations.append(res)
        srv = FakeServer(res.port, script)
        made.append(srv)
        return srv

    yield start  # type: ignore[misc]
    for srv in made:
        srv.close()
    for res in reservations:
        res.release()


def sysid_of(segment: bytes) -> str:
    return str(struct.unpack_from("<Q", segment, 24)[0])


def conninfo(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=fake sslmode=disable connect_timeout=10"


def run(r: Receivers, srv: FakeServer, tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    d = tmp_path / "wal"
    d.mkdir(exist_ok=True)
    cp = r.run(d, conninfo(srv.port), "-n", "--reconnect-interval", "0", *args)
    return cp.returncode, cp.stderr, d


def no_bad_bytes(directory: Path, segment: bytes, upto: int) -> None:
    """No complete segment appeared, and a .partial holds only real bytes (or zeros)."""
    names = sorted(p.name for p in directory.iterdir())
    assert all(n.endswith(".partial") for n in names), names
    for n in names:
        data = (directory / n).read_bytes()
        assert len(data) == SEG
        assert data[:upto] == segment[:upto] or data[:upto] == bytes(upto)
        assert data[upto:] == bytes(SEG - upto)


@pytest.mark.parametrize("payload, reason", [
    (b"k" + bytes(16), "keepalive"),                         # 17 bytes: one short
    (b"k" + bytes(18), "keepalive"),                         # 19 bytes: one long
    (b"w" + bytes(20), "XLogData"),                          # header cut short
    (b"x" + bytes(30), "unknown"),                           # not a server message
    (b"r" + bytes(33), "subtype 'r' from the server"),       # a client message from the server
], ids=["k-short", "k-long", "w-short", "unknown-x", "r-from-server"])
def test_malformed_copydata_rejected(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes,
                                     payload: bytes, reason: str) -> None:
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], stream=[xlogdata(SEG9, segment9[:8192]), payload]))
    rc, err, d = run(bin_receivers, srv, tmp_path)
    assert rc == 1, err
    assert "invalid streaming message" in err and reason in err, err
    no_bad_bytes(d, segment9, 8192)


def test_non_contiguous_xlogdata_rejected(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes) -> None:
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], stream=[
        xlogdata(SEG9, segment9[:8192]),
        xlogdata(SEG9 + 16384, segment9[16384:24576]),
    ]))
    rc, err, d = run(bin_receivers, srv, tmp_path, "--no-verify")
    assert rc == 1
    assert "got WAL data at 0/904000, expected 0/902000 (non-contiguous XLogData)" in err, err
    no_bad_bytes(d, segment9, 8192)
    assert (d / "000000010000000000000009.partial").read_bytes()[:8192] == segment9[:8192]


def test_first_message_not_at_start_rejected(fake, bin_receivers: Receivers, tmp_path: Path,
                                             segment9: bytes) -> None:
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], stream=[xlogdata(SEG9 + 8192, segment9[8192:16384])]))
    rc, err, d = run(bin_receivers, srv, tmp_path)
    assert rc == 1
    assert "got WAL data at 0/902000, expected 0/900000" in err, err
    assert list(d.iterdir()) == []


def test_system_identifier_change_is_fatal(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes) -> None:
    # first connection: the stream ends (server shutdown); the second says another system
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9), "1234567890123456789"],
                                stream=[xlogdata(SEG9, segment9[:8192])], finish="end"))
    d = tmp_path / "wal"
    d.mkdir()
    cp = bin_receivers.run(d, conninfo(srv.port), "--reconnect-interval", "0")
    assert cp.returncode == 1, cp.stderr
    assert "replication stream was terminated before stop point" in cp.stderr
    assert f"system identifier of the server changed: was {sysid_of(segment9)}, now 1234567890123456789" in cp.stderr
    assert srv.connections == 2
    no_bad_bytes(d, segment9, 8192)


@pytest.mark.parametrize("size, reason", [
    ("16777216", "unknown unit \"\""),
    ("3MB", "not a power of two"),
    ("2GB", "between 1 MB and 1 GB"),
    ("lots", "expected a number"),
], ids=["no-unit", "3MB", "2GB", "text"])
def test_bad_wal_segment_size(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes,
                              size: str, reason: str) -> None:
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], segment_size=size))
    rc, err, d = run(bin_receivers, srv, tmp_path)
    assert rc == 1
    assert "WAL segment size could not be parsed" in err and reason in err, err
    assert not any(q.startswith("START_REPLICATION") for q in srv.queries)
    assert list(d.iterdir()) == []


def test_integer_datetimes_off(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes) -> None:
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], integer_datetimes="off"))
    rc, err, _ = run(bin_receivers, srv, tmp_path)
    assert rc == 1
    assert "integer_datetimes compile flag does not match server" in err, err


def test_ping_answered_and_bad_record_never_acknowledged(fake, bin_receivers: Receivers, tmp_path: Path,
                                                         segment9: bytes) -> None:
    # record 1 starts at 0/9002F0 (pg_waldump); the record after it is damaged
    first = 0x2F0
    (tot_len,) = struct.unpack_from("<I", segment9, first)
    second = (first + tot_len + 7) & ~7
    assert second + 40 < 8192, "test WAL changed: the second record should be on the first page"
    damaged = bytearray(segment9)
    damaged[second + 30] ^= 0x04
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], stream=[
        xlogdata(SEG9, bytes(damaged[:second])),
        keepalive(SEG9 + second, True),
        xlogdata(SEG9 + second, bytes(damaged[second:65536])),
        keepalive(SEG9 + 65536, True),
    ]))
    rc, err, d = run(bin_receivers, srv, tmp_path, "--verify-action=stop")
    assert rc == 1
    bad = f"0/{SEG9 + second:X}"
    assert f"WAL verification failed at {bad} on timeline 1" in err, err
    assert "valid WAL ends at " + bad in err, err
    # the first ping was answered, acknowledging exactly the good record
    # (the fake reads replies only after each ping, so the reply is among them)
    answered = [s for s in srv.status if s.reply_requested]
    assert any(s.write == SEG9 + second for s in answered), srv.status
    # nothing at or past the damaged record was ever acknowledged
    assert srv.status and all(s.write <= SEG9 + second and s.flush <= SEG9 + second for s in srv.status)
    # what is on disk: the good bytes, then zeros where unverified bytes were
    data = (d / "000000010000000000000009.partial").read_bytes()
    assert data[:second] == segment9[:second]
    assert data[second:] == bytes(SEG - second)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (make deps installs it)")
@pytest.mark.parametrize("scenario", ["damaged-record", "non-contiguous", "sysid-change", "bad-size"])
def test_valgrind_clean_on_bad_input(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes,
                                     scenario: str) -> None:
    sysid = sysid_of(segment9)
    damaged = bytearray(segment9)
    damaged[0x2F0 + 40] ^= 0x01
    scripts = {
        "damaged-record": FakeServerScript(sysids=[sysid], stream=[
            xlogdata(SEG9, bytes(damaged[:65536])), keepalive(SEG9 + 65536, True)]),
        "non-contiguous": FakeServerScript(sysids=[sysid], stream=[
            xlogdata(SEG9, segment9[:8192]), keepalive(SEG9 + 8192, True),
            xlogdata(SEG9 + 16384, segment9[16384:24576])]),
        "sysid-change": FakeServerScript(sysids=[sysid, "42"], stream=[xlogdata(SEG9, segment9[:8192])],
                                         finish="end"),
        "bad-size": FakeServerScript(sysids=[sysid], segment_size="16777216"),
    }
    srv = fake(scripts[scenario])
    d = tmp_path / "wal"
    d.mkdir()
    argv = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", str(bin_receivers.binary),
            "-d", conninfo(srv.port), "-D", str(d), "--reconnect-interval", "0",
            "--verify-action=stop", "--json-events", str(tmp_path / "events.jsonl")]
    if scenario != "sysid-change":
        argv.append("-n")
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(120), stdin=subprocess.DEVNULL)
    assert cp.returncode == 1, cp.stderr
    assert "==" not in cp.stderr, cp.stderr  # no Valgrind report


def test_periodic_status_updates(fake, bin_receivers: Receivers, tmp_path: Path, segment9: bytes) -> None:
    # nothing but one XLogData: the receiver must keep reporting every -s seconds
    srv = fake(FakeServerScript(sysids=[sysid_of(segment9)], stream=[xlogdata(SEG9, segment9[:8192])],
                                hold_for_statuses=4))
    rc, err, _ = run(bin_receivers, srv, tmp_path, "-s", "1")
    assert rc == 1, err
    # the first update follows START_REPLICATION at once, the others are periodic
    assert len(srv.status) >= 4, srv.status
    # all 34-byte updates with write <= what was sent, flush 0 (no slot, not synchronous)
    assert all(s.flush == 0 and s.apply == 0 and s.write <= SEG9 + 8192 for s in srv.status)
    assert srv.status[-1].write > SEG9


def test_damaged_record_across_segments_keeps_segment_unverified(fake, bin_receivers: Receivers,
                                                                 tmp_path: Path, segment9: bytes,
                                                                 repo_top: Path) -> None:
    """The record at 0/9FFE80 starts in segment 9 and continues into segment A
    (pg_waldump: the last record complete in 9 is at 0/9FFE38, the first
    starting in A at 0/A00E68).  Damage its tail in A: segment 9 is complete but must not be
    renamed, the unverified bytes are zeroed in both files, and the next run
    streams again from segment 9."""
    segment_a = (repo_top / "tests" / "data" / "wal" / "00000001000000000000000A").read_bytes()
    sysid = sysid_of(segment9)
    damaged_a = bytearray(segment_a)
    damaged_a[0x100] ^= 0x20                      # inside the continuation, after A's long header
    srv = fake(FakeServerScript(sysids=[sysid], stream=[
        xlogdata(SEG9, segment9[:SEG // 2]),
        xlogdata(SEG9 + SEG // 2, segment9[SEG // 2:]),
        xlogdata(SEG9 + SEG, bytes(damaged_a[:8192])),
        keepalive(SEG9 + SEG + 8192, True),
    ]))
    rc, err, d = run(bin_receivers, srv, tmp_path, "--verify-action=stop")
    assert rc == 1
    assert "WAL verification failed at 0/9FFE80 on timeline 1" in err, err
    assert "valid WAL ends at 0/9FFE80" in err, err
    names = sorted(p.name for p in d.iterdir())
    assert names == ["000000010000000000000009.partial", "00000001000000000000000A.partial"], names
    valid_end = 0x9FFE80
    assert all(s.write <= valid_end and s.flush <= valid_end for s in srv.status)
    nine = (d / "000000010000000000000009.partial").read_bytes()
    cut = valid_end - SEG9
    assert nine[:cut] == segment9[:cut]
    assert nine[cut:] == bytes(SEG - cut)
    assert (d / "00000001000000000000000A.partial").read_bytes() == bytes(SEG)

    # the next run starts again at segment 9 and completes both segments
    good = fake(FakeServerScript(sysids=[sysid], stream=[
        xlogdata(SEG9, segment9), xlogdata(SEG9 + SEG, segment_a), keepalive(SEG9 + 2 * SEG, True)]))
    events = tmp_path / "events.jsonl"
    cp = bin_receivers.run(d, conninfo(good.port), "-n", "--json-events", str(events))
    assert cp.returncode == 1, cp.stderr          # the fake closes the connection at the end
    connected = [json.loads(line) for line in events.read_text().splitlines()
                 if '"connected"' in line]
    assert connected[0]["start"] == "0/900000"
    assert (d / "000000010000000000000009").read_bytes() == segment9
    assert (d / "00000001000000000000000A").read_bytes() == segment_a
