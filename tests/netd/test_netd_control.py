"""walsim-netd's control protocol: each command takes effect, on listeners and
live connections, before the next one is read, also when a client writes
several commands at once (pipelining) instead of waiting for each reply.

Commands sent in one write reach netd in one read, so these tests do not
depend on timing: before every command was settled on its own, a rule added
and removed in the same read never paused a listener nor reset a
connection (the CI flake of test_refuse_ignore_leaves_connections_in_the_backlog)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from walsim.sim.netd import Netd, NetdError
from walsim.core.timeouts import scaled, wait_until


def pipelined(netd: Netd, *lines: str) -> list[str]:
    """Send every line in one write on a new control connection; the replies."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(scaled(10))
        s.connect(str(netd.control))
        s.sendall("".join(line + "\n" for line in lines).encode())
        buf = b""
        while buf.count(b"\n") < len(lines):
            chunk = s.recv(65536)
            if not chunk:
                raise NetdError(f"walsim-netd closed the control connection after {buf!r}")
            buf += chunk
    return buf.decode().splitlines()


@pytest.mark.parametrize("remove", ["heal", "heal link=l1", "fault del ig"])
def test_pipelined_refuse_ignore_pauses_and_resumes_accepting(netd_factory: Any, listener: socket.socket,
                                                              remove: str) -> None:
    netd = netd_factory()
    netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    replies = pipelined(netd, "fault add id=ig link=l1 kind=refuse mode=ignore", remove)
    assert [r.split(" ", 1)[0] for r in replies] == ["ok", "ok"], replies
    # the trace is written before each reply: complete once the replies are in
    events = [e["event"] for e in netd.trace()]
    assert events[events.index("fault_add"):] == [
        "fault_add", "accept_paused", "fault_del" if remove.startswith("fault") else "heal", "accept_resumed"]


@pytest.mark.parametrize("kind, remove", [("reset", "heal"), ("close", "fault del r")])
def test_pipelined_close_or_reset_reaches_live_connections(netd_factory: Any, listener: socket.socket,
                                                           kind: str, remove: str) -> None:
    netd = netd_factory()
    host, port = netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    with socket.create_connection((host, port), timeout=scaled(10)) as c:
        wait_until(lambda: netd.links()[0]["active"], what="the connection proxied", done=lambda n: n == 1)
        replies = pipelined(netd, f"fault add id=r link=l1 kind={kind}", remove)
        assert [r.split(" ", 1)[0] for r in replies] == ["ok", "ok"], replies
        closes = [e for e in netd.trace() if e["event"] == "conn_close"]
        assert [(e["reason"], e["reset"]) for e in closes] == [(f"{kind} by rule r", kind == "reset")]
        if kind == "reset":
            with pytest.raises(ConnectionResetError):
                c.recv(1)
        else:
            assert c.recv(1) == b""
    assert netd.links()[0]["active"] == 0
    assert netd.faults() == []


def test_pipelined_commands_answer_in_order(netd_factory: Any, listener: socket.socket) -> None:
    """Replies come one per command, in order; a refused command in the middle
    changes nothing and the ones after it still run."""
    netd = netd_factory()
    netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    replies = pipelined(netd, "fault add id=a link=l1 kind=stall", "fault add id=a link=l1 kind=stall",
                        "fault add id=b link=l1 kind=delay ms=abc", "faults", "fault del a", "faults", "ping")
    assert replies[0].startswith('ok {"id":"a"')
    assert replies[1] == "err id=a: a fault with this id exists (fault del a first)"
    assert replies[2] == "err ms=abc: not a non-negative integer"
    assert replies[3].startswith('ok [{"id":"a"') and '"id":"b"' not in replies[3]
    assert replies[4:] == ['ok {"deleted":"a"}', "ok []", 'ok "pong"']
