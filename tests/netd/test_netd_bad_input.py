"""walsim-netd against bad input: malformed control commands, unknown links,
an upstream that is down, clients that are not PostgreSQL clients, bad
command lines.  netd must answer with a reason, change nothing, and keep
running."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from walsim.sim.netd import Netd, NetdError, netd_binary
from walsim.core.timeouts import scaled, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("line, reason", [
    ("bogus", 'unknown command "bogus"'),
    ("fault", "usage: fault add"),
    ("fault add id=f1 link=l1", "missing kind"),
    ("fault add id=f1 link=l1 kind=explode", "kind=explode: unknown fault kind"),
    ("fault add id=f1 link=l1 kind=delay", "needs ms=N"),
    ("fault add id=f1 link=l1 kind=delay ms=abc", "ms=abc: not a non-negative integer"),
    ("fault add id=f1 link=l1 kind=delay ms=10 colour=red", 'unknown key "colour"'),
    ("fault add id=f1 link=l1 kind=stall dir=sideways", "dir=sideways"),
    ("fault add id=f1 link=l1 kind=corrupt at_lsn=0/ZZ", "at_lsn=0/ZZ"),
    ("fault add id=f1 link=l1 kind=corrupt", "needs at_offset=N, at_lsn=X/X or nth=N"),
    ("fault add id=f1 link=l1 kind=drop", "needs msg="),
    ("fault add id=f1 link=l1 kind=drop msg=q", "msg=q: unknown message class"),
    ("fault add id=f1 link=l1 kind=bandwidth rate=0", "rate=0: must be positive"),
    ("fault add id=f1 link=l1 kind=delay ms=5 prob=2", "prob=2"),
    ("fault add id=f/1 link=l1 kind=stall", "id=f/1: character '/'"),
    ("fault add link=l1 kind=stall", "missing id"),
    ("fault add id=f1 link=nolink kind=stall", "link=nolink: no such link"),
    ("fault add id=f1 link=l1 kind=stall noequals", '"noequals": expected key=value'),
    ("fault del nothere", "fault del nothere: no such fault"),
    ("heal link=nolink", "link=nolink: no such link"),
    ("heal now", 'unknown word "now"'),
    ("stats link=nolink", "no such link"),
    ("link add name=x listen=127.0.0.1 upstream=127.0.0.1:1", 'expected HOST:PORT'),
    ("link add name=x listen=127.0.0.1:0 upstream=127.0.0.1:99999", 'bad port'),
    ("link add name=l1 listen=127.0.0.1:0 upstream=127.0.0.1:5", 'already exists'),
    ("link add name=bad/name listen=127.0.0.1:0 upstream=127.0.0.1:5", 'link name'),
    ("link del nolink", "no such link"),
])
def test_malformed_control_lines_change_nothing(netd_factory: Any, listener: socket.socket,
                                                line: str, reason: str) -> None:
    netd: Netd = netd_factory(seed=1)
    netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    netd.add_fault("keep", link="l1", kind="delay", ms=1)
    before = (netd.faults(), netd.links())
    reply = netd.raw(line)
    assert reply.startswith("err "), reply
    assert reason in reply
    # state unchanged (faults' run-time counters aside)
    after = (netd.faults(), netd.links())
    assert [f["id"] for f in after[0]] == [f["id"] for f in before[0]]
    assert [x["name"] for x in after[1]] == [x["name"] for x in before[1]]
    assert netd.command("ping") == "pong"


def test_duplicate_fault_id_is_refused(netd_factory: Any, listener: socket.socket) -> None:
    netd = netd_factory()
    netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    netd.add_fault("f1", link="l1", kind="stall")
    with pytest.raises(NetdError, match="exists"):
        netd.add_fault("f1", link="l1", kind="delay", ms=5)
    assert [f["kind"] for f in netd.faults()] == ["stall"]


def test_upstream_down_gives_client_a_clean_close(netd_factory: Any) -> None:
    netd = netd_factory()
    dead = free_port()  # nothing listens there
    host, port = netd.add_link("dead", "127.0.0.1", dead)
    with socket.create_connection((host, port), timeout=scaled(10)) as c:
        c.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest
        data = b""
        while True:
            chunk = c.recv(100)  # a FIN gives b"", an RST would raise
            if not chunk:
                break
            data += chunk
    assert netd.command("ping") == "pong"
    closes = wait_until(lambda: [e for e in netd.trace() if e["event"] == "conn_close"],
                        what="conn_close in the trace", done=bool)
    assert "Connection refused" in closes[0]["reason"]
    assert closes[0]["reset"] is False


def test_garbage_instead_of_startup_is_closed_and_logged(netd_factory: Any, listener: socket.socket) -> None:
    netd = netd_factory()
    host, port = netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x00\x00\x03abc", b"\x16\x03\x01\x02\x00" * 4):
        with socket.create_connection((host, port), timeout=scaled(10)) as c:
            c.sendall(junk)
            try:
                while c.recv(100):
                    pass
            except ConnectionResetError:
                pass
    closes = wait_until(lambda: [e for e in netd.trace() if e["event"] == "conn_close"],
                        what="three closes", done=lambda x: len(x) >= 3)
    assert all("protocol error from client" in e["reason"] for e in closes)
    assert "startup packet at stream offset 0" in closes[0]["reason"]
    assert "protocol error" in netd.log_path.read_text()
    assert netd.command("ping") == "pong"
    assert netd.stats("l1")["links"][0]["active"] == 0


def test_refuse_ignore_leaves_connections_in_the_backlog(netd_factory: Any, listener: socket.socket) -> None:
    """refuse mode=ignore: the handshake completes in the kernel, netd does not
    accept; after heal the waiting client is served."""
    netd = netd_factory()
    host, port = netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    netd.add_fault("ig", link="l1", kind="refuse", mode="ignore")
    with socket.create_connection((host, port), timeout=scaled(10)) as c:
        c.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest
        assert netd.links()[0]["accepted"] == 0
        netd.heal()
        wait_until(lambda: netd.links()[0]["accepted"], what="the waiting connection accepted", done=lambda n: n == 1)
        assert c.recv(1) == b"N"
    events = [e["event"] for e in netd.trace()]
    assert "accept_paused" in events and "accept_resumed" in events


@pytest.mark.parametrize("args, message", [
    ([], "--control PATH is required"),
    (["--control", "/tmp/x.sock", "--link", "nonsense"], "expected NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT"),
    (["--control", "/tmp/x.sock", "--seed", "-1"], "--seed -1"),
    (["--control", "/tmp/x.sock", "--fault", "id=a link=b kind=zap"], "kind=zap"),
    (["--control", "/tmp/x.sock", "--fault", "id=a link=b kind=stall"], "link=b: no such link"),
    (["--control", "/tmp/x.sock", "--tls", "maybe"], "--tls maybe"),
    (["--control", "/tmp/x.sock", "extra"], 'unexpected argument "extra"'),
])
def test_bad_command_line(args: list[str], message: str, tmp_path: Path) -> None:
    args = [a.replace("/tmp/x.sock", str(tmp_path / "x.sock")) for a in args]
    res = subprocess.run([str(netd_binary()), *args], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert message in res.stderr
