"""The ledger client against real PostgreSQL: timeouts that turn a frozen
primary's commits into indeterminate outcomes, retargeting that interrupts a
commit in flight, a search over endpoints for the writable node (past a
standby and past a proxy that accepts and closes), the acknowledging node on
every commit, and ``synchronous_commit`` re-read after a reload."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from walsim.core.events import Clock, JsonlWriter, read_jsonl
from walsim.core.timeouts import wait_until
from walsim.pg.cluster import Cluster
from walsim.run.workloads import LedgerWorkload, Target, node_target

pytestmark = pytest.mark.pg


def values(**over: Any) -> dict[str, Any]:
    v = {"clients": 2, "rate": 100.0, "accounts": 4, "connect_timeout": 2.0,
         "statement_timeout": 1.0, "tcp_user_timeout": 2.0}
    v.update(over)
    return v


def identify_by_port(cluster: Cluster):
    def identify(addr: str | None, port: int | None, sysid: str | None) -> str | None:
        return next((n.name for n in cluster.nodes.values() if port is not None and n.port == port), None)
    return identify


def writes(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(path) if r.get("op") == "write"]


def acks_on(wl: LedgerWorkload, path: Path, node: str) -> int:
    return sum(1 for r in writes(path) if r["outcome"] == "acked" and r["node"] == node)


@pytest.fixture
def two_nodes(cluster: Cluster) -> Iterator[Cluster]:
    pg1 = cluster.create_primary("pg1")
    cluster.create_standby("pg2", pg1)
    LedgerWorkload.setup(pg1)
    pg1.wait_for_catchup("pg2")
    try:
        yield cluster
    finally:
        for n in cluster.nodes.values():
            if n._paused:
                n.resume()


def ledger(tmp_path: Path, targets: list[Target], cluster: Cluster, **over: Any) -> tuple[LedgerWorkload, Path]:
    path = tmp_path / "ledger.jsonl"
    clock = Clock()
    wl = LedgerWorkload("ledger", values(**over), 1, JsonlWriter(path, clock), clock, targets,
                        identify=identify_by_port(cluster))
    return wl, path


def test_frozen_primary_commits_end_indeterminate_and_clients_find_the_new_primary(
        two_nodes: Cluster, tmp_path: Path) -> None:
    """pg1 is frozen (SIGSTOP) under load and pg2 promoted without telling the
    workload: the client-side statement timeout cuts the commits in flight off
    (indeterminate, never failed), and the clients find pg2 among the endpoints."""
    pg1, pg2 = two_nodes.node("pg1"), two_nodes.node("pg2")
    wl, path = ledger(tmp_path, [node_target(pg1), node_target(pg2)], two_nodes)
    assert wl.search
    wl.start()
    try:
        wait_until(lambda: acks_on(wl, path, "pg1"), what="acks on pg1", timeout=30, done=lambda n: n >= 20)
        pg1.pause()
        pg2.promote()
        wait_until(lambda: acks_on(wl, path, "pg2"), what="acks on pg2 after pg1 froze", timeout=30,
                   done=lambda n: n >= 20)
    finally:
        wl.stop()
        pg1.resume()
    recs = writes(path)
    cut = [r for r in recs if r.get("cut_off")]
    assert cut, "no commit was cut off by the statement timeout"
    assert all(r["outcome"] == "indeterminate" and r["node"] == "pg1" for r in cut)
    assert "statement_timeout" in cut[0]["error"]
    assert not [r for r in recs if r["outcome"] == "failed"]
    sysid = pg1.scalar("SELECT system_identifier::text FROM pg_control_system()")
    on2 = [r for r in recs if r["outcome"] == "acked" and r["node"] == "pg2"]
    assert all(r["timeline"] == 2 and r["server"] == f"{pg2.host}:{pg2.port}"  # its own address
               and r["system_identifier"] == sysid for r in on2)
    on1 = [r for r in recs if r["outcome"] == "acked" and r["node"] == "pg1"]
    assert all(r["timeline"] == 1 and r["endpoint"] == "pg1" for r in on1)
    # every ack on pg2 was sent after the last one pg1 gave
    assert min(r["sent_t"] for r in on2) > max(r["t"] for r in on1)


def test_retarget_interrupts_a_commit_in_flight(two_nodes: Cluster, tmp_path: Path) -> None:
    """With a statement timeout far beyond the wait, only the retarget can free
    the clients blocked on the frozen pg1."""
    pg1, pg2 = two_nodes.node("pg1"), two_nodes.node("pg2")
    wl, path = ledger(tmp_path, [node_target(pg1)], two_nodes, statement_timeout=600.0)
    assert not wl.search
    wl.start()
    try:
        wait_until(lambda: acks_on(wl, path, "pg1"), what="acks on pg1", timeout=30, done=lambda n: n >= 20)
        pg1.pause()
        pg2.promote()
        wl.retarget(pg2)
        wait_until(lambda: acks_on(wl, path, "pg2"), what="acks on pg2 after the retarget", timeout=30,
                   done=lambda n: n >= 20)
    finally:
        wl.stop()
        pg1.resume()
    cut = [r for r in writes(path) if r.get("cut_off")]
    assert cut and all(r["outcome"] == "indeterminate" for r in cut)
    assert "moved to another endpoint" in cut[0]["error"]


def test_search_passes_over_a_standby_and_a_proxy_that_closes(two_nodes: Cluster, tmp_path: Path) -> None:
    pg1, pg2 = two_nodes.node("pg1"), two_nodes.node("pg2")
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    stop = threading.Event()

    def accept_and_close() -> None:  # what a proxy with no backend does
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                c.close()
            except OSError:
                continue

    t = threading.Thread(target=accept_and_close, daemon=True)
    t.start()
    proxy = Target(f"127.0.0.1:{port}", pg1.conninfo(port=port))
    wl, path = ledger(tmp_path, [proxy, node_target(pg2), node_target(pg1)], two_nodes, clients=1)
    wl.start()
    try:
        wait_until(lambda: acks_on(wl, path, "pg1"), what="acks on pg1", timeout=30, done=lambda n: n >= 5)
    finally:
        wl.stop()
        stop.set()
        t.join()
        srv.close()
    opened = [r for r in read_jsonl(path) if r.get("op") == "session" and r.get("event") == "open"]
    assert opened[0]["node"] == "pg1" and opened[0]["endpoint"] == "pg1"
    passed = opened[0]["passed_over"]
    assert passed["pg2"] == "in recovery"
    assert f"127.0.0.1:{port}" in passed
    assert {r["outcome"] for r in writes(path)} == {"acked"}


def test_synchronous_commit_is_read_at_every_commit(two_nodes: Cluster, tmp_path: Path) -> None:
    pg1 = two_nodes.node("pg1")
    wl, path = ledger(tmp_path, [node_target(pg1)], two_nodes)
    wl.start()
    try:
        wait_until(lambda: acks_on(wl, path, "pg1"), what="acks", timeout=30, done=lambda n: n >= 10)
        pg1.execute("ALTER SYSTEM SET synchronous_commit = 'local'")
        pg1.execute("SELECT pg_reload_conf()")
        wait_until(lambda: [r for r in writes(path) if r.get("synchronous_commit") == "local"],
                   what="a commit recorded with synchronous_commit = local", timeout=30)
        n = len(writes(path))
        wait_until(lambda: len(writes(path)), what="more commits", timeout=30, done=lambda k: k >= n + 10)
    finally:
        wl.stop()
    levels = [r["synchronous_commit"] for r in writes(path) if r["outcome"] == "acked"]
    assert levels[0] == "on" and levels[-1] == "local"
    # once a session saw the reload, it never goes back
    first_local = levels.index("local")
    assert set(levels[first_local + 4:]) == {"local"}
