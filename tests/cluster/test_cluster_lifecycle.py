"""Life cycle, process control and observation of single nodes."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from walsim.pg import procs
from walsim.pg.cluster import Cluster
from walsim.core.errors import WaitTimeout
from walsim.core.lsn import Lsn
from walsim.core.timeouts import wait_until

pytestmark = pytest.mark.pg


def test_stop_modes_restart_reload_and_status(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    assert pg1.status() == "running"
    pg1.execute("CREATE TABLE t AS SELECT 1 AS x")
    for mode in ("smart", "fast", "immediate"):
        offset = pg1.log_position()
        pg1.stop(mode)
        assert pg1.status() == "stopped"
        assert pg1.postmaster_pid() is None
        expected = {"smart": "smart shutdown", "fast": "fast shutdown", "immediate": "immediate shutdown"}
        pg1.wait_for_log(f"received {expected[mode]} request", since=offset)
        pg1.start()
        assert pg1.scalar("SELECT x FROM t") == 1
    pm = pg1.postmaster_pid()
    pg1.restart()
    assert pg1.postmaster_pid() not in (None, pm)
    pg1.set_settings({"work_mem": "7MB"})
    wait_until(lambda: pg1.scalar("SHOW work_mem"), what="reload of work_mem", done=lambda v: v == "7MB")
    pg1.set_settings({"work_mem": None})
    wait_until(lambda: pg1.scalar("SHOW work_mem"), what="work_mem back to default", done=lambda v: v == "4MB")


def test_crashed_and_zombie_states(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pm = pg1.postmaster_pid()
    assert pm is not None
    # A postmaster killed behind walsim's back stays a zombie until walsim reaps it.
    os.kill(pm, signal.SIGKILL)
    wait_until(pg1.status, what="zombie postmaster", done=lambda s: s == "zombie")
    pg1.stop()                        # reaps, leaves the crash as is
    assert pg1.status() == "crashed"
    pg1.start()                       # crash recovery
    assert pg1.status() == "running"
    pg1.kill()                        # kill -9 through walsim: waits for the children too
    assert pg1.status() == "crashed"


def test_process_kinds_kill_walreceiver_pause_resume(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    kinds = {k: pg2.pids(k) for k in ("postmaster", "startup", "walreceiver", "checkpointer")}
    assert all(len(v) == 1 for v in kinds.values()), kinds
    assert pg1.pids("walsender") == [pg1.walsender_pid(pg2)]
    assert pg2.pids("walsender") == []
    for pid in kinds["walreceiver"] + kinds["startup"]:
        assert procs.stat(pid).ppid == kinds["postmaster"][0]

    old = kinds["walreceiver"][0]
    assert pg2.kill(signal.SIGKILL, process="walreceiver") == [old]
    # The startup process asks for a new walreceiver, which streams again.
    wait_until(lambda: pg2.pids("walreceiver"), what="a new walreceiver", done=lambda v: v and v != [old])
    pg2.wait_for_streaming()

    pg2.pause()
    assert pg2.status() == "paused"
    assert all(procs.stat(p).state == "T" for p in pg2.pids("walreceiver") + pg2.pids("postmaster"))
    pg2.resume()
    assert pg2.status() == "running"
    pg1.execute("CREATE TABLE after_pause AS SELECT 1 AS x")
    pg1.wait_for_catchup(pg2)


def test_environment_hook_reaches_the_postmaster(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1", start=False)
    pg1.environment["WALSIM_TEST_MARKER"] = "disk-faults-would-go-here"
    pg1.start()
    environ = open(f"/proc/{pg1.postmaster_pid()}/environ", "rb").read().split(b"\0")
    assert b"WALSIM_TEST_MARKER=disk-faults-would-go-here" in environ
    assert not any(e.startswith(b"PGPORT=") for e in environ)


def test_lsns_log_waits_and_timeout_message(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    pg1 = cluster.create_primary("pg1")
    before = pg1.lsn("insert")
    pg1.execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS x")
    assert pg1.lsn("insert") > before
    assert pg1.lsn("flush") <= pg1.lsn("insert")
    assert isinstance(pg1.lsn("write"), Lsn)
    assert pg1.lsn("replay") is None          # not a standby
    assert str(Lsn("0/3000148")) == "0/3000148" and Lsn("1/0") == 1 << 32
    segment_before = pg1.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    switched = pg1.switch_wal()
    pg1.checkpoint()
    assert switched > before
    assert pg1.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())") != segment_before
    with pytest.raises(ValueError):
        pg1.lsn("sideways")

    offset = pg1.log_position()
    pg1.execute("DO $$ BEGIN RAISE LOG 'walsim marker %', 42; END $$")
    assert pg1.wait_for_log(r"walsim marker (\d+)", since=offset).group(1) == "42"

    monkeypatch.setenv("WALSIM_TIMEOUT_MULT", "0.01")
    with pytest.raises(WaitTimeout) as info:
        pg1.wait_for_log("this line never appears", since=offset, timeout=10)
    message = str(info.value)
    assert "/this line never appears/" in message
    assert "WALSIM_TIMEOUT_MULT=0.01" in message
    assert str(pg1.log_file) in message
    assert "last observed: None" in message


class _Relay:
    """A minimal TCP relay standing in for a proxy between standby and primary."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_standby_through_an_address_and_repoint(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    relay = _Relay(pg1.port)
    try:
        pg2 = cluster.create_standby("pg2", pg1, via=("127.0.0.1", relay.port))
        assert f"port={relay.port}" in pg2.settings["primary_conninfo"]
        pg2.wait_for_streaming()
        assert relay.connections >= 1
        assert pg2.wal_receiver_status()["sender_port"] == relay.port
        pg1.execute("CREATE TABLE via AS SELECT 1 AS x")
        pg1.wait_for_catchup(pg2)
        # Back to the primary directly, then through the relay again by address.
        pg2.repoint(pg1)
        wait_until(lambda: (pg2.wal_receiver_status() or {}).get("sender_port"),
                   what="pg2 streaming from pg1 directly", done=lambda p: p == pg1.port)
        pg2.repoint("127.0.0.1", relay.port)
        wait_until(lambda: (pg2.wal_receiver_status() or {}).get("sender_port"),
                   what="pg2 streaming through the relay", done=lambda p: p == relay.port)
    finally:
        relay.close()


def test_slot_and_conninfo_for_tools(cluster: Cluster) -> None:
    import psycopg
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1, slot=True)
    assert pg2.scalar("SHOW primary_slot_name") == "pg2"
    wait_until(lambda: pg1.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'"),
               what="slot pg2 active", done=lambda v: v == [(True,)])
    # The replication conninfo works for a client (what walsim-receiver would use).
    with psycopg.connect(pg1.conninfo(replication=True), autocommit=True) as conn:
        system = conn.execute("IDENTIFY_SYSTEM").fetchone()
    assert system[1] == 1
    assert cluster.passfile.parent == cluster.run_dir


def test_teardown_thaws_frozen_processes(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    pids = [p for n in (pg1, pg2) for k in ("postmaster", "checkpointer", "walsender", "walreceiver", "startup")
            for p in n.pids(k)]
    frozen = pg2.kill(signal.SIGSTOP, process="walreceiver")
    assert procs.stat(frozen[0]).state == "T"
    assert pg2.status() == "running"          # only one child is frozen
    problems = cluster.destroy()
    assert problems == []                     # an orderly immediate stop, no SIGKILL needed
    assert not [p for p in pids if procs.alive(p)]
    assert not cluster.base_dir.exists()
