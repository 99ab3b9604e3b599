"""Sender conformance: the baselines (walsim-sender and PostgreSQL 15 pass
every applicable check) and the misbehaviour matrix (each
``walsim-sender --misbehave`` kind is caught by the checks named here)."""

from __future__ import annotations

from collections.abc import Callable
import os
import subprocess
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.conform.probe import Target
from walsim.conform.results import FAIL, PASS, SKIPPED, Report
from walsim.conform.sender import SenderContext, run_sender_checks
from walsim.core.lsn import Lsn
from walsim.pg.pgbin import PgBin

from conform_support import Sender, served_dir

CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"
ALL_BUT_SHUTDOWN = [f"S{i:02d}" for i in range(1, 37) if i != 34]


def _assert_clean(report: Report, allowed_skips: set[str]) -> None:
    print(report.to_table(160))
    failed = [f"{r.id}: {r.evidence}" for r in report.results if r.status == FAIL]
    assert not failed, "\n".join(failed)
    skipped = {r.id for r in report.results if r.status == SKIPPED}
    assert skipped <= allowed_skips, {r.id: r.evidence for r in report.results if r.id in skipped - allowed_skips}


def test_walsim_sender_baseline(start_sender: Callable[..., Sender], tmp_path: Path, pg_bin: PgBin) -> None:
    waldir, append = served_dir(tmp_path / "wal", cut=True)
    sender = start_sender(waldir)
    ctx = SenderContext(sender.target(), waldir=waldir, wal_generator=append, pg_bindir=pg_bin.bindir)
    report = run_sender_checks(ctx, ALL_BUT_SHUTDOWN)
    _assert_clean(report, {"S04"})
    assert report.counts()[PASS] == 34

    # graceful shutdown on a sender of its own (it ends the sender)
    other = start_sender(served_dir(tmp_path / "wal2")[0])
    ctx = SenderContext(other.target(), waldir=other.waldir, shutdown=other.stop)
    shut = run_sender_checks(ctx, ["S34"])
    _assert_clean(shut, set())


def receivewal_dir(pg_bin: PgBin) -> Path | None:
    """Where a pg_receivewal that works with this major is (Debian's 15 for 13-15), or None."""
    return pg_bin.path("pg_receivewal").parent if pg_bin.has("pg_receivewal") else None


@pytest.mark.pg
def test_postgres_baseline(cluster: Cluster, tmp_path: Path, pg_bin: PgBin) -> None:
    """PostgreSQL itself (15, or WALSIM_PG), on timeline 2 after a promotion:
    every check that fails here would be a wrong check.  S35 needs a
    pg_receivewal that streams from this major (none for 16+ here)."""
    pg1 = cluster.create_primary("pg1", settings={"wal_sender_timeout": "4s"})
    s1 = cluster.create_standby("s1", pg1, settings={"wal_sender_timeout": "4s"})
    pg1.execute("CREATE TABLE t AS SELECT g, repeat('x', 200) AS v FROM generate_series(1, 3000) g")
    pg1.wait_for_catchup(s1)
    assert s1.promote() == 2
    s1.execute("INSERT INTO t SELECT g, repeat('y', 200) FROM generate_series(1, 2000) g")
    s1.checkpoint()
    # As an archive or a pg_wal that recycled it would: the old timeline's copy
    # of the switch segment is gone, so S30 (served from timeline 2's file) applies.
    switch = Lsn.parse((s1.data_dir / "pg_wal" / "00000002.history").read_text().split()[1])
    old = s1.data_dir / "pg_wal" / f"00000001{switch >> 32:08X}{(switch & 0xFFFFFFFF) >> 24:08X}"
    if old.exists():
        old.unlink()

    def generate() -> None:
        s1.execute("SELECT pg_logical_emit_message(false, 'walsim-conform', repeat('x', 4000))")

    target = Target(s1.host, s1.port, cluster.replication_user, str(cluster.passfile))
    receivewal = receivewal_dir(pg_bin)
    ctx = SenderContext(target, waldir=s1.data_dir / "pg_wal", wal_generator=generate,
                        pg_bindir=receivewal)
    report = run_sender_checks(ctx, ALL_BUT_SHUTDOWN,
                               label=f"PostgreSQL {pg_bin.version} (promoted, timeline 2)")
    # version-keyed: no pg_receivewal streams from 16+ here; 13 and 14 have no READ_REPLICATION_SLOT
    _assert_clean(report, {"S04"} | ({"S35"} if receivewal is None else set())
                  | ({"S36"} if pg_bin.major < 15 else set()))
    assert report.counts()[PASS] >= 31, report.counts()
    (tmp_path / f"pg{pg_bin.major}-sender.json").write_text(report.to_json())
    if os.environ.get("WALSIM_VERSIONS_OUT"):      # tools/test-versions: the version x check table
        Path(os.environ["WALSIM_VERSIONS_OUT"], f"conform-sender-pg{pg_bin.major}.json").write_text(report.to_json())

    # the command line against the same node: --sql makes it write WAL for S22
    cli = subprocess.run([str(CLI), "conform", "sender", "--target", s1.conninfo(replication=True),
                          "--sql", s1.conninfo(), "--only", "S05,S22", "-q", "--json", "-"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "2 passed, 0 failed, 0 skipped" in cli.stdout, cli.stdout

    ctx = SenderContext(target, waldir=s1.data_dir / "pg_wal", shutdown=lambda: s1.stop("fast"))
    _assert_clean(run_sender_checks(ctx, ["S34"]), set())


# Each misbehaviour and the checks that must catch it.
MATRIX = {
    "wrong-sysid": {"S05"},
    "lower-timeline": {"S06"},
    "wrong-history-name": {"S09"},
    "no-keepalive": {"S23"},
    "no-copydone": {"S28"},
    "single-commandcomplete": {"S28"},
    "gap": {"S18"},
    "unflushed": {"S21"},
    "short-keepalive": {"S26"},
    "bitflip": {"S19"},
    "take-back": {"S06"},
}
# the slow ones (timeouts, pg_receivewal, slots) are left out of the matrix
MATRIX_CHECKS = [c for c in ALL_BUT_SHUTDOWN if c not in ("S24", "S25", "S32", "S35")]


@pytest.mark.parametrize("kind", sorted(MATRIX))
def test_misbehaviour_is_caught(kind: str, start_sender: Callable[..., Sender], tmp_path: Path) -> None:
    waldir, _ = served_dir(tmp_path / "wal")
    sender = start_sender(waldir, "--misbehave", kind)
    report = run_sender_checks(SenderContext(sender.target(), waldir=waldir), MATRIX_CHECKS,
                               label=f"walsim-sender --misbehave {kind}")
    print(report.to_table(160))
    failed = {r.id for r in report.results if r.status == FAIL}
    assert MATRIX[kind] <= failed, f"{kind}: expected {MATRIX[kind]} to fail, failed: {failed}"
