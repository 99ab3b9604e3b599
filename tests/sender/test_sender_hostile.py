"""walsim-sender against hostile clients (issue 16, items 5 and 8;
docs/security.md).

Item 5: clients that connect and never finish their startup packet used to
take every ``--max-connections`` place for about a minute, so that real
standbys were refused with FATAL 53300.  Only authenticated replication
connections count against the limit now; the others are bounded by
``--max-startup-connections`` and ``--authentication-timeout``.

Item 8: more than 64 startup parameters were refused while docs/sender.md
said other parameters are accepted and ignored.

The WAL served is tests/data/wal's timeline 1 (no PostgreSQL needed)."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled, wait_until

from sender_support import RawClient, SenderProcess, error_fields

DATA = Path(__file__).resolve().parents[1] / "data" / "wal"


@pytest.fixture
def waldir(tmp_path: Path) -> Path:
    d = tmp_path / "wal"
    d.mkdir()
    for name in ("000000010000000000000009", "00000001000000000000000A", "00000001000000000000000B"):
        shutil.copy(DATA / name, d / name)
    return d


def half_startup(sender: SenderProcess) -> RawClient:
    """A client that sends the first bytes of a startup packet's length, then nothing."""
    c = RawClient(sender.host, sender.port, timeout=60)
    c.send(b"\x00\x00")
    return c


def authenticated(sender: SenderProcess, params: dict[str, str] | None = None) -> RawClient:
    c = RawClient(sender.host, sender.port)
    c.startup(params)
    msgs = c.until(b"Z")
    assert msgs[0] == (b"R", struct.pack("!I", 0)), msgs
    return c


def events(sender: SenderProcess) -> list[dict]:
    return [json.loads(line) for line in sender.events.read_text().splitlines() if line.strip()]


def test_unauthenticated_clients_do_not_take_standby_places(waldir: Path,
                                                            start_sender: Callable[..., SenderProcess]) -> None:
    sender = start_sender(waldir, "--auth", "trust", "--max-connections", "2")
    idle = [half_startup(sender) for _ in range(5)]
    try:
        wait_until(sender.children, what="5 connection processes", done=lambda ch: len(ch) == 5)
        # two real standbys get in although five unauthenticated clients are connected
        a = authenticated(sender)
        b = authenticated(sender)
        # a third authenticated one is over the limit: PostgreSQL's error, after authentication
        c = RawClient(sender.host, sender.port)
        c.startup()
        f = error_fields(c.until(b"E")[-1][1])
        assert (f["S"], f["C"]) == ("FATAL", "53300")
        assert f["M"] == "number of requested standby connections exceeds max_wal_senders (currently 2)"
        c.close()
        # one leaves: its place is free again
        a.message(b"X", b"")
        a.close()
        wait_until(sender.children, what="the first standby's process gone", done=lambda ch: len(ch) == 6)
        d = authenticated(sender)
        d.close()
        b.close()
    finally:
        for c in idle:
            c.close()


def test_authentication_timeout_closes_silent_clients(waldir: Path,
                                                      start_sender: Callable[..., SenderProcess]) -> None:
    sender = start_sender(waldir, "--auth", "trust", "--authentication-timeout", "2s")
    idle = [half_startup(sender) for _ in range(3)]
    # a client that trickles a byte now and then is held to the same deadline
    trickle = RawClient(sender.host, sender.port, timeout=60)
    for b in b"\x00\x00\x00":
        trickle.send(bytes([b]))
    for c in idle + [trickle]:
        assert c.closed()  # EOF from the server, well before the client's own 60 s
        c.close()
    wait_until(lambda: [e for e in events(sender) if e["event"] == "authentication_timeout"],
               what="authentication_timeout events", done=lambda ev: len(ev) == 4)
    wait_until(sender.children, what="no connection process left", done=lambda ch: ch == [])


def test_startup_flood_is_turned_away_at_accept(waldir: Path,
                                                start_sender: Callable[..., SenderProcess]) -> None:
    sender = start_sender(waldir, "--auth", "trust", "--max-startup-connections", "3")
    idle = [half_startup(sender) for _ in range(3)]
    try:
        wait_until(sender.children, what="3 connection processes", done=lambda ch: len(ch) == 3)
        extra = RawClient(sender.host, sender.port)
        assert extra.closed()
        extra.close()
        refused = [e for e in events(sender) if e["event"] == "connection_refused"]
        assert refused and refused[0]["reason"] == "too many connections not yet authenticated"
        assert len(sender.children()) == 3  # no process for the refused one
        # an authenticated standby does not count against the startup bound
        for c in idle:
            c.close()
        wait_until(sender.children, what="idle processes gone", done=lambda ch: ch == [])
        a = authenticated(sender)
        more = [half_startup(sender) for _ in range(3)]
        wait_until(sender.children, what="4 connection processes", done=lambda ch: len(ch) == 4)
        a.close()
        for c in more:
            c.close()
    finally:
        for c in idle:
            c.close()


@pytest.mark.parametrize("args, message", [
    (["--authentication-timeout", "0"], "--authentication-timeout 0: at least 1s"),
    (["--authentication-timeout", "11min"], "--authentication-timeout"),
    (["--max-startup-connections", "0"], "--max-startup-connections"),
])
def test_new_options_are_validated(sender_binary: Path, waldir: Path, args: list[str], message: str) -> None:
    import subprocess
    r = subprocess.run([str(sender_binary), "-D", str(waldir), "--listen", "127.0.0.1:1", "--auth", "trust",
                        *args], capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 2, r
    assert message in r.stderr


def test_many_startup_parameters_are_accepted_and_ignored(waldir: Path,
                                                          start_sender: Callable[..., SenderProcess]) -> None:
    sender = start_sender(waldir, "--auth", "trust")
    params = {f"opt{i}": f"value{i}" for i in range(100)}
    # the ones that matter come last, past the 64 the parser indexes
    params.update({"application_name": "many-params", "user": "replicator", "replication": "true"})
    c = authenticated(sender, params)
    c.query("IDENTIFY_SYSTEM")
    assert [t for t, _ in c.until(b"Z")] == [b"T", b"D", b"C", b"Z"]
    c.close()
    conn = [e for e in events(sender) if e["event"] == "connection"]
    assert conn[-1]["application_name"] == "many-params" and conn[-1]["user"] == "replicator"
