"""``fault = "isolate"`` and the pieces it rests on, without servers: the rules it
expands into for members, link roles and sources; link roles and protocols and
``src`` in scenario files; netd rule words; node addresses and LD_PRELOAD lists."""

from __future__ import annotations

import pytest

from walsim.api import parse_scenario
from walsim.core.errors import ClusterError, ScenarioError
from walsim.faults.isolate import NothingToCut, PathInfo, isolate_rules
from walsim.faults.net import netd_rules
from walsim.pg import addresses
from walsim.sim.netd import format_fault

# Patroni-like: three nodes, an etcd, each node's own link to the DCS, its REST API
# and its PostgreSQL port behind links, clients through their own links.
MEMBERS = {"pg1": "node", "pg2": "node", "pg3": "node", "etcd": "dcs"}
PATHS = {
    "pg1-pg": PathInfo("pg1", "replication"), "pg2-pg": PathInfo("pg2", "replication"),
    "pg3-pg": PathInfo("pg3", "replication"),
    "pg1-api": PathInfo("pg1", "api", "raw"), "pg2-api": PathInfo("pg2", "api", "raw"),
    "pg1-dcs": PathInfo("etcd", "dcs", "raw"), "pg2-dcs": PathInfo("etcd", "dcs", "raw"),
    "pg1-client": PathInfo("pg1", "client"),
}


def rules_of(node: str, groups: list[str], members=MEMBERS, paths=PATHS) -> dict[str, list[str] | None]:
    return {r.link: r.src for r in isolate_rules(node, groups, members, paths)}


def test_dcs_cuts_the_node_and_no_one_else() -> None:
    # pg1's connections to etcd, on whichever link they take, not pg2's; and etcd's to
    # pg1 (none with Patroni; a monitor's health checks with pg_auto_failover)
    assert rules_of("pg1", ["dcs"]) == {"pg1-pg": ["etcd"], "pg1-api": ["etcd"], "pg1-client": ["etcd"],
                                        "pg1-dcs": ["pg1"], "pg2-dcs": ["pg1"]}


def test_peers_both_ways_on_every_link() -> None:
    got = rules_of("pg1", ["peers"])
    assert got == {
        "pg1-pg": ["pg2", "pg3"], "pg1-api": ["pg2", "pg3"], "pg1-client": ["pg2", "pg3"],  # to pg1
        "pg2-pg": ["pg1"], "pg3-pg": ["pg1"], "pg2-api": ["pg1"],                         # from pg1
    }
    # etcd is no peer: its links are untouched
    assert "pg1-dcs" not in got and "pg2-dcs" not in got


def test_clients_are_sources_that_are_no_member() -> None:
    assert rules_of("pg1", ["clients"]) == {"pg1-pg": ["-"], "pg1-api": ["-"], "pg1-client": ["-"]}


def test_replication_only_follows_the_role() -> None:
    # every connection on links leading to pg1, pg1's own on the others
    assert rules_of("pg1", ["replication"]) == {"pg1-pg": None, "pg2-pg": ["pg1"], "pg3-pg": ["pg1"]}


def test_groups_merge_into_one_rule_per_link() -> None:
    rules = isolate_rules("pg1", ["dcs", "peers", "clients"], MEMBERS, PATHS)
    by_link = {r.link: r for r in rules}
    assert len(rules) == len(by_link)  # one rule per link
    assert by_link["pg1-pg"].src == ["-", "etcd", "pg2", "pg3"]
    assert by_link["pg1-pg"].groups == ["dcs", "peers", "clients"]
    # replication's "every connection" wins over a source list
    assert {r.link: r.src for r in isolate_rules("pg1", ["peers", "replication"], MEMBERS, PATHS)}["pg1-pg"] is None
    # order follows the links, a group named twice counts once
    assert [r.link for r in isolate_rules("pg1", ["dcs", "dcs"], MEMBERS, PATHS)] == \
        [k for k in PATHS if k in ("pg1-pg", "pg1-api", "pg1-dcs", "pg2-dcs", "pg1-client")]


def test_a_standby_isolated_from_its_peers_on_a_shared_link() -> None:
    # pg2 and pg3 both stream through l1: only pg2's connections are cut
    members = {"pg1": "node", "pg2": "node", "pg3": "node"}
    assert rules_of("pg2", ["peers"], members, {"l1": PathInfo("pg1")}) == {"l1": ["pg2"]}


@pytest.mark.parametrize("node,groups,paths,message", [
    ("pg1", ["dcs"], {"l1": PathInfo("pg1")}, "dcs: this run has no member of kind dcs"),
    ("pg1", ["clients"], {"l1": PathInfo("pg2")}, "clients: no walsim-netd link leads to pg1"),
    ("pg1", ["replication"], {"l1": PathInfo("pg1", "client")}, "replication: no walsim-netd link has role"),
    ("pg1", ["peers"], {"l1": PathInfo("etcd", "dcs")}, "peers: no walsim-netd link leads to pg1 or from it"),
])
def test_nothing_to_cut_is_an_error(node, groups, paths, message) -> None:
    with pytest.raises(NothingToCut, match=message):
        isolate_rules(node, groups, {"pg1": "node", "pg2": "node", "etcd": "x"}, paths)


