"""walsim-sender's command line: invalid input is refused with exit status 2
and a message naming what is wrong, before anything listens."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled

DATA = Path(__file__).resolve().parents[1] / "data" / "wal"


def run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=scaled(30))


@pytest.fixture
def waldir(tmp_path: Path) -> Path:
    d = tmp_path / "wal"
    d.mkdir()
    for name in ("000000010000000000000009", "00000001000000000000000A"):
        shutil.copy(DATA / name, d / name)
    return d


@pytest.mark.parametrize("args, message", [
    ((), "-D WALDIR and --listen HOST:PORT are required"),
    (("--listen", "127.0.0.1:1"), "-D WALDIR and --listen HOST:PORT are required"),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--misbehave", "gap,bogus"), 'unknown kind "bogus"'),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--auth", "gss"), '--auth "gss"'),
    (("-D", "{dir}", "--listen", "127.0.0.1:1"), "needs --passfile"),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--auth", "trust", "--wal-sender-timeout", "5h"),
     'unknown unit "h"'),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--auth", "trust", "--system-id", "-3"), "--system-id"),
    (("-D", "{dir}", "--listen", "nocolon", "--auth", "trust"), "expected HOST:PORT"),
    (("-D", "/nonexistent/walsim", "--listen", "127.0.0.1:1", "--auth", "trust"), "/nonexistent/walsim"),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--passfile", "/nonexistent/pass"), "/nonexistent/pass"),
    (("-D", "{dir}", "--listen", "127.0.0.1:1", "--auth", "trust", "extra"), 'unexpected argument "extra"'),
])
def test_invalid_command_lines(sender_binary: Path, waldir: Path, args: tuple[str, ...], message: str) -> None:
    r = run(sender_binary, *[a.replace("{dir}", str(waldir)) for a in args])
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("walsim-sender: ")


def test_passfile_must_be_private(sender_binary: Path, waldir: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pass"
    pw.write_text("repl:secret\n")
    pw.chmod(0o644)
    r = run(sender_binary, "-D", str(waldir), "--listen", "127.0.0.1:1", "--passfile", str(pw))
    assert r.returncode == 2 and "group or world access" in r.stderr, r.stderr


def test_empty_and_foreign_directories(sender_binary: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(sender_binary, "-D", str(empty), "--listen", "127.0.0.1:1", "--auth", "trust")
    assert r.returncode == 2 and "no WAL segment files" in r.stderr, r.stderr
    (empty / "000000010000000000000001").write_bytes(b"\x00" * 8192)
    r = run(sender_binary, "-D", str(empty), "--listen", "127.0.0.1:1", "--auth", "trust")
    assert r.returncode == 2 and "000000010000000000000001" in r.stderr, r.stderr


def test_help(sender_binary: Path) -> None:
    r = run(sender_binary, "--help")
    assert r.returncode == 0 and "--misbehave" in r.stdout
