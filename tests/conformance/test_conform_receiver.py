"""Receiver conformance: pg_receivewal 15 and walsim-receiver pass every
applicable check; a broken receiver is caught.  The baselines use the WAL and
the server_version of ``WALSIM_PG`` (default 15): walsim-sender speaks that
major, and pg_receivewal 15 only runs against 13 to 15."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from walsim.conform.receiver import ReceiverContext, run_receiver_checks
from walsim.conform.results import FAIL, PASS, SKIPPED
from walsim.pg import versions
from walsim.pg.pgbin import PgBin

# not applicable to a run without a 10 s idle period, a bad segment size, or a slot
EXPECTED_SKIPS = {"R11", "R14", "R17"}


def _baseline(command: str, workdir: Path, pg_version: int | None = None, label: str = "") -> None:
    ctx = ReceiverContext(command, workdir=workdir, pg_version=pg_version)
    report = run_receiver_checks(ctx)
    print(report.to_table(160))
    failed = [f"{r.id}: {r.evidence}" for r in report.results if r.status == FAIL]
    assert not failed, "\n".join(failed)
    assert {r.id for r in report.results if r.status == SKIPPED} == EXPECTED_SKIPS
    assert report.counts()[PASS] == 17 - len(EXPECTED_SKIPS)
    (workdir / "report.json").write_text(report.to_json())
    if os.environ.get("WALSIM_VERSIONS_OUT") and label:   # tools/test-versions: the version x check table
        Path(os.environ["WALSIM_VERSIONS_OUT"], f"conform-receiver-{label}-pg{pg_version or 15}.json").write_text(
            report.to_json())


def test_pg_receivewal_baseline(pg_bin: PgBin, tmp_path: Path) -> None:
    if not pg_bin.has("pg_receivewal"):
        pytest.skip(f"no pg_receivewal streams from PostgreSQL {pg_bin.major} here (Debian's 15 stops at 15)")
    _baseline(f"{shlex.quote(str(pg_bin.path('pg_receivewal')))} -d '%s' -D %d -n --no-password", tmp_path,
              versions.from_environment(), "pg_receivewal")


def test_walsim_receiver_baseline(walsim_build: Path, tmp_path: Path) -> None:
    _baseline(f"{shlex.quote(str(walsim_build / 'bin' / 'walsim-receiver'))} -d '%s' -D %d -n", tmp_path,
              versions.from_environment(), "walsim-receiver")


def test_broken_receiver_is_caught(tmp_path: Path) -> None:
    bad = Path(__file__).with_name("bad_receiver.py")
    ctx = ReceiverContext(f"/usr/bin/python3 {shlex.quote(str(bad))} '%s' %d", workdir=tmp_path)
    report = run_receiver_checks(ctx, ["R03", "R09", "R10"])
    print(report.to_table(160))
    results = report.by_id()
    assert results["R03"].status == FAIL and "0/B00100" in results["R03"].evidence
    assert results["R09"].status == FAIL      # no status update after CopyBoth
    assert results["R10"].status == FAIL and "never answered" in results["R10"].evidence


def test_bad_command_is_refused(tmp_path: Path) -> None:
    from walsim.conform.probe import ConformError
    with pytest.raises(ConformError, match="must contain %s"):
        ReceiverContext("pg_receivewal -D %d", workdir=tmp_path)


@pytest.mark.parametrize("receiver", ["pg_receivewal", "walsim-receiver"])
def test_slot_mode(receiver: str, pg_bin: PgBin, walsim_build: Path, tmp_path: Path) -> None:
    """With -S the suite creates the slot on walsim-sender first; R17 then runs,
    and R09 holds across the timeline switch (where pg_receivewal reports flush
    = the old timeline's end with write = the new start)."""
    binary = pg_bin.path("pg_receivewal") if receiver == "pg_receivewal" else walsim_build / "bin" / "walsim-receiver"
    extra = " --no-password" if receiver == "pg_receivewal" else ""
    ctx = ReceiverContext(f"{shlex.quote(str(binary))} -d '%s' -D %d -n -S conformslot{extra}", workdir=tmp_path)
    report = run_receiver_checks(ctx, ["R06", "R09", "R12", "R17"])
    print(report.to_table(160))
    assert [r.status for r in report.results] == [PASS] * 4, report.to_table(160)
    assert 'SLOT "conformslot"' in report.by_id()["R17"].evidence


def test_missing_fsyncs_are_caught(pg_bin: PgBin, tmp_path: Path) -> None:
    wrapper = Path(__file__).with_name("nosync_receiver.py")
    ctx = ReceiverContext(f"/usr/bin/python3 {shlex.quote(str(wrapper))} "
                          f"{shlex.quote(str(pg_bin.path('pg_receivewal')))} -d '%s' -D %d -n --no-password",
                          workdir=tmp_path)
    report = run_receiver_checks(ctx, ["R08"])
    print(report.to_table(160))
    r08 = report.by_id()["R08"]
    assert r08.status == FAIL and "without an fsync" in r08.evidence, r08


@pytest.mark.parametrize("receiver,expected", [("pg_receivewal", PASS), ("walsim-receiver -s 0", FAIL)])
def test_status_cadence(receiver: str, expected: str, pg_bin: PgBin, walsim_build: Path,
                        tmp_path: Path) -> None:
    """R11 (--long): pg_receivewal's default 10 s status interval passes; a
    receiver whose periodic status updates are off fails once nothing pings it."""
    if receiver == "pg_receivewal":
        command = f"{shlex.quote(str(pg_bin.path('pg_receivewal')))} -d '%s' -D %d -n --no-password"
    else:
        command = f"{shlex.quote(str(walsim_build / 'bin' / 'walsim-receiver'))} -d '%s' -D %d -n -s 0"
    report = run_receiver_checks(ReceiverContext(command, workdir=tmp_path, long=True), ["R11"])
    print(report.to_table(160))
    assert report.results[0].status == expected, report.results[0].evidence


def test_reactions_to_bitflip(pg_bin: PgBin, walsim_build: Path, tmp_path: Path) -> None:
    """The reactions report (observed, not judged): pg_receivewal keeps a
    flipped bit below what it acknowledged; walsim-receiver verifies records,
    refuses it and keeps nothing wrong."""
    from walsim.conform.receiver import receiver_reaction
    pg = ReceiverContext(f"{shlex.quote(str(pg_bin.path('pg_receivewal')))} -d '%s' -D %d -n --no-password",
                         workdir=tmp_path / "pg")
    ours = ReceiverContext(f"{shlex.quote(str(walsim_build / 'bin' / 'walsim-receiver'))} -d '%s' -D %d -n",
                           workdir=tmp_path / "walsim")
    pg_reaction = receiver_reaction(pg, "bitflip")
    our_reaction = receiver_reaction(ours, "bitflip")
    print(pg_reaction, our_reaction, sep="\n")
    assert "differs from the source" in pg_reaction.damage
    assert our_reaction.damage == "none" and our_reaction.exit == "exit 1"
    assert "incorrect resource manager data checksum" in our_reaction.last_line
