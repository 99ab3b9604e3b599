"""walsim-netd against a hostile local user (issue 16, items 3, 4 and 7;
docs/security.md): a control client that never reads its replies, a flood of
idle connections that exhausts the descriptor limit, and control lines that
are empty, binary, or repeat a key.

Each test failed on the code before the fix: netd froze in ``reply()``
(item 3), spun at 100% CPU with EMFILE (item 4), answered nothing to an
empty or NUL-led line and took the last of two values (item 7)."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

from walsim.core.errors import WaitTimeout
from walsim.core.timeouts import scaled, wait_until
from walsim.sim.netd import Netd, NetdError


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def control_lines(netd: Netd, payload: bytes, n_replies: int) -> list[bytes]:
    """Send raw bytes on a new control connection; the first n reply lines."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(scaled(10))
        s.connect(str(netd.control))
        s.sendall(payload)
        buf = b""
        while buf.count(b"\n") < n_replies:
            chunk = s.recv(65536)
            assert chunk, f"netd closed the connection after {buf!r}"
            buf += chunk
    return buf.split(b"\n")[:n_replies]


# ------------------------------------------------------------------ item 3

def test_client_that_never_reads_is_disconnected_and_netd_keeps_serving(netd_factory: Any,
                                                                        listener: socket.socket) -> None:
    """A control client writes commands for ever and never reads a reply: netd
    buffers its replies up to a bound, then disconnects it; meanwhile another
    control client and a proxied connection are served."""
    netd = netd_factory()
    host, port = netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    hostile = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hostile.connect(str(netd.control))
    hostile.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        line = b"stats\n" * 2000
        hostile.settimeout(0.2)
        while not stop.is_set():
            try:
                sent[0] += hostile.send(line)
            except socket.timeout:
                continue  # netd stopped reading us: keep trying until told to stop
            except OSError:
                return  # disconnected
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        # the flood has queued far more replies than any buffer holds
        wait_until(lambda: sent[0] > 4 << 20 or not t.is_alive(), what="the flood to pass 4 MB",
                   timeout=scaled(30))
        # netd still answers everyone else at once
        assert netd.command("ping") == "pong"
        with socket.create_connection((host, port), timeout=scaled(10)):
            wait_until(lambda: netd.links()[0]["active"], what="a proxied connection", done=lambda n: n >= 1)
        stats = wait_until(lambda: netd.command("stats"), what="the flooding client disconnected",
                           done=lambda st: st["control_overflows"] >= 1, timeout=scaled(30))
        assert stats["control_overflows"] == 1
    finally:
        stop.set()
        t.join(timeout=scaled(10))
        hostile.close()
    assert any(e["event"] == "control_overflow" for e in netd.trace())


def test_control_connections_are_capped(netd_factory: Any) -> None:
    netd = netd_factory()
    held = []
    try:
        for _ in range(32):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(netd.control))
            held.append(s)
        # netd's own client (the fixture's) is one of the 32: the 33rd is turned away with a reason
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.connect(str(netd.control))  # blocking: waits while netd's backlog is full
        extra.settimeout(scaled(10))
        assert extra.recv(200) == b"err too many control connections\n"
        assert extra.recv(200) == b""
        extra.close()
    finally:
        for s in held:
            s.close()
    # closed clients free their places (netd may not have read their EOFs yet:
    # a connection made before that is turned away too, so each try connects anew)
    def stats() -> Any:
        netd._disconnect()
        return netd.command("stats")
    assert wait_until(stats, what="the held clients gone", done=lambda st: st["control_clients"] == 1,
                      tolerate=(NetdError, OSError))["control_turned_away"] >= 1


# ------------------------------------------------------------------ item 4

