"""The core of walsim on one PostgreSQL major: ``WALSIM_PG=N`` (default: the
installation found, Debian's 15).  ``make test-versions`` runs this file, with
the other core tests (tools/test-versions), on every installed major.

Each test builds real clusters of that major and checks what differs between
majors where walsim has to do something about it: base backups without that
major's pg_basebackup (walsim-receiver's BASE_BACKUP), promotion by trigger
file (removed in 16), rewinds without pg_rewind, protocol 3.2 (18), and the
end of its real WAL as libwalsim reads it compared with the server's own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled, wait_until
from walsim.pg import versions
from walsim.pg.cluster import Cluster
from walsim.pg.pgbin import PgBin
from walsim.sim.netd import Netd, netd_binary

pytestmark = pytest.mark.pg

TOP = Path(__file__).resolve().parents[2]
CLI = TOP / "tools" / "walsim-cli"


def _notes(cluster: Cluster) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    cluster.on_note = lambda kind, fields: seen.append((kind, fields))
    return seen


def test_server_is_the_major_asked_for(pg_bin: PgBin, cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    assert pg1.scalar("SHOW server_version_num").startswith(str(pg_bin.major))
    assert pg1.scalar("SHOW server_version").split()[0] == pg_bin.version
    if os.environ.get("WALSIM_PG"):
        assert pg_bin.major == int(os.environ["WALSIM_PG"])


def test_standby_made_by_walsim_receiver_streams_and_converges(cluster: Cluster) -> None:
    """BASE_BACKUP in the major's own format (13/14: one COPY per tablespace;
    15+: one COPY of typed messages), no pg_basebackup involved."""
    pg1 = cluster.create_primary("pg1")
    pg1.execute("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
    s1 = cluster.create_standby("s1", pg1, slot=True, backup_method="walsim-receiver")
    assert s1.backup_method == "walsim-receiver"
    log = s1.log_file.read_text(errors="replace")
    assert re.search(r"walsim-receiver: base backup completed", log), log[-2000:]
    assert (s1.data_dir / "backup_manifest").stat().st_size > 0
    assert (s1.data_dir / "standby.signal").exists()
    pg1.execute("UPDATE t SET v = v || 'x' WHERE id % 3 = 0")
    pg1.wait_for_catchup(s1, "replay")
    assert s1.in_recovery()
    assert s1.table_checksum("t") == pg1.table_checksum("t")
    assert s1.wal_receiver_status()["slot_name"] == "s1"


def test_failover_repoint_and_rewind(cluster: Cluster, pg_bin: PgBin) -> None:
    """Promotion by trigger file and the old primary's return, on this major:
    on 16+ the trigger file maps to pg_ctl promote, without pg_rewind of the
    major the old primary is rebuilt from a base backup; each said in a note."""
    notes = _notes(cluster)
    pg1 = cluster.create_primary("pg1")
    s1 = cluster.create_standby("s1", pg1)
    s2 = cluster.create_standby("s2", pg1)
    pg1.execute("CREATE TABLE t (id int PRIMARY KEY)")
    pg1.execute("INSERT INTO t SELECT generate_series(1, 1000)")
    pg1.wait_for_catchup(s1)
    pg1.wait_for_catchup(s2)
    pg1.stop("fast")
    assert s1.promote(method="trigger_file") == 2
    kinds = [k for k, _ in notes]
    assert ("promote_method_mapped" in kinds) == (not versions.has_promote_trigger_file(pg_bin.major))
    s2.repoint(s1)
    s1.execute("INSERT INTO t SELECT generate_series(1001, 1500)")
    s1.wait_for_catchup(s2)
    assert s2.scalar("SELECT count(*) FROM t") == 1500
    assert s2.timeline() == 2
    pg1.rewind(s1)
    pg1.start()
    assert ("rewind_fallback" in kinds or "rewind_fallback" in [k for k, _ in notes]) \
        == (not pg_bin.has("pg_rewind"))
    s1.execute("INSERT INTO t VALUES (-1)")
    s1.wait_for_catchup(pg1)
    assert pg1.in_recovery() and pg1.timeline() == 2
    assert pg1.table_checksum("t") == s1.table_checksum("t")
    for kind, fields in notes:
        assert fields["pg_major"] == pg_bin.major and fields["text"], (kind, fields)


def test_live_wal_read_to_the_servers_end(cluster: Cluster, walsim_build: Path, pg_bin: PgBin) -> None:
    """libwalsim reads this major's WAL, written just now, to where the server
    says it ends: after pg_switch_wal() the end of the switched segment is
    pg_current_wal_lsn() (every major); on 15+ pg_walinspect's last record of
    the segment is libwalsim's last record too."""
    pg1 = cluster.create_primary("pg1", settings={"autovacuum": False})
    pg1.execute("CREATE TABLE w AS SELECT g, repeat(md5(g::text), 8) AS v FROM generate_series(1, 30000) g")
    pg1.execute("CHECKPOINT")
    pg1.execute("UPDATE w SET v = v || 'u' WHERE g % 11 = 0")     # full-page images
    segname = pg1.scalar("SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
    seg = 16 << 20
    first = Lsn((int(segname[8:16], 16) << 32) + int(segname[16:], 16) * seg)
    switch_end = Lsn.parse(pg1.scalar("SELECT pg_switch_wal()::text"))
    after = Lsn.parse(pg1.scalar("SELECT pg_current_wal_lsn()::text"))
    assert after == first + seg, (segname, switch_end, after)
    walinspect = None
    if pg_bin.major >= 15:
        pg1.execute("CREATE EXTENSION pg_walinspect")
        walinspect = pg1.query("SELECT count(*), max(start_lsn)::text FROM pg_get_wal_records_info(%s, %s) "
                               "WHERE start_lsn >= %s AND start_lsn < %s",
                               [str(first), str(after), str(first), str(after)])[0]
    copy = cluster.base_dir / "walcopy"
    copy.mkdir()
    data = (pg1.data_dir / "pg_wal" / segname).read_bytes()
    (copy / segname).write_bytes(data)
    out = subprocess.run([str(walsim_build / "tests" / "wal-end"), str(copy), "1", str(first)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["major"] == pg_bin.major
    # the switched segment is valid to its very end, where PostgreSQL went on
    assert Lsn.parse(got["valid_end"]) == after, got
    if walinspect is not None:
        count, last = walinspect
        assert Lsn.parse(got["last_record"]) == Lsn.parse(last), (got, walinspect)
        # the reader starts at the first record that begins in the segment, as pg_walinspect lists them
        assert got["records"] == count, (got, walinspect)


def test_streaming_through_netd_corruption_detected_not_applied(cluster: Cluster, tmp_path: Path) -> None:
    """netd tracks this major's stream (startup, START_REPLICATION, LSNs both
    ways) and an LSN-triggered corruption is caught by the standby, not replayed."""
    if not netd_binary().exists():
        pytest.fail(f"{netd_binary()} missing: run make")
    netd = Netd.start(tmp_path / "netd", seed=5)
    try:
        pg1 = cluster.create_primary("pg1")
        addr = netd.add_link("pg2", pg1.host, pg1.port)
        pg2 = cluster.create_standby("pg2", pg1, via=addr, settings={"wal_retrieve_retry_interval": "500ms"})
        pg2.wait_for_streaming()
        pg1.execute("CREATE TABLE c (i int, pad text)")
        pg1.wait_for_catchup(pg2, "replay")
        conn = wait_until(lambda: next(iter(netd.conns("pg2")), None), what="netd connection stats",
                          done=lambda c: c is not None and c.get("command") == "START_REPLICATION")
        assert conn["app"] == "pg2" and conn["replication"] == "true" and conn["timeline"] == 1
        start = int(Lsn.parse(pg1.scalar("SELECT pg_current_wal_insert_lsn()::text")))
        target = start + 300
        target_text = str(Lsn(target))
        log_at = pg2.log_position()
        netd.add_fault("cx", link="pg2", kind="corrupt", at_lsn=target_text)
        pg1.execute("INSERT INTO c SELECT g, repeat('x', 200) FROM generate_series(1, 50) g")
        end = pg1.scalar("SELECT pg_current_wal_lsn()::text")
        pg2.wait_for_log(r"(incorrect resource manager data checksum|invalid record length|invalid magic "
                         r"number|incorrect hole size|invalid resource manager ID|record with incorrect "
                         r"prev-link|invalid info bits|invalid contrecord length|out-of-sequence timeline|"
                         r"invalid (block|page))", since=log_at)
        replayed = int(Lsn.parse(pg2.scalar("SELECT pg_last_wal_replay_lsn()::text")))
        assert replayed <= target, f"replayed to {Lsn(replayed)} past the corruption at {target_text}"
        fired = [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "cx"]
        assert fired and fired[0]["at_lsn"] == target_text
        netd.del_fault("cx")
        pg2.restart()
        pg1.wait_for_catchup(pg2, "replay", lsn=end)
        assert pg2.table_checksum("c") == pg1.table_checksum("c")
    finally:
        netd.stop()


def _protocol_32_conninfo(node: Any, host: str, port: int) -> str:
    # psycopg's make_conninfo checks keywords against Debian's libpq 15, which does
    # not know max_protocol_version; the standby's own libpq (18) does
    return (f"host={host} port={port} user={node.cluster.replication_user} "
            f"passfile={node.cluster.passfile} application_name={node.name} max_protocol_version=latest")


class _Sender:
    """walsim-sender on a directory, for the duration of a test."""

    def __init__(self, walsim_build: Path, waldir: Path, passfile: Path, log: Path) -> None:
        from walsim.pg.ports import PortAllocator
        res = PortAllocator().reserve()
        self.port = res.port
        res.release()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([str(walsim_build / "bin" / "walsim-sender"), "-D", str(waldir),
                                          "--listen", f"127.0.0.1:{self.port}", "--passfile", str(passfile)],
                                         stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "listening on" in log.read_text(errors="replace") or self.proc.poll() is not None,
                       what="walsim-sender to listen")
        except BaseException:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"walsim-sender exited: {log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(30))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _startup_answers(walsim_build: Path, port: int, user: str, passfile: Path) -> dict[str, Any]:
    """For startup packets asking 3.0, 3.1, 3.2 and 3.3: the NegotiateProtocolVersion
    (or None), the cancel key length and the server_version seen."""
    out: dict[str, Any] = {}
    for proto in ("3.0", "3.1", "3.2", "3.3"):
        probe = subprocess.run([str(walsim_build / "bin" / "walsim-probe"), "--host", "127.0.0.1",
                                "--port", str(port), "--user", user, "--passfile", str(passfile), "-"],
                               input=f"startup protocol={proto}\nquery IDENTIFY_SYSTEM\nwait Z 5000\n"
                                     "terminate\n", capture_output=True, text=True, timeout=60)
        msgs = [json.loads(x) for x in probe.stdout.splitlines()]
        inc = [m for m in msgs if m.get("dir") == "in"]
        nego = [m["protocol"] for m in inc if m.get("type") == "v"]
        keys = [m["key_len"] for m in inc if m.get("type") == "K"]
        version = [m["value"] for m in inc if m.get("type") == "S" and m.get("name") == "server_version"]
        out[proto] = (nego[0] if nego else None, keys[0] if keys else None,
                      version[0].split(".")[0] if version else None)
    return out


def test_protocol_negotiation_as_the_server(cluster: Cluster, walsim_build: Path, pg_bin: PgBin) -> None:
    """walsim-sender serving this major's WAL answers startup packets of 3.0 to
    3.3 as the major's own walsender does: NegotiateProtocolVersion down to
    3.0 before 18, to 3.2 from 18 (3.1 accepted as is), and a 32-byte cancel
    key once 3.2 is spoken."""
    pg1 = cluster.create_primary("pg1")
    pg1.execute("CREATE TABLE x AS SELECT 1 AS i")
    pg1.switch_wal()
    real = _startup_answers(walsim_build, pg1.port, cluster.replication_user, cluster.passfile)
    copy = cluster.base_dir / "walcopy"
    copy.mkdir()
    for f in (pg1.data_dir / "pg_wal").iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    sender = _Sender(walsim_build, copy, cluster.passfile, cluster.base_dir / "sender.log")
    try:
        ours = _startup_answers(walsim_build, sender.port, cluster.replication_user, cluster.passfile)
    finally:
        sender.stop()
    assert real["3.3"][0] == ("3.2" if pg_bin.major >= 18 else "3.0"), real
    assert {k: v[:2] for k, v in ours.items()} == {k: v[:2] for k, v in real.items()}, (ours, real)
    assert all(v[2] == str(pg_bin.major) for v in ours.values()), ours


def test_protocol_32_standby_through_netd_and_walsim_sender(cluster: Cluster, tmp_path: Path,
                                                            walsim_build: Path, pg_bin: PgBin) -> None:
    """PostgreSQL 18's walreceiver asking for protocol 3.2 (max_protocol_version
    = latest): netd follows the stream, and the same standby streams from
    walsim-sender serving the primary's archive."""
    if pg_bin.major < 18:
        pytest.skip(f"protocol 3.2 arrived in 18; PostgreSQL {pg_bin.major}'s libpq has no max_protocol_version")
    netd = Netd.start(tmp_path / "netd", seed=7)
    sender = None
    try:
        pg1 = cluster.create_primary("pg1", settings={"archive_mode": True,
                                                       "archive_command": "cp %p ../archive/%f"})
        archive = pg1.base_dir / "archive"
        cluster.runas.makedirs(archive, 0o700)
        addr = netd.add_link("pg2", pg1.host, pg1.port)
        pg2 = cluster.create_standby("pg2", pg1, via=addr, start=False)
        pg2.set_settings({"primary_conninfo": _protocol_32_conninfo(pg2, *addr)}, apply=None)
        pg2.start()
        pg2.wait_for_streaming()
        pg1.execute("CREATE TABLE p AS SELECT generate_series(1, 1000) AS i")
        pg1.wait_for_catchup(pg2, "replay")
        conn = wait_until(lambda: next(iter(netd.conns("pg2")), None), what="netd connection stats",
                          done=lambda c: c is not None and c.get("command") == "START_REPLICATION")
        assert conn["down"]["by_type"]["w"] > 0 and conn["up"]["by_type"]["r"] > 0
        pg1.switch_wal()
        wait_until(lambda: sorted(p.name for p in archive.iterdir()), what="a segment in the archive",
                   done=lambda names: len(names) > 0)
        sender = _Sender(walsim_build, archive, cluster.passfile, tmp_path / "sender.log")
        log_at = pg2.log_position()
        pg2.repoint("127.0.0.1", sender.port, apply=None)
        pg2.set_settings({"primary_conninfo": _protocol_32_conninfo(pg2, "127.0.0.1", sender.port)},
                         apply="restart")
        pg2.wait_for_streaming()
        assert "error" not in pg2.log_since(log_at).lower().replace("error_", "")
    finally:
        if sender is not None:
            sender.stop()
        netd.stop()


def test_cluster_up_status_down_cli(walsim_run_dir: Path, pg_bin: PgBin) -> None:
    """``walsim-cli cluster up --pg N`` prints the connection lines (with
    passfile=) and ``cluster status`` the node table, as for 15."""
    workdir = walsim_run_dir / f"cli-up-{pg_bin.major}-{os.getpid()}"
    env = dict(os.environ)
    env.pop("WALSIM_PG", None)        # --pg alone must choose the major
    up = subprocess.Popen([str(CLI), "cluster", "up", "--pg", str(pg_bin.major),
                           "--standbys", "1", "--dir", str(workdir)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    lines: list[str] = []
    try:
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line)
            if "walsim: stop:" in line or up.poll() is not None:
                break
        banner = "".join(lines)
        assert f"cluster ready in {workdir} (PostgreSQL {pg_bin.version})" in banner, banner
        assert re.search(r"pg1 +primary +psql \".*passfile=", banner), banner
        assert re.search(r"pg2 +standby of pg1 +psql \".*passfile=", banner), banner
        status = subprocess.run([str(CLI), "cluster", "status", "--dir", str(workdir)],
                                capture_output=True, text=True, timeout=120, env=env)
        assert status.returncode == 0, status.stderr
        assert re.search(r"^pg1 +primary +running ", status.stdout, re.M), status.stdout
        assert re.search(r"^pg2 +standby +running .* streaming/async", status.stdout, re.M), status.stdout
        down = subprocess.run([str(CLI), "cluster", "down", "--dir", str(workdir)],
                              capture_output=True, text=True, timeout=180, env=env)
        assert down.returncode == 0, down.stdout + down.stderr
        up.wait(timeout=scaled(60))
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
            up.wait(timeout=120)


def test_conform_sender_cli_with_only_target(cluster: Cluster, pg_bin: PgBin) -> None:
    """`walsim-cli conform sender --target ... --pg N` against this major's own
    walsender, nothing else given: 0 FAIL, and at least 25 checks apply."""
    pg1 = cluster.create_primary("pg1")
    s1 = cluster.create_standby("s1", pg1)
    pg1.execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    pg1.wait_for_catchup(s1)
    assert s1.promote() == 2          # timeline 2: the timeline checks apply
    s1.checkpoint()
    env = {k: v for k, v in os.environ.items() if k not in ("PG_BINDIR",)}
    r = subprocess.run([str(CLI), "conform", "sender", "--target", s1.conninfo(replication=True),
                        "--pg", str(pg_bin.major), "-q", "--json", "-"], capture_output=True, text=True,
                       timeout=600, env=env)
    report = json.loads(r.stdout[r.stdout.index("{\n"):]) if "{\n" in r.stdout else None
    assert report is not None, r.stdout + r.stderr
    counts = report["counts"]
    assert r.returncode == 0 and counts["FAIL"] == 0, r.stdout
    assert counts["PASS"] >= 25, counts
