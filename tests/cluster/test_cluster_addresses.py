"""Node addresses (docs/clusters.md, "Node addresses"): every member of a cluster
on its own loopback address, its programs connecting from there, pg_hba.conf
admitting every member, and what an HA manager's adapter gets from the API."""

from __future__ import annotations

import os
import socket

import pytest

from walsim.pg.addresses import BIND_LIBRARY, SOURCE_ENV
from walsim.pg.cluster import Cluster

pytestmark = pytest.mark.pg


def psql(cluster: Cluster, node, sql: str, env: dict[str, str]) -> str:
    """psql run as the servers' user with ``env`` (e.g. a member's source environment)."""
    out = cluster.runas.run([cluster.pg.path("psql"), "-X", "-A", "-t", "-d", node.conninfo(), "-c", sql],
                            what="psql", env=env)
    return out.stdout.decode().strip()


def test_members_have_their_own_addresses(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    assert (pg1.host, pg2.host) == ("127.0.0.11", "127.0.0.12")
    assert pg2.scalar("SHOW listen_addresses") == "127.0.0.12,127.0.0.1"
    # the walreceiver connects from its node's address (libwalsim-bind.so in the postmaster)
    assert [str(r["client_addr"]) for r in pg1.replication_status()] == ["127.0.0.12"]
    assert BIND_LIBRARY in pg2.environment["LD_PRELOAD"] and pg2.environment[SOURCE_ENV] == pg2.host
    # an HA manager's DCS: an address of its own; every node admits it at once
    etcd = cluster.address("etcd")
    assert etcd == "127.0.0.13" and cluster.address("etcd") == etcd
    assert cluster.addresses() == {"pg1": "127.0.0.11", "pg2": "127.0.0.12", "etcd": "127.0.0.13"}
    assert cluster.hba_addresses() == ["127.0.0.1/32", "127.0.0.11/32", "127.0.0.12/32", "127.0.0.13/32"]
    for node in (pg1, pg2):
        rules = {r[0] for r in node.query("SELECT address FROM pg_hba_file_rules WHERE address IS NOT NULL")}
        assert rules == {"127.0.0.1", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
    # a program started with the member's source environment connects from its address
    env = cluster.source_environment("etcd")
    assert env[SOURCE_ENV] == etcd
    assert psql(cluster, pg1, "SELECT inet_client_addr()", env) == etcd
    # walsim itself connects from 127.0.0.1
    assert pg1.scalar("SELECT inet_client_addr()::text") == "127.0.0.1/32"
    # clients and configurations that name 127.0.0.1 still reach a node
    with socket.create_connection(("127.0.0.1", pg1.port), timeout=5):
        pass


def test_a_standby_added_later_is_admitted(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg1.execute("CREATE TABLE t AS SELECT 1 AS x")
    # pg1 runs; pg3's address is new to its pg_hba.conf, which is rewritten and
    # reloaded before pg3's base backup connects from that address
    pg3 = cluster.create_standby("pg3", pg1, slot=True)
    pg1.wait_for_catchup(pg3)
    assert pg3.scalar("SELECT x FROM t") == 1
    assert "127.0.0.12" in {r[0] for r in pg1.query("SELECT address FROM pg_hba_file_rules")}
    log = pg1.log_file.read_text()
    assert "no pg_hba.conf entry" not in log


def test_port_taken_on_the_node_address_is_a_conflict(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1", start=False)
    first = pg1.port
    blocker = socket.socket()
    try:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind((pg1.host, first))  # only the node's own address, not 127.0.0.1
        blocker.listen()
        pg1.start()
        assert pg1.port != first
        assert f"port {first} was taken by another program; retrying on {pg1.port}" in pg1.log_file.read_text()
        assert pg1.scalar("SELECT 1") == 1
    finally:
        blocker.close()


def test_without_node_addresses(cluster_factory) -> None:
    c = cluster_factory(node_addresses=False)
    pg1 = c.create_primary("pg1")
    assert pg1.host == "127.0.0.1" and pg1.scalar("SHOW listen_addresses") == "127.0.0.1"
    assert "LD_PRELOAD" not in pg1.environment and c.addresses() == {}
    assert c.source_environment("pg1") == {} and not c.source_binding
    assert c.address("etcd") == "127.0.0.1"


def test_preloaded_libraries_compose(cluster: Cluster) -> None:
    from walsim.sim.disk import DiskFaults
    pg1 = cluster.create_primary("pg1", start=False)
    disk = DiskFaults.load(pg1)
    libs = pg1.environment["LD_PRELOAD"].split(":")
    assert [os.path.basename(x) for x in libs] == [BIND_LIBRARY, "libwalsim-disk.so"]
    pg1.start()
    cluster.create_replication_role(pg1)
    pg2 = cluster.create_standby("pg2", pg1)
    assert [str(r["client_addr"]) for r in pg1.replication_status()] == [pg2.host]
    # both libraries are in the running postmaster
    maps = open(f"/proc/{pg1.postmaster_pid()}/maps").read()
    assert BIND_LIBRARY in maps and "libwalsim-disk.so" in maps
    disk.unload()
    assert os.path.basename(pg1.environment["LD_PRELOAD"]) == BIND_LIBRARY