def test_out_of_descriptors_no_spin_and_idle_clients_time_out(netd_factory: Any, listener: socket.socket) -> None:
    """With the descriptor limit reached by idle connections (which any local user
    can open), netd does not busy-wait, still answers its control socket, closes
    connections that never send a startup packet after --startup-timeout, and
    then accepts new clients again."""
    netd = netd_factory(max_files=64, extra_args=["--startup-timeout", "3s"])
    host, port = netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    idle: list[socket.socket] = []
    try:
        # each proxied connection costs netd two descriptors (client and upstream).
        # When one descriptor is left, accept() succeeds and the upstream socket()
        # fails (the client is closed): accept() itself fails only when none is
        # left, so one more control connection shifts the count by one if needed.
        extra_control = None
        for attempt in range(2):
            for _ in range(40):
                idle.append(socket.create_connection((host, port), timeout=scaled(10)))
            try:
                wait_until(lambda: netd.command("stats"), what="netd out of descriptors",
                           done=lambda st: st["fd_shortages"] > 0, timeout=scaled(2))
                break
            except WaitTimeout:
                if attempt == 1:
                    raise
                for c in idle:
                    c.close()
                idle.clear()
                wait_until(lambda: netd.links()[0]["active"], what="idle clients gone", done=lambda n: n == 0)
                extra_control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                extra_control.connect(str(netd.control))
                idle.append(extra_control)
        # CPU use over a second of wall time: a spinning loop burns about all of it
        before, t0 = cpu_seconds(netd.proc.pid), time.monotonic()
        time.sleep(1.0)
        used = cpu_seconds(netd.proc.pid) - before
        elapsed = time.monotonic() - t0
        assert used < 0.3 * elapsed, f"netd used {used:.2f} s of CPU in {elapsed:.2f} s while out of descriptors"
        assert netd.command("ping") == "pong"
        # the idle clients never sent a startup packet: closed after the timeout
        st = wait_until(lambda: netd.command("stats"), what="idle connections timed out",
                        done=lambda st: st["startup_timeouts"] >= 20, timeout=scaled(30))
        assert st["links"][0]["refused"] > 0  # the ones accepted and closed while out of descriptors
        closes = [e for e in netd.trace() if e["event"] == "conn_close"]
        assert any(e["reason"] == "no startup packet within 3 s" for e in closes)
    finally:
        for s in idle:
            s.close()
    # a new client gets in and is proxied
    with socket.create_connection((host, port), timeout=scaled(10)) as c:
        c.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest: counts as a startup
        wait_until(lambda: netd.links()[0]["active"], what="a new connection proxied", done=lambda n: n >= 1)


def test_startup_timeout_option_is_validated(tmp_path: Any) -> None:
    import subprocess
    from walsim.sim.netd import netd_binary
    r = subprocess.run([str(netd_binary()), "--control", str(tmp_path / "s"), "--startup-timeout", "soon"],
                       capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 2
    assert "--startup-timeout" in r.stderr and "soon" in r.stderr


# ------------------------------------------------------------------ item 7

@pytest.mark.parametrize("payload, expect", [
    (b"\n", b"err empty line: expected a command"),
    (b"   \t \n", b"err empty line: expected a command"),
    (b"\r\n", b"err empty line: expected a command"),
    (b"\x00\x01\x02\xff\n", b"err a NUL byte at offset 0: control lines are text"),
    (b"ping\x00 shutdown\n", b"err a NUL byte at offset 4: control lines are text"),
    (b"\x01\x02garbage\n", b"err a control byte 0x01 at offset 0: control lines are text"),
    (b"\xff\xfe\n", None),  # not text a command names: an error, one line
])
def test_every_line_gets_exactly_one_reply(netd_factory: Any, payload: bytes, expect: bytes | None) -> None:
    netd = netd_factory()
    replies = control_lines(netd, payload + b"ping\n", 2)
    if expect is None:
        assert replies[0].startswith(b"err unknown command"), replies
    else:
        assert replies[0] == expect, replies
    assert replies[1] == b'ok "pong"'
    assert netd.running


@pytest.mark.parametrize("line, word, key", [
    ("link add name=a name=b listen=127.0.0.1:0 upstream=127.0.0.1:1", "name=b", "name"),
    ("fault add id=x id=y link=l1 kind=close", "id=y", "id"),
    ("fault add id=x link=l1 kind=delay ms=1 ms=2", "ms=2", "ms"),
    ("heal link=l1 link=l2", "link=l2", "link"),
    ("stats link=l1 link=l1", "link=l1", "link"),
])
def test_duplicate_keys_are_errors_naming_the_word(netd_factory: Any, listener: socket.socket,
                                                  line: str, word: str, key: str) -> None:
    netd = netd_factory()
    netd.add_link("l1", "127.0.0.1", listener.getsockname()[1])
    reply = netd.raw(line)
    assert reply.startswith("err "), reply
    assert f'"{word}"' in reply and f'duplicate key "{key}"' in reply, reply
    # nothing was changed
    assert [lk["name"] for lk in netd.links()] == ["l1"]
    assert netd.command("fault list") == []
