"""Bad input gets a clear error naming what and where."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from walsim.pg.cluster import Cluster
from walsim.core.errors import ClusterError, PgBinariesNotFound, PortError, ServerStartError, UnknownNode
from walsim.pg.pgbin import PgBin, find_bindir
from walsim.pg.ports import PortAllocator, port_is_free

pytestmark = pytest.mark.pg


def test_unknown_node_name(cluster: Cluster) -> None:
    cluster.create_primary("pg1", start=False)
    with pytest.raises(UnknownNode, match=r"no node 'pg9' .*\(nodes: pg1\)"):
        cluster.node("pg9")
    with pytest.raises(UnknownNode):
        cluster.create_standby("pg2", "pg9")
    with pytest.raises(ClusterError, match="already has a node 'pg1'"):
        cluster.create_primary("pg1")
    with pytest.raises(ClusterError, match="invalid node name"):
        cluster.create_primary("../etc")


def test_missing_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PgBinariesNotFound, match=r"bindir=/nonexistent: /nonexistent lacks postgres"):
        PgBin("/nonexistent")
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    with pytest.raises(PgBinariesNotFound, match=rf"PG_BINDIR={tmp_path}: .* lacks postgres, initdb"):
        find_bindir()
    # Nothing anywhere: the error lists every place searched.
    with pytest.raises(PgBinariesNotFound) as info:
        find_bindir(env={"PATH": str(tmp_path)}, debian_root=tmp_path / "none")
    message = str(info.value)
    assert "PG_BINDIR: not set" in message
    assert "pg_config: not on PATH" in message
    assert f"{tmp_path / 'none'}/*/bin: none" in message
    # The real installation is found without help.
    assert (find_bindir(env={"PATH": "/usr/bin:/bin"}) / "postgres").exists()


def test_port_already_taken(cluster: Cluster) -> None:
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with pytest.raises(PortError, match=f"port {taken} is already in use"):
            cluster.create_primary("pg1", port=taken)
        # Taken after walsim reserved it: the node retries on a new port.
        pg2 = cluster.create_primary("pg2", start=False)
        first = pg2.port
        blocker.close()
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", first))
        blocker.listen()
        pg2.start()
        assert pg2.port != first
        assert f"port {first} was taken by another program; retrying on {pg2.port}" in pg2.log_file.read_text()
        assert pg2.scalar("SELECT 1") == 1
    finally:
        blocker.close()


def test_config_value_postgres_rejects(cluster: Cluster) -> None:
    with pytest.raises(ServerStartError) as info:
        cluster.create_primary("pg1", settings={"shared_buffers": "plenty"})
    message = str(info.value)
    assert 'invalid value for parameter "shared_buffers": "plenty"' in message
    assert str(cluster.node("pg1").log_file) in message
    with pytest.raises(ClusterError, match="port is managed by walsim"):
        cluster.create_primary("pg2", settings={"port": 5432})


def _free_window(size: int) -> int:
    # Below the default range, so no other walsim test hands these ports out.
    for low in range(10000, 10200 - size, size):
        if all(port_is_free(p) for p in range(low, low + size)):
            return low
    pytest.skip("no free window of ports in 10000-10199")


def test_port_allocator_locks(tmp_path: Path) -> None:
    low = _free_window(4)
    alloc = PortAllocator(tmp_path / "ports", low=low, high=low + 3)
    other = PortAllocator(tmp_path / "ports", low=low, high=low + 3)
    got = [alloc.reserve() for _ in range(2)]
    assert len({r.port for r in got}) == 2
    assert other.held_ports() == sorted(r.port for r in got)
    with pytest.raises(PortError, match="reserved by another walsim process"):
        # flock is per open file description: a second allocator in the same
        # process sees the lock just as another process would.
        other.reserve(got[0].port)
    more = [other.reserve() for _ in range(2)]
    with pytest.raises(PortError, match=f"no free port in {low}-{low + 3}"):
        other.reserve()
    for r in got + more:
        r.release()
    assert alloc.held_ports() == []
    assert list((tmp_path / "ports").iterdir()) == []


def test_setting_values_are_quoted_exactly(cluster: Cluster) -> None:
    tricky = "C:\\temp\\new 'quoted' \\141"
    pg1 = cluster.create_primary("pg1", settings={"walsim.note": tricky, "Work_Mem": "5MB"})
    assert pg1.scalar("SHOW walsim.note") == tricky
    assert pg1.scalar("SHOW work_mem") == "5MB"
    with pytest.raises(ClusterError, match="line break"):
        pg1.set_settings({"walsim.note": "two\nlines"})
    with pytest.raises(ClusterError, match="not a setting name"):
        pg1.set_settings({"fsync = off #": "x"})
    assert pg1.scalar("SHOW walsim.note") == tricky
    pg1.restart()                      # the rejected values were not kept
    assert pg1.settings["walsim.note"] == tricky
