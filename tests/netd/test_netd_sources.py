"""Source nodes with real PostgreSQL: two standbys stream through one walsim-netd
link, each from its own loopback address (docs/clusters.md, "Node addresses");
a fault limited to one source cuts that standby and leaves the other streaming."""

from __future__ import annotations

from typing import Any

import pytest

from walsim.core.timeouts import wait_until

pytestmark = pytest.mark.pg


def test_two_standbys_on_one_link_only_one_is_faulted(cluster: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=2)
    pg1 = cluster.create_primary("pg1")
    for name in ("pg2", "pg3"):
        # the standbys' addresses before they exist: netd names their first connection
        netd.add_node(name, cluster.address(name))
    via = netd.add_link("l1", pg1.host, pg1.port)
    quick = {"wal_receiver_timeout": "2s", "wal_retrieve_retry_interval": "500ms"}
    pg2 = cluster.create_standby("pg2", pg1, via=via, settings=quick)
    pg3 = cluster.create_standby("pg3", pg1, via=via, settings=quick)
    pg2.wait_for_streaming()
    pg3.wait_for_streaming()

    # Through netd the primary still sees who is who, and so does netd.
    rows = {r["application_name"]: str(r["client_addr"]) for r in pg1.replication_status()}
    assert rows == {"pg2": pg2.host, "pg3": pg3.host} == {"pg2": "127.0.0.12", "pg3": "127.0.0.13"}
    conns = {c["app"]: (c["src"], c["src_addr"].split(":")[0]) for c in netd.conns("l1")}
    assert conns == {"pg2": ("pg2", pg2.host), "pg3": ("pg3", pg3.host)}

    netd.add_fault("cut", link="l1", kind="partition", src="pg2")
    log_at = pg2.log_position()
    pg1.execute("CREATE TABLE s AS SELECT 1 AS x")
    pg1.wait_for_catchup(pg3, "replay")  # same link, another source: not cut
    assert pg3.scalar("SELECT x FROM s") == 1
    pg2.wait_for_log(r"terminating walreceiver due to timeout", since=log_at)
    assert pg2.scalar("SELECT to_regclass('s') IS NULL")
    # pg2's reconnections are refused; every refusal names pg2
    refusals = wait_until(lambda: [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "cut"],
                          what="a refused reconnection of pg2", done=lambda r: len(r) >= 1)
    assert {e["src"] for e in refusals} == {"pg2"}
    assert [c["app"] for c in netd.conns("l1") if c["src"] == "pg3"] == ["pg3"]

    netd.heal()
    pg1.wait_for_catchup(pg2, "replay")
    assert pg2.scalar("SELECT x FROM s") == 1
    # the connection pg3 had all along was never touched
    closed = [e for e in netd.trace() if e["event"] == "conn_close" and e.get("src") == "pg3"]
    assert closed == []
