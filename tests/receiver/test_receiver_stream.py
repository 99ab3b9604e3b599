"""walsim-receiver against real PostgreSQL 15: byte-identical output with
pg_receivewal across a segment switch and a timeline switch, slots and
--synchronous, restart after kill -9."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from receiver_support import (Receivers, complete_segments, generate_wal, iter_events,
                              segment_files, wait_received)
from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until

pytestmark = pytest.mark.pg

SEG = 1024 * 1024
ONE_MB_WAL = ["--wal-segsize=1"]


def _segment_offset(lsn: int) -> int:
    return lsn % SEG


def _segno(name: str) -> int:
    """Segment number of a 1 MB segment file name (4096 segments per xlogid)."""
    return int(name[8:16], 16) * 4096 + int(name[16:24], 16)


def test_byte_identical_with_pg_receivewal_across_timeline_switch(cluster: Cluster,
                                                                  receivers: Receivers) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=ONE_MB_WAL)
    pg2 = cluster.create_standby("pg2", pg1)
    ours_dir = receivers.directory("walsim")
    theirs_dir = receivers.directory("pg_receivewal")
    ours = receivers.walsim(ours_dir, pg2.conninfo(replication=True, application_name="wsrcv"))
    theirs = receivers.pg(theirs_dir, pg2.conninfo(replication=True, application_name="pgrw"))
    start = pg2.lsn("replay")
    assert start is not None
    wait_received(pg2, "wsrcv", start, ours)
    wait_received(pg2, "pgrw", start, theirs)

    # timeline 1: a few segments, one of them ended early by pg_switch_wal()
    generate_wal(pg1, 15000)
    pg1.execute("SELECT pg_switch_wal()")
    generate_wal(pg1, 15000)
    tl1_end = pg1.lsn("flush")
    assert tl1_end is not None
    pg1.wait_for_catchup(pg2, "replay", tl1_end)
    wait_received(pg2, "wsrcv", tl1_end, ours)
    wait_received(pg2, "pgrw", tl1_end, theirs)

    # timeline 2: both follow the promoted standby
    assert pg2.promote() == 2
    pg1.stop()
    generate_wal(pg2, 15000)
    pg2.execute("SELECT pg_switch_wal()")
    generate_wal(pg2, 5000)
    end = pg2.lsn("flush")
    assert end is not None
    wait_received(pg2, "wsrcv", end, ours)
    wait_received(pg2, "pgrw", end, theirs)
    assert ours.stop() == 0, ours.output()
    assert theirs.stop() == 0, theirs.output()

    mine = segment_files(ours_dir)
    pgs = segment_files(theirs_dir)
    # every segment before the one holding `end` is complete in both directories
    # (later ones may or may not be, depending on background WAL after `end`)
    def before_end(name: str) -> bool:
        return len(name) == 24 and _segno(name) < end // SEG
    complete = [n for n in pgs if before_end(n)]
    assert [n for n in mine if before_end(n)] == complete, (sorted(mine), sorted(pgs))
    assert any(n.startswith("00000001") for n in complete)
    assert any(n.startswith("00000002") for n in complete)
    for name in complete:
        assert mine[name] == pgs[name], f"segment {name} differs"

    # the history file holds exactly the server's bytes
    history = (pg2.data_dir / "pg_wal" / "00000002.history").read_bytes()
    assert mine["00000002.history"] == pgs["00000002.history"] == history
    switch = Lsn.parse(history.decode().split()[1])

    # .partial files: the old timeline's stays behind, identical up to the switch
    # point; the current one identical up to what both confirmed
    partials = sorted(n for n in pgs if n.endswith(".partial") and _segno(n) <= end // SEG)
    assert sorted(n for n in mine if n.endswith(".partial") and _segno(n) <= end // SEG) == partials
    assert len(partials) == 2, partials
    for name in partials:
        upto = _segment_offset(switch) if name.startswith("00000001") else _segment_offset(end)
        assert upto > 0
        assert mine[name][:upto] == pgs[name][:upto], f"{name} differs before offset {upto:#x}"
        assert len(mine[name]) == len(pgs[name]) == SEG

    events = ours.events()
    switches = list(iter_events(events, "timeline_switch"))
    assert [(e["from"], e["to"], e["switchpoint"]) for e in switches] == [(1, 2, str(switch))]
    done = {e["file"] for e in iter_events(events, "segment_complete")}
    assert set(complete) <= done
    assert not list(iter_events(events, "verify_failed"))


def test_slot_restart_lsn_and_synchronous_commit(cluster: Cluster, receivers: Receivers) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=ONE_MB_WAL)
    conninfo = pg1.conninfo(replication=True, application_name="syncrcv")
    wal_dir = receivers.directory("sync")
    created = receivers.run(wal_dir, conninfo, "-S", "rcvslot", "--create-slot")
    assert created.returncode == 0, created.stderr
    assert pg1.scalar("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'rcvslot'") is None
    again = receivers.run(wal_dir, conninfo, "-S", "rcvslot", "--create-slot")
    assert again.returncode == 1 and "already exists" in again.stderr
    again = receivers.run(wal_dir, conninfo, "-S", "rcvslot", "--create-slot", "--if-not-exists")
    assert again.returncode == 0, again.stderr

    rcv = receivers.walsim(wal_dir, conninfo, "-S", "rcvslot", "--synchronous")
    pg1.set_synchronous_standbys(["syncrcv"])
    wait_until(lambda: pg1.scalar("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'syncrcv'"),
               what="syncrcv to be the synchronous standby", done=lambda s: s == "sync",
               logs=[pg1.log_file, rcv.log])
    # commits complete because the receiver fsyncs and reports flush at once
    pg1.execute("CREATE TABLE sync_t (x int)")
    pg1.execute("INSERT INTO sync_t SELECT generate_series(1, 1000)")
    lsn = pg1.lsn("flush")
    assert lsn is not None
    flush = wait_until(lambda: pg1.scalar("SELECT flush_lsn FROM pg_stat_replication WHERE application_name = 'syncrcv'"),
                       what="flush_lsn of syncrcv", done=lambda v: v is not None and Lsn.parse(str(v)) >= lsn)
    assert Lsn.parse(str(flush)) >= lsn
    restart = wait_until(lambda: pg1.scalar("SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = 'rcvslot'"),
                         what="the slot's restart_lsn to advance",
                         done=lambda v: v is not None and Lsn.parse(v) >= lsn)
    assert Lsn.parse(restart) >= lsn

    # paused receiver: a commit waits for it (observed as a SyncRep wait), then completes
    rcv.proc.send_signal(signal.SIGSTOP)
    try:
        with pg1.connect() as conn:
            conn.execute("SET application_name = 'waiter'")
            result: dict[str, object] = {}

            def commit() -> None:
                try:
                    conn.execute("INSERT INTO sync_t VALUES (-1)")
                    result["ok"] = True
                except Exception as exc:  # reported by the assertion below
                    result["error"] = exc

            t = threading.Thread(target=commit, daemon=True)
            t.start()
            wait_until(lambda: pg1.scalar("SELECT wait_event FROM pg_stat_activity WHERE application_name = 'waiter'"),
                       what="the commit to wait for the paused synchronous receiver",
                       done=lambda v: v == "SyncRep", logs=[pg1.log_file])
            assert "ok" not in result
            rcv.proc.send_signal(signal.SIGCONT)
            t.join(timeout=scaled(60))
            assert result.get("ok") is True, result
    finally:
        rcv.proc.send_signal(signal.SIGCONT)
    pg1.set_synchronous_standbys(None)
    assert rcv.stop() == 0, rcv.output()
    assert any(e["flush"] != "0/0" for e in iter_events(rcv.events(), "feedback"))

    # an empty directory and a slot: the start comes from READ_REPLICATION_SLOT
    fresh = receivers.directory("fresh")
    slot_lsn = Lsn.parse(pg1.scalar("SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = 'rcvslot'"))
    rcv2 = receivers.walsim(fresh, conninfo, "-S", "rcvslot")
    connected = wait_until(lambda: list(iter_events(rcv2.events(), "connected")), what="second receiver to connect",
                           logs=[rcv2.log])
    assert connected[0]["start"] == str(Lsn(slot_lsn - slot_lsn % SEG))
    assert rcv2.stop() == 0, rcv2.output()

    dropped = receivers.run(wal_dir, conninfo, "-S", "rcvslot", "--drop-slot")
    assert dropped.returncode == 0, dropped.stderr
    assert pg1.scalar("SELECT count(*) FROM pg_replication_slots") == 0


def test_kill9_restart_resumes_and_matches_primary(cluster: Cluster, receivers: Receivers) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=ONE_MB_WAL)
    conninfo = pg1.conninfo(replication=True, application_name="k9")
    wal_dir = receivers.directory("k9")
    rcv = receivers.walsim(wal_dir, conninfo)
    generate_wal(pg1, 12000)
    mid = pg1.lsn("flush")
    assert mid is not None
    wait_received(pg1, "k9", mid, rcv)
    # stop mid-segment with kill -9: no chance to close anything
    assert _segment_offset(mid) != 0
    rcv.kill()
    partials = [p.name for p in wal_dir.iterdir() if p.name.endswith(".partial")]
    assert len(partials) == 1

    generate_wal(pg1, 20000)
    rcv2 = receivers.walsim(wal_dir, conninfo)
    connected = wait_until(lambda: list(iter_events(rcv2.events(), "connected")), what="restart to connect",
                           logs=[rcv2.log])
    # it resumes at the start of the segment of the .partial
    assert connected[0]["start"] == str(Lsn(mid - _segment_offset(mid)))
    pg1.execute("SELECT pg_switch_wal()")
    generate_wal(pg1, 1000)
    end = pg1.lsn("flush")
    assert end is not None
    wait_received(pg1, "k9", end, rcv2)
    assert rcv2.stop() == 0, rcv2.output()

    names = complete_segments(wal_dir)
    assert partials[0][:24] in names
    assert len(names) >= 3
    for name in names:
        ours = (wal_dir / name).read_bytes()
        theirs = (pg1.data_dir / "pg_wal" / name).read_bytes()
        assert ours == theirs, f"segment {name} differs from the primary's"


def test_endpos_stops_cleanly_and_no_loop_exit(cluster: Cluster, receivers: Receivers, tmp_path: Path) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=ONE_MB_WAL)
    conninfo = pg1.conninfo(replication=True, application_name="endpos")
    generate_wal(pg1, 20000)
    end = pg1.lsn("flush")
    assert end is not None
    wal_dir = receivers.directory("endpos")
    first = Lsn(end - 2 * SEG - _segment_offset(end))
    rcv = receivers.walsim(wal_dir, conninfo, "--start", str(first), "-E", str(end), "-n")
    assert rcv.wait() == 0, rcv.output()
    stopped = list(iter_events(rcv.events(), "stopped"))
    assert stopped and stopped[0]["reason"] == "endpos"
    assert complete_segments(wal_dir), rcv.output()
    # nothing more: a start beyond the end exits at once with 0 as well
    again = receivers.run(wal_dir, conninfo, "-E", str(Lsn(first + 1)), "-n")
    assert again.returncode == 0, again.stderr

    # an error inside COPY (a segment the server no longer has): its message, exit 1,
    # the .partial it had opened (none: no data came) left alone
    gone = receivers.directory("gone")
    removed = receivers.run(gone, conninfo, "--start", "0/0", "-n")
    assert removed.returncode == 1
    assert "requested WAL segment 000000010000000000000000 has already been removed" in removed.stderr
    assert list(gone.iterdir()) == []

    # the server goes away: --no-loop exits 1 naming the problem
    rcv = receivers.walsim(receivers.directory("noloop"), conninfo, "-n")
    wait_until(lambda: list(iter_events(rcv.events(), "feedback")), what="receiver to stream", logs=[rcv.log])
    pg1.stop()
    assert rcv.wait() == 1
    assert "disconnected" in rcv.output()
