"""Every --misbehave kind against a real PostgreSQL 15 standby and
pg_receivewal 15: each must react as it does to a faulty primary.  The
observed reactions (log line or exit status) are printed and documented in
docs/sender.md; the assertions pin them down."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until

from sender_support import archiving_primary, identify_system, switch_and_archive

pytestmark = pytest.mark.pg


@dataclass
class Case:
    kind: str
    standby: str | None          # regex the standby's log must show (None: not run)
    receivewal: str | None       # regex in pg_receivewal's stderr (None: not run)
    receivewal_rc: int | None = None   # expected exit status
    timeline_switch: bool = False      # needs an archive with a promotion
    sender_args: tuple[str, ...] = ()
    standby_settings: tuple[tuple[str, str], ...] = ()
    reconnect: bool = False            # the reaction shows on the second connection
    receivewal_endpos: bool = True     # False: let pg_receivewal idle until it reacts
    unfinished_segment: bool = False   # add the primary's last, unfinished segment


CASES = [
    Case("wrong-sysid", r"database system identifier differs between the primary and standby",
         r"finished segment", 0),
    Case("lower-timeline", r"highest timeline 0 of the primary is behind recovery timeline 1",
         r"starting timeline 1 is not present in the server", 1),
    Case("wrong-history-name", r"primary reported unexpected file name for timeline history file of timeline 2",
         # PG15 pg_receivewal logs the error but goes on to timeline 2 and exits 0
         r"server reported unexpected history file name for timeline 2: 00000003\.history", 0,
         timeline_switch=True),
    Case("no-keepalive", r"terminating walreceiver due to timeout", None,
         standby_settings=(("wal_receiver_timeout", "3s"),)),
    Case("no-copydone", r"unexpected result status|error reading result of streaming command|"
                        r"could not receive data from WAL stream",
         # libpq ends the copy at the 'T'; pg_receivewal takes the row as the end of timeline
         r"switched to timeline 2 at", 0, timeline_switch=True),
    Case("single-commandcomplete", r"error reading result of streaming command",
         r"unexpected termination of replication stream", 1, timeline_switch=True),
    Case("gap", r"invalid magic number|invalid record length|contrecord|incorrect resource manager",
         r"got WAL data offset [0-9a-f]+, expected [0-9a-f]+", 1),
    Case("unflushed", r"invalid record length at|invalid magic number|record with incorrect prev-link",
         r"stopped log streaming", 0, unfinished_segment=True),
    Case("short-keepalive", r"invalid keepalive message received from primary",
         r"streaming header too small: 17", 1, sender_args=("--wal-sender-timeout", "1s"),
         receivewal_endpos=False),
    Case("bitflip", r"incorrect resource manager data checksum in record at|invalid record length|"
                    r"record with incorrect prev-link|invalid magic number", r"finished segment", 0),
    Case("take-back", r"ahead of the upstream server's flush position|ahead of the WAL flush position",
         None, reconnect=True),
]


def build_archive(cluster: Cluster, timeline_switch: bool, settings: dict[str, str],
                  unfinished_segment: bool = False):
    pg1, archive = archiving_primary(cluster)
    extra = {}
    if timeline_switch:
        extra = {"archive_mode": "on", "archive_command": f"cp %p {archive}/%f"}
        s1 = cluster.create_standby("s1", pg1, settings=extra)
    port = cluster.ports.reserve()
    standby = cluster.create_standby("s2", pg1, via=("127.0.0.1", port.port), start=False,
                                     settings=settings)
    port.release()
    pg1.execute("CREATE TABLE t (id int, v text)")
    pg1.execute("INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 30000) g")
    switch_and_archive(pg1, archive)
    if timeline_switch:
        pg1.execute("INSERT INTO t VALUES (0, 'last on tl1')")
        pg1.wait_for_catchup(s1)
        pg1.stop()
        s1.promote()
        s1.execute("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1, 1000) g")
        switch_and_archive(s1, archive)
    else:
        if unfinished_segment:
            # a copy of the segment being written: full size, valid WAL only up
            # to the last commit (a stopped primary with archiving would finish
            # it with an XLOG_SWITCH)
            pg1.execute("INSERT INTO t VALUES (-1, 'in the unfinished segment')")
            current = pg1.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
            shutil.copy(pg1.data_dir / "pg_wal" / current, archive / current)
        pg1.stop()
    return archive, standby


def run_receivewal(cluster: Cluster, sender, out: Path,
                   xlogpos: str | None) -> subprocess.CompletedProcess[str]:
    conninfo = f"host=127.0.0.1 port={sender.port} user={cluster.replication_user}"
    endpos = ["--endpos", str(Lsn(Lsn(xlogpos) - 1))] if xlogpos else []
    try:
        return subprocess.run([str(cluster.pg.path("pg_receivewal")), "-d", conninfo, "-D", str(out),
                               "--no-loop", "--verbose", *endpos],
                              capture_output=True, text=True, timeout=scaled(30))
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, -1, "", (e.stderr or b"").decode() + "\n<timeout>")


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_misbehave(cluster: Cluster, start_sender, tmp_path: Path, case: Case) -> None:
    archive, standby = build_archive(cluster, case.timeline_switch, dict(case.standby_settings),
                                     case.unfinished_segment)
    sender = start_sender(archive, "--auth", "trust", "--misbehave", case.kind, *case.sender_args)
    observed = []
    if case.standby:
        standby.repoint("127.0.0.1", sender.port)
        offset = standby.log_position()
        standby.start(wait=False)
        if case.reconnect:
            # let it receive every archived segment once, then make it reconnect: its start
            # point is then past the segment start the sender takes the end of WAL back to
            # (restarted as soon as streaming began, it once asked for that segment start
            # again, which is not ahead of it, and waited for ever)
            wait_until(lambda: "started streaming WAL" in standby.log_since(offset),
                       what="first streaming connection", timeout=scaled(60), logs=[standby.log_file])
            last = max(p.name for p in archive.iterdir() if re.fullmatch(r"00000001[0-9A-F]{16}", p.name))
            seg_size = int(standby.scalar("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
            end = Lsn(((int(last[8:16], 16) * (0x100000000 // seg_size)) + int(last[16:], 16) + 1) * seg_size)
            wait_until(lambda: standby.lsn("receive"), done=lambda lsn: lsn is not None and lsn >= end,
                       what=f"the standby to receive up to {end}", timeout=scaled(60), logs=[standby.log_file])
            standby.restart()
        m = standby.wait_for_log(case.standby, since=offset, timeout=scaled(60))
        line = [ln for ln in standby.log_since(offset).splitlines() if m.group(0) in ln][0]
        observed.append(f"standby: {line.split(']', 1)[-1].strip()}")
        standby.stop(mode="immediate")
    if case.receivewal:
        _sysid, _tli, xlogpos = identify_system(sender, cluster)
        out = tmp_path / "rw"
        out.mkdir()
        first = sorted(p.name for p in archive.iterdir() if re.fullmatch(r"00000001[0-9A-F]{16}", p.name))[0]
        shutil.copy(archive / first, out / first)
        r = run_receivewal(cluster, sender, out, xlogpos if case.receivewal_endpos else None)
        observed.append(f"pg_receivewal: exit {r.returncode}: "
                        f"{[ln for ln in r.stderr.splitlines() if re.search(case.receivewal, ln)][:1]}")
        assert re.search(case.receivewal, r.stderr), r.stderr
        assert r.returncode == case.receivewal_rc, r.stderr
        if case.kind == "bitflip":
            differs = [p.name for p in out.iterdir() if len(p.name) == 24 and p.name != first
                       and (archive / p.name).read_bytes() != p.read_bytes()]
            assert differs, "the flipped bit must reach pg_receivewal's files unnoticed"
            observed.append(f"pg_receivewal: segments differing from the source: {differs}")
    assert sender.alive()
    print(f"\nMISBEHAVE {case.kind}: " + " | ".join(observed))
