"""walsim-receiver against a server that accepts and never answers (issue 16,
item 6; docs/security.md): one SIGTERM stops it promptly while the
connection attempt hangs, and a connection attempt gives up after the
default connect timeout.  Before the fix the first SIGTERM was ignored
(libpq's blocking connect retried its poll) and the attempt never ended.

No PostgreSQL needed: the silent server is a listening socket nobody answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled, wait_until


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """Accepts TCP connections (the kernel completes the handshake) and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv
    srv.close()


@pytest.fixture
def receiver_binary(walsim_build: Path) -> Path:
    return walsim_build / "bin" / "walsim-receiver"


def start(binary: Path, tmp_path: Path, port: int, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    wal = tmp_path / "wal"
    wal.mkdir(exist_ok=True)
    log = tmp_path / "receiver.log"
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([str(binary), "-D", str(wal), "-h", "127.0.0.1", "-p", str(port), "-U", "nobody",
                             "--json-events", str(events), *args],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log, events


def connected_to(srv: socket.socket) -> bool:
    """True once the receiver's TCP connection waits in the server's backlog or was accepted."""
    port = srv.getsockname()[1]
    out = subprocess.run(["ss", "-Htn", "state", "established", f"dport = :{port}"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())


def test_one_sigterm_stops_a_hung_connection_attempt(receiver_binary: Path, tmp_path: Path,
                                                     silent_server: socket.socket) -> None:
    proc, log, events = start(receiver_binary, tmp_path, silent_server.getsockname()[1],
                              "--connect-timeout", "600")
    try:
        wait_until(lambda: connected_to(silent_server), what="the receiver connected to the silent server")
        time.sleep(0.5)  # inside libpq's wait for the server's answer
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=scaled(5))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, log.read_text()
    stopped = [json.loads(line) for line in events.read_text().splitlines() if '"stopped"' in line]
    assert stopped and stopped[-1]["reason"] == "signal"


def test_default_connect_timeout_applies(receiver_binary: Path, tmp_path: Path,
                                         silent_server: socket.socket) -> None:
    proc, log, _events = start(receiver_binary, tmp_path, silent_server.getsockname()[1], "-n")
    try:
        rc = proc.wait(timeout=scaled(60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 1
    assert "could not connect: timed out after 10 s (--connect-timeout)" in log.read_text()


def test_connect_timeout_option_is_validated(receiver_binary: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(receiver_binary), "-D", str(tmp_path), "--connect-timeout", "0"],
                       capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 2
    assert "invalid connect timeout" in r.stderr