def test_no_other_node() -> None:
    with pytest.raises(NothingToCut, match="peers: this run has no other node"):
        isolate_rules("pg1", ["peers"], {"pg1": "node"}, {"l1": PathInfo("pg1")})


# ----------------------------------------------------------------- scenarios

HEAD = '''
name = "t"
description = "a test"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
'''


def issues(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "case.toml")
    return [(i.path, i.message) for i in info.value.issues]


def test_link_role_and_proto() -> None:
    sc = parse_scenario(HEAD + '[links.l2]\nto = "pg1"\n[links.api]\nto = "pg1"\nrole = "api"\nproto = "raw"\n')
    assert (sc.links["l2"].role, sc.links["l2"].proto) == ("replication", "pg")
    assert (sc.links["api"].role, sc.links["api"].proto) == ("api", "raw")
    found = issues(HEAD + '[links.l2]\nto = "pg1"\nrole = "wal"\nproto = "http"\n')
    assert ("links.l2.role", "expected one of replication, client, api, dcs, monitor, raft, other, "
            "got 'wal'") in found
    assert any(p == "links.l2.proto" and "expected one of pg, raw" in m for p, m in found)


def test_a_standby_streams_via_a_replication_link() -> None:
    found = issues(HEAD + '[links.l2]\nto = "pg1"\nrole = "client"\n')
    assert any(p == "links.l2.role" and "pg2 streams via 'l2'" in m for p, m in found), found


def test_src_and_isolate_fields() -> None:
    text = HEAD + '[links.l2]\nto = "pg1"\n' + '''
[[steps]]
fault = "partition"
link = "l2"
src = "pg2"
[[steps]]
fault = "stall"
link = "l2"
src = ["pg2", "clients"]
[[steps]]
fault = "isolate"
id = "cut"
node = "pg1"
from = ["replication", "clients"]
duration = "5s"
[[steps]]
fault = "isolate"
node = "pg2"
'''
    sc = parse_scenario(text)
    assert sc.steps[0].values["src"] == ["pg2"]
    assert sc.steps[1].values["src"] == ["pg2", "clients"]
    assert sc.steps[2].values["from"] == ["replication", "clients"]
    assert sc.steps[2].values["duration"] == 5.0
    assert sc.steps[3].values["from"] == ["peers"]  # the default
    # src = "clients" is netd's "-"
    (rid, kind, params), = netd_rules("f", "stall", sc.steps[1].values)
    assert params["src"] == ["pg2", "-"]
    assert "src=pg2,- " in format_fault(rid, "l2", kind, **params) + " "


@pytest.mark.parametrize("step,path,fragment", [
    ('fault = "partition"\nlink = "l2"\nsrc = "pg9"', "steps[0].src", "unknown node 'pg9'"),
    ('fault = "partition"\nlink = "l2"\nsrc = []', "steps[0].src", "non-empty array"),
    ('fault = "partition"\nlink = "l2"\nsrc = ["pg2", 3]', "steps[0].src", "element [1]"),
    ('fault = "isolate"', "steps[0].node", "missing required key"),
    ('fault = "isolate"\nnode = "pg1"\nfrom = ["everyone"]', "steps[0].from", "expected one of peers"),
    ('fault = "isolate"\nnode = "pg1"\nfrom = []', "steps[0].from", "at least 1"),
    ('fault = "isolate"\nnode = "pg7"', "steps[0].node", "unknown node 'pg7'"),
])
def test_bad_src_and_isolate(step: str, path: str, fragment: str) -> None:
    found = issues(HEAD + '[links.l2]\nto = "pg1"\n[[steps]]\n' + step + "\n")
    assert any(p == path and fragment in m for p, m in found), found


def test_format_fault_lists() -> None:
    assert format_fault("a", "l", "partition", src=["pg1", "-"]) == \
        "fault add id=a link=l kind=partition src=pg1,-"
    with pytest.raises(ValueError):
        format_fault("a", "l", "partition", src=[])
    with pytest.raises(ValueError):
        format_fault("a", "l", "partition", src=["a,b"])


# ----------------------------------------------------------------- addresses

def test_addresses_and_preload_lists() -> None:
    assert addresses.nth_address(1) == "127.0.0.11"
    assert addresses.nth_address(3) == "127.0.0.13"
    assert addresses.nth_address(addresses.MAX_MEMBERS) == "127.0.0.254"
    with pytest.raises(ClusterError, match="at most"):
        addresses.nth_address(addresses.MAX_MEMBERS + 1)
    with pytest.raises(ClusterError):
        addresses.nth_address(0)
    assert addresses.is_loopback("127.0.0.11") and not addresses.is_loopback("10.0.0.1")
    assert not addresses.is_loopback("nonsense")
    env: dict[str, str] = {}
    addresses.add_preload(env, "/a/disk.so")
    addresses.apply_source_environment(env, "/b/bind.so", "127.0.0.12")
    addresses.add_preload(env, "/b/bind.so")  # once only
    assert env == {"LD_PRELOAD": "/a/disk.so:/b/bind.so", "WALSIM_SOURCE_ADDR": "127.0.0.12"}
    addresses.remove_preload(env, "/a/disk.so")
    assert env["LD_PRELOAD"] == "/b/bind.so"
    addresses.remove_preload(env, "/b/bind.so")
    assert "LD_PRELOAD" not in env
