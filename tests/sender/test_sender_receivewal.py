"""pg_receivewal (PostgreSQL 15) streaming from walsim-sender must write
segment files byte-identical to the archive walsim-sender serves; with a
slot, the slot's restart_lsn is persisted; --synchronous works too."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until

from sender_support import (SenderProcess, archiving_primary, identify_system, replication_sql,
                            switch_and_archive)

pytestmark = pytest.mark.pg

SEGMENT_NAME_LEN = 24


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if len(p.name) == SEGMENT_NAME_LEN and all(c in "0123456789ABCDEF" for c in p.name))


def make_archive(cluster: Cluster, nsegments: int = 3) -> tuple[Path, list[str]]:
    primary, archive = archiving_primary(cluster)
    primary.execute("CREATE TABLE t (id int, v text)")
    for i in range(nsegments):
        primary.execute("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        switch_and_archive(primary, archive)
    return archive, segments(archive)


def receivewal(cluster: Cluster, sender: SenderProcess, outdir: Path, *args: str,
               endpos: str | None = None) -> subprocess.CompletedProcess[str]:
    conninfo = (f"host={sender.host} port={sender.port} user={cluster.replication_user} "
                f"passfile={cluster.passfile}")
    argv = [str(cluster.pg.path("pg_receivewal")), "-d", conninfo, "-D", str(outdir),
            "--no-loop", "--verbose", *args]
    if endpos:
        # pg_receivewal stops once it has received past --endpos (strictly)
        argv += ["--endpos", str(Lsn(Lsn(endpos) - 1))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=scaled(120))


def seeded_outdir(tmp_path: Path, archive: Path, first: str) -> Path:
    """An output directory holding the first archived segment, so that
    pg_receivewal (which starts after the newest segment it has) asks for
    all the following ones."""
    out = tmp_path / "received"
    out.mkdir()
    shutil.copy(archive / first, out / first)
    return out


def assert_identical(archive: Path, out: Path, names: list[str]) -> None:
    got = segments(out)
    assert got == names, f"pg_receivewal wrote {got}, archive has {names}"
    for name in names:
        assert (archive / name).read_bytes() == (out / name).read_bytes(), f"{name} differs"


def test_receivewal_identical_segments(cluster: Cluster, start_sender, tmp_path: Path) -> None:
    archive, names = make_archive(cluster)
    sender = start_sender(archive, "--passfile", str(cluster.passfile))
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    out = seeded_outdir(tmp_path, archive, names[0])
    r = receivewal(cluster, sender, out, endpos=xlogpos)
    assert r.returncode == 0, r.stderr
    assert_identical(archive, out, names)
    assert not list(out.glob("*.partial")), r.stderr


@pytest.mark.parametrize("synchronous", [False, True])
def test_receivewal_slot(cluster: Cluster, start_sender, tmp_path: Path, synchronous: bool) -> None:
    archive, names = make_archive(cluster)
    sender = start_sender(archive, "--passfile", str(cluster.passfile))
    _sysid, _tli, xlogpos = identify_system(sender, cluster)
    out = seeded_outdir(tmp_path, archive, names[0])

    created = receivewal(cluster, sender, out, "--slot", "rwslot", "--create-slot")
    assert created.returncode == 0, created.stderr
    row = replication_sql(sender, cluster, "READ_REPLICATION_SLOT rwslot")
    assert row.returncode == 0, row.stderr
    assert row.stdout.strip() == "physical||"      # exists, nothing reserved yet
    # a second creation is refused with PostgreSQL's message
    again = receivewal(cluster, sender, out, "--slot", "rwslot", "--create-slot")
    assert again.returncode != 0 and 'replication slot "rwslot" already exists' in again.stderr

    # pg_receivewal reports its flush position on the slot: with --synchronous
    # after each fsync, otherwise the end of the last complete segment every
    # --status-interval.  Once it has everything, the slot's restart_lsn
    # (persisted by the sender) reaches the end of WAL.
    extra = ["--synchronous"] if synchronous else ["--status-interval", "1"]
    conninfo = (f"host={sender.host} port={sender.port} user={cluster.replication_user} "
                f"passfile={cluster.passfile}")
    rw = subprocess.Popen([str(cluster.pg.path("pg_receivewal")), "-d", conninfo, "-D", str(out),
                           "--no-loop", "--verbose", "--slot", "rwslot", *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def restart_lsn() -> str:
            return replication_sql(sender, cluster, "READ_REPLICATION_SLOT rwslot").stdout.strip()
        wait_until(restart_lsn, what="the slot's restart_lsn to reach the end of WAL",
                   done=lambda row: row == f"physical|{xlogpos}|1", timeout=scaled(60),
                   logs=[sender.log])
    finally:
        rw.send_signal(signal.SIGINT)
        try:
            _out, err = rw.communicate(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            rw.kill()
            _out, err = rw.communicate()
    assert rw.returncode == 0, err
    assert_identical(archive, out, names)
    state = (archive / "walsim-sender.slots").read_text()
    assert f"rwslot {xlogpos} 0" in state      # persisted, and inactive again

    # an unknown slot: one row of NULLs for READ, 42704 for START
    row = replication_sql(sender, cluster, "READ_REPLICATION_SLOT nosuch")
    assert row.stdout.strip() == "||"
    bad = receivewal(cluster, sender, tmp_path, "--slot", "nosuch")
    assert bad.returncode != 0 and 'replication slot "nosuch" does not exist' in bad.stderr

    dropped = receivewal(cluster, sender, out, "--slot", "rwslot", "--drop-slot")
    assert dropped.returncode == 0, dropped.stderr
    assert replication_sql(sender, cluster, "READ_REPLICATION_SLOT rwslot").stdout.strip() == "||"
