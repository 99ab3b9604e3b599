"""Bad input about versions, end to end through the programs (no server
starts): an unknown or missing major on the command line, WAL of a major
walsim does not know, base backup options that make no sense."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
CLI = TOP / "tools" / "walsim-cli"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_unknown_major_on_the_command_line() -> None:
    for args in (("run", "scenarios/tutorial.toml", "--pg", "12"), ("cluster", "up", "--pg", "19"),
                 ("conform", "receiver", "--pg", "9", "--command", "x %s %d")):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "is not a supported PostgreSQL major (13, 14, 15, 16, 17, 18)" in r.stderr, r.stderr


def test_missing_major_names_make_deps_versions(tmp_path: Path) -> None:
    """A major that is not installed stops `run` before anything starts."""
    r = _cli("run", str(TOP / "scenarios" / "tutorial.toml"), "--pg", "17", "--out", str(tmp_path / "runs"),
             env={"WALSIM_PG_CACHE": str(tmp_path / "no-cache")})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "PostgreSQL 17 not found" in r.stderr and "make deps-versions" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()


def test_wal_of_an_unknown_major_names_the_magic(tmp_path: Path, walsim_build: Path) -> None:
    """walsim-sender refuses a directory whose WAL carries a magic of no
    supported major (here PostgreSQL 12's D101), naming it and the known ones."""
    src = TOP / "tests" / "data" / "wal-17"
    seg = next(p for p in sorted(src.iterdir()) if len(p.name) == 24)
    data = bytearray(seg.read_bytes())
    data[0:2] = (0xD101).to_bytes(2, "little")
    (tmp_path / seg.name).write_bytes(bytes(data))
    r = subprocess.run([str(walsim_build / "bin" / "walsim-sender"), "-D", str(tmp_path), "--listen",
                        "127.0.0.1:0", "--no-follow", "--auth", "trust"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "first page has magic D101, which is of" in r.stderr and "no PostgreSQL version walsim knows (13: D106, 14: D10D, 15: D110, " \
        "16: D113, 17: D116, 18: D118)" in r.stderr, r.stderr


def test_one_directory_one_major(tmp_path: Path, walsim_build: Path) -> None:
    for d in ("wal-13", "wal-17"):
        seg = next(p for p in sorted((TOP / "tests" / "data" / d).iterdir()) if len(p.name) == 24)
        (tmp_path / seg.name).write_bytes(seg.read_bytes())
    r = subprocess.run([str(walsim_build / "bin" / "walsim-sender"), "-D", str(tmp_path), "--listen",
                        "127.0.0.1:0", "--no-follow", "--auth", "trust"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "one directory must hold one major's WAL" in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["-R", "-D", "x"], "-R, --checkpoint and --label need --base-backup"),
    (["--base-backup", "-D", "x", "--create-slot", "-S", "s"], "--base-backup cannot be combined"),
    (["--base-backup", "-D", "x", "-c", "slow"], 'invalid checkpoint argument "slow"'),
    (["--base-backup", "-D", "x", "-l", "it's"], "invalid --label"),
])
def test_receiver_base_backup_usage(args: list[str], message: str, walsim_build: Path) -> None:
    r = subprocess.run([str(walsim_build / "bin" / "walsim-receiver"), *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and message in r.stderr, r.stderr
