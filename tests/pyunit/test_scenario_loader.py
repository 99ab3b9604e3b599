"""The scenario loader: every validation error names the file, the key path and
what was expected; valid files load into the model; the CLI exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from walsim.api import load_scenario, parse_scenario, vocabulary
from walsim.core.errors import ScenarioError
from walsim.scenario.loader import parse_standby_names
from walsim.scenario.registry import DEFAULT_WAIT_TIMEOUT
from walsim.scenario.schema import parse_duration, parse_lsn, parse_size

TOP = Path(__file__).resolve().parents[2]

HEAD = '''
name = "t"
description = "a test"
durability = "async"
'''
NODES = '''
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
'''
LINK = '''
[links.l2]
to = "pg1"
'''
LEDGER = '''
[workloads.ledger]
kind = "ledger"
node = "pg1"
'''


def issues_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "case.toml")
    for issue in info.value.issues:
        assert issue.file == "case.toml"
        assert str(issue).startswith("case.toml: ")
    return [(i.path, i.message) for i in info.value.issues]


def assert_issue(text: str, path: str, fragment: str) -> None:
    found = issues_of(text)
    assert any(p == path and fragment in m for p, m in found), found


# (id, scenario text, expected key path, fragment of the message)
CASES = [
    ("toml-syntax", HEAD + "[nodes\n", "(syntax)", "not valid TOML"),
    ("missing-name", 'description = "d"\ndurability = "async"\n' + NODES, "name", "missing required key"),
    ("unknown-top-key", HEAD + "colour = 3\n" + NODES, "colour", "unknown key"),
    ("seed-type", HEAD + 'seed = "x"\n' + NODES, "seed", "expected an integer"),
    ("seed-negative", HEAD + "seed = -1\n" + NODES, "seed", ">= 0"),
    ("durability-value", HEAD.replace('"async"', '"maybe"') + NODES, "durability", "expected one of async, sync, quorum"),
    ("no-nodes", HEAD, "nodes", "missing required table"),
    ("nodes-not-table", HEAD + "nodes = 3\n", "nodes", "expected a table"),
    ("two-primaries", HEAD + NODES.replace('role = "standby"\nupstream = "pg1"', 'role = "primary"'),
     "nodes", "exactly one node with role"),
    ("no-primary", HEAD + '[nodes.pg2]\nrole = "standby"\nupstream = "pg2"\n', "nodes", "exactly one"),
    ("role-value", HEAD + '[nodes.pg1]\nrole = "leader"\n', "nodes.pg1.role", "expected one of primary, standby"),
    ("standby-without-upstream", HEAD + NODES.replace('upstream = "pg1"', ''), "nodes.pg2.upstream",
     "needs the name of the node it streams from"),
    ("upstream-unknown", HEAD + NODES.replace('upstream = "pg1"', 'upstream = "pg9"'),
     "nodes.pg2.upstream", "unknown node 'pg9'"),
    ("upstream-self", HEAD + NODES.replace('upstream = "pg1"', 'upstream = "pg2"'),
     "nodes.pg2.upstream", "cannot stream from itself"),
    ("cycle", HEAD + NODES.replace('upstream = "pg1"', 'upstream = "pg3"')
     + '[nodes.pg3]\nrole = "standby"\nupstream = "pg2"\n', "nodes.pg2.upstream", "replication cycle"),
    ("primary-with-upstream", HEAD + NODES.replace('role = "primary"', 'role = "primary"\nupstream = "pg2"'),
     "nodes.pg1.upstream", "a primary streams from nobody"),
    ("primary-with-slot", HEAD + NODES.replace('role = "primary"', 'role = "primary"\nslot = true'),
     "nodes.pg1.slot", "no upstream"),
    ("via-undefined", HEAD + NODES + 'via = "l9"\n', "nodes.pg2.via", "undefined link 'l9'"),
    ("via-wrong-target", HEAD + NODES.replace('upstream = "pg1"', 'upstream = "pg1"\nvia = "l3"')
     + '[nodes.pg3]\nrole = "standby"\nupstream = "pg1"\n[links.l3]\nto = "pg3"\n',
     "nodes.pg2.via", "forwards to 'pg3', but the upstream is 'pg1'"),
    ("link-to-unknown", HEAD + NODES + '[links.l2]\nto = "pg7"\n', "links.l2.to", "unknown node 'pg7'"),
    ("link-missing-to", HEAD + NODES + '[links.l2]\n', "links.l2.to", "missing required key"),
    ("node-name", HEAD + NODES + '[nodes.PG3]\nrole = "standby"\nupstream = "pg1"\n', "nodes.PG3", "must match"),
    ("node-unknown-key", HEAD + NODES + 'colour = "red"\n', "nodes.pg2.colour", "unknown key"),
    ("slot-value", HEAD + NODES + 'slot = "Bad Slot"\n', "nodes.pg2.slot", "slot name"),
    ("settings-type", HEAD + NODES + 'settings = { work_mem = [1] }\n', "nodes.pg2.settings", "[work_mem]"),
    ("settings-name", HEAD + '[settings]\n"Work Mem" = 1\n' + NODES, "settings", "not a PostgreSQL setting"),
    ("sync-without-names", HEAD.replace('"async"', '"sync"') + NODES, "durability",
     "synchronous_standby_names is empty"),
    ("sync-unknown-standby", HEAD.replace('"async"', '"sync"')
     + '[settings]\nsynchronous_standby_names = "FIRST 1 (pg9)"\n' + NODES,
     "settings.synchronous_standby_names", "pg9 which is not a standby"),
    ("sync-too-many", HEAD.replace('"async"', '"sync"')
     + '[settings]\nsynchronous_standby_names = "FIRST 2 (pg2)"\n' + NODES,
     "settings.synchronous_standby_names", "asks for 2"),
    ("sync-commit-local", HEAD.replace('"async"', '"sync"')
     + '[settings]\nsynchronous_standby_names = "pg2"\nsynchronous_commit = "local"\n' + NODES,
     "durability", "needs synchronous_commit"),
    ("quorum-needs-any", HEAD.replace('"async"', '"quorum"')
     + '[settings]\nsynchronous_standby_names = "FIRST 1 (pg2)"\n' + NODES,
     "settings.synchronous_standby_names", "ANY k"),
    ("sync-with-any", HEAD.replace('"async"', '"sync"')
     + '[settings]\nsynchronous_standby_names = "ANY 1 (pg2)"\n' + NODES,
     "settings.synchronous_standby_names", "use quorum"),
    ("workload-kind", HEAD + NODES + '[workloads.w]\nkind = "oltp"\n', "workloads.w.kind", "expected one of ledger"),
    ("workload-unknown-key", HEAD + NODES + LEDGER + "speed = 3\n", "workloads.ledger.speed", "unknown key"),
    ("workload-node", HEAD + NODES + LEDGER.replace('node = "pg1"', 'node = "pg5"'), "workloads.ledger.node",
     "unknown node 'pg5'"),
    ("workload-clients", HEAD + NODES + LEDGER + "clients = 0\n", "workloads.ledger.clients", ">= 1"),
    ("ledger-no-node-no-endpoints", HEAD + NODES + '[workloads.w]\nkind = "ledger"\n', "workloads.w.node",
     "or endpoints"),
    ("ledger-endpoint-unknown", HEAD + NODES + '[workloads.w]\nkind = "ledger"\nendpoints = ["pg1", "pg8"]\n',
     "workloads.w.endpoints", "element [1]: expected a node name (pg1, pg2), a link name (none declared) "
     "or \"host:port\", got 'pg8'"),
    ("ledger-endpoint-port", HEAD + NODES + '[workloads.w]\nkind = "ledger"\nendpoints = ["db:99999"]\n',
     "workloads.w.endpoints", "got 'db:99999'"),
    ("ledger-node-not-endpoint", HEAD + NODES + '[workloads.w]\nkind = "ledger"\nnode = "pg2"\n'
     'endpoints = ["pg1"]\n', "workloads.w.node", "pg2 is not one of the endpoints"),
    ("ledger-on-standby", HEAD + NODES + '[workloads.w]\nkind = "ledger"\nnode = "pg2"\n', "workloads.w.node",
     "pg2 is a standby when the workload starts (autostart; the primary is then pg1)"),
    ("ledger-started-on-standby", HEAD + NODES + '[workloads.w]\nkind = "ledger"\nnode = "pg1"\nautostart = false\n'
     '[[steps]]\nload = "retarget"\nname = "w"\nnode = "pg2"\n[[steps]]\nload = "start"\nname = "w"\n',
     "workloads.w.node", "pg2 is a standby when the workload starts (at steps[1]"),
    ("workload-kind-missing", HEAD + NODES + '[workloads.w]\nnode = "pg1"\n', "workloads.w.kind",
     "missing required key (expected one of ledger"),
    ("reader-nodes-empty", HEAD + NODES + '[workloads.r]\nkind = "reader"\nnodes = []\n', "workloads.r.nodes",
     "at least 1"),
    ("steps-not-array", HEAD + 'steps = 3\n' + NODES, "steps", "expected an array of tables"),
    ("step-no-category", HEAD + NODES + '[[steps]]\nnode = "pg1"\n', "steps[0]", "exactly one of the keys"),
    ("step-two-categories", HEAD + NODES + '[[steps]]\ndo = "kill"\nwait = "sleep"\n', "steps[0]",
     "found: do, wait"),
    ("step-unknown-do", HEAD + NODES + '[[steps]]\ndo = "explode"\nnode = "pg1"\n', "steps[0].do",
     "unknown do kind 'explode'"),
    ("step-kind-type", HEAD + NODES + '[[steps]]\ndo = 3\n', "steps[0].do", "expected a string"),
    ("step-unknown-node", HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg7"\n', "steps[0].node",
     "unknown node 'pg7'"),
    ("step-missing-node", HEAD + NODES + '[[steps]]\ndo = "kill"\n', "steps[0].node", "missing required key"),
    ("step-unknown-key", HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg1"\nforce = true\n',
     "steps[0].force", "unknown key"),
    ("step-signal", HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg1"\nsignal = "SEGV"\n',
     "steps[0].signal", "expected one of KILL"),
    ("step-bad-duration", HEAD + NODES + '[[steps]]\nwait = "catchup"\nnode = "pg2"\ntimeout = "soon"\n',
     "steps[0].timeout", "expected a duration"),
    ("step-bad-lsn", HEAD + NODES + '[[steps]]\nwait = "lsn_passed"\nnode = "pg2"\nlsn = "0/XYZ"\n',
     "steps[0].lsn", "expected an LSN"),
    ("lsn-passed-both", HEAD + NODES + '[[steps]]\nwait = "lsn_passed"\nnode = "pg2"\nlsn = "0/3000000"\nof = "pg1"\n',
     "steps[0].lsn", "exactly one of lsn"),
    ("commits-unknown-workload", HEAD + NODES + '[[steps]]\nwait = "commits"\nworkload = "w"\ncount = 3\n',
     "steps[0].workload", "unknown workload 'w'"),
    ("heal-unknown", HEAD + NODES + '[[steps]]\nheal = "f1"\n', "steps[0].heal", "unknown fault 'f1'"),
    ("heal-before-fault", HEAD + NODES + LINK + '[[steps]]\nheal = "f1"\n[[steps]]\nid = "f1"\nfault = "stall"\nlink = "l2"\n',
     "steps[0].heal", "declared by a later step"),
    ("heal-type", HEAD + NODES + '[[steps]]\nheal = 1\n', "steps[0].heal", "expected a fault id"),
    ("fault-undefined-link", HEAD + NODES + '[[steps]]\nfault = "delay"\nlink = "l9"\ndelay = "10ms"\n',
     "steps[0].link", "unknown link 'l9'"),
    ("fault-unknown-kind", HEAD + NODES + LINK + '[[steps]]\nfault = "gremlins"\nlink = "l2"\n',
     "steps[0].fault", "unknown fault kind"),
    ("fault-missing-param", HEAD + NODES + LINK + '[[steps]]\nfault = "delay"\nlink = "l2"\n',
     "steps[0].delay", "missing required key"),
    ("corrupt-no-position", HEAD + NODES + LINK + '[[steps]]\nfault = "corrupt"\nlink = "l2"\n',
     "steps[0].at_lsn", "exactly one of at_lsn"),
    ("corrupt-both-dirs", HEAD + NODES + LINK + '[[steps]]\nfault = "corrupt"\nlink = "l2"\nat_lsn = "0/3000000"\ndir = "both"\n',
     "steps[0].dir", "one direction"),
    ("two-triggers", HEAD + NODES + LINK + '[[steps]]\nfault = "stall"\nlink = "l2"\nat_lsn = "0/3000000"\nafter_bytes = 5\n',
     "steps[0].after_bytes", "at most one trigger"),
    ("bandwidth-zero", HEAD + NODES + LINK + '[[steps]]\nfault = "bandwidth"\nlink = "l2"\nrate = 0\n',
     "steps[0].rate", "use fault = \"stall\""),
    ("drop-message-type", HEAD + NODES + LINK + '[[steps]]\nfault = "drop"\nlink = "l2"\nmessages = ["x"]\n',
     "steps[0].messages", "element [0]"),
    ("disk-no-effect", HEAD + NODES + '[[steps]]\nfault = "disk"\nnode = "pg1"\npath = "pg_wal/*"\nops = ["fsync"]\n',
     "steps[0].errno", "exactly one effect"),
    ("duplicate-step-id", HEAD + NODES + '[[steps]]\nid = "a"\ndo = "checkpoint"\nnode = "pg1"\n'
     '[[steps]]\nid = "a"\ndo = "checkpoint"\nnode = "pg1"\n', "steps[1].id", "duplicate step id"),
    ("promote-primary", HEAD + NODES + '[[steps]]\ndo = "promote"\nnode = "pg1"\n', "steps[0].node",
     "is the primary at this step"),
    ("promote-twice", HEAD + NODES + '[[steps]]\ndo = "promote"\nnode = "pg2"\n[[steps]]\ndo = "promote"\nnode = "pg2"\n',
     "steps[1].node", "is the primary at this step"),
    ("repoint-self", HEAD + NODES + '[[steps]]\ndo = "repoint"\nnode = "pg2"\nupstream = "pg2"\n',
     "steps[0].upstream", "cannot stream from itself"),
    ("sql-expect-both", HEAD + NODES + '[[steps]]\ndo = "sql"\nnode = "pg1"\nquery = "SELECT 1"\n'
     'expect = [[1]]\nexpect_error = "25006"\n', "steps[0].expect_error", "exclude each other"),
    ("sql-expect-shape", HEAD + NODES + '[[steps]]\ndo = "sql"\nnode = "pg1"\nquery = "SELECT 1"\nexpect = [1]\n',
     "steps[0].expect", "array of rows"),
    ("sql-sqlstate", HEAD + NODES + '[[steps]]\ndo = "sql"\nnode = "pg1"\nquery = "x"\nexpect_error = "oops"\n',
     "steps[0].expect_error", "matching"),
    ("verdict-unknown", HEAD + NODES + '[[verdicts]]\ncheck = "vibes"\n', "verdicts[0].check", "expected one of"),
    ("verdict-unknown-key", HEAD + NODES + '[[verdicts]]\ncheck = "single_writer"\nstrict = true\n',
     "verdicts[0].strict", "unknown key"),
    ("verdict-node-map", HEAD + NODES + '[[verdicts]]\ncheck = "timeline"\nexpect = { pg4 = 2 }\n',
     "verdicts[0].expect", "unknown node 'pg4'"),
    ("verdict-timeline-type", HEAD + NODES + '[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = "two" }\n',
     "verdicts[0].expect", "[pg2]"),
    ("verdict-step-ref", HEAD + NODES + '[[verdicts]]\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-x"\nwithin = "5s"\n',
     "verdicts[0].after", "unknown step 'heal-x'"),
    ("verdict-fault-ref", HEAD + NODES + '[[steps]]\nid = "x"\ndo = "checkpoint"\nnode = "pg1"\n'
     '[[verdicts]]\ncheck = "corruption_detected_not_applied"\nnode = "pg2"\nfault = "x"\n',
     "verdicts[0].fault", "unknown fault 'x'"),
    ("verdict-regex", HEAD + NODES + '[[verdicts]]\ncheck = "log_contains"\nnode = "pg2"\nregex = "("\n',
     "verdicts[0].regex", "valid regular expression"),
    ("verdict-missing", HEAD + NODES + '[[verdicts]]\ncheck = "timeline"\n', "verdicts[0].expect",
     "missing required key"),
]


@pytest.mark.parametrize("text,path,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_error(text: str, path: str, fragment: str) -> None:
    assert_issue(text, path, fragment)


def test_every_problem_reported_at_once() -> None:
    text = HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg7"\n[[steps]]\nwait = "sleep"\n' \
        '[[verdicts]]\ncheck = "nope"\n'
    paths = [p for p, _ in issues_of(text)]
    assert paths == ["steps[0].node", "steps[1].seconds", "verdicts[0].check"]


def test_a_misspelt_role_is_reported_once() -> None:
    """A node with an invalid table is still declared: no cascade of false errors about it."""
    text = HEAD + NODES.replace('role = "primary"', 'rol = "primary"')
    paths = [p for p, _ in issues_of(text)]
    assert paths == ["nodes.pg1.rol", "nodes.pg1.role"]


def test_valid_scenario_model() -> None:
    text = HEAD + 'seed = 42\n[settings]\nfsync = "off"\n' + NODES.replace(
        'upstream = "pg1"', 'upstream = "pg1"\nvia = "l2"\nslot = true') + LINK + LEDGER + '''
[[steps]]
id = "slow"
fault = "delay"
link = "l2"
delay = "50ms"
[[steps]]
wait = "commits"
workload = "ledger"
count = 10
timeout = "20s"
[[steps]]
heal = "slow"
[[steps]]
do = "promote"
node = "pg2"
[[verdicts]]
check = "lag_recovers"
node = "pg2"
after = "slow"
within = "10s"
max_bytes = "64kB"
'''
    sc = parse_scenario(text, "ok.toml")
    assert sc.seed == 42 and sc.primary == "pg1"
    assert sc.nodes["pg2"].slot == "pg2_slot" and sc.nodes["pg2"].via == "l2"
    assert [s.category for s in sc.steps] == ["fault", "wait", "heal", "do"]
    assert sc.steps[0].values["delay"] == pytest.approx(0.05)
    assert sc.steps[0].values["dir"] == "down"
    assert sc.steps[1].values["timeout"] == 20.0
    assert sc.steps[2].values["target"] == "slow"
    assert sc.steps[3].id == "promote-3"
    assert sc.verdicts[0].values["max_bytes"] == 65536
    assert sc.workloads["ledger"].values["clients"] == 2  # default
    assert sc.needs() == {"cluster", "netd"}
    assert sc.settings_for("pg2")["fsync"] == "off"


def test_wait_has_default_timeout() -> None:
    sc = parse_scenario(HEAD + NODES + '[[steps]]\nwait = "catchup"\nnode = "pg2"\n')
    assert sc.steps[0].values["timeout"] == DEFAULT_WAIT_TIMEOUT


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert info.value.issues[0].path == "(file)"


@pytest.mark.parametrize("path", sorted((TOP / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.description and sc.verdicts


def test_every_kind_has_a_runner_and_doc() -> None:
    for kind in vocabulary().step_kinds():
        assert kind.run is not None, kind.name
        assert kind.doc, kind.name


@pytest.mark.parametrize("text,seconds", [("250ms", 0.25), ("5s", 5.0), ("2min", 120.0), (3, 3.0), ("1.5s", 1.5)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_sizes_and_lsns() -> None:
    assert parse_size("64kB") == 65536 and parse_size("16MB") == 16 << 20 and parse_size(7) == 7
    assert parse_lsn("0/3000148") == 0x3000148 and parse_lsn("1/0") == 1 << 32


def test_standby_names() -> None:
    assert parse_standby_names("FIRST 1 (pg2, pg3)") == ("FIRST", 1, ["pg2", "pg3"])
    assert parse_standby_names("ANY 2 (a,b,c)") == ("ANY", 2, ["a", "b", "c"])
    assert parse_standby_names("pg2") == ("FIRST", 1, ["pg2"])
    assert parse_standby_names('2 ("a", b)') == ("FIRST", 2, ["a", "b"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "walsim", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_cli_check_invalid_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg7"\n')
    r = _cli("check", str(bad))
    assert r.returncode == 2
    assert f"{bad}: steps[0].node: unknown node 'pg7'" in r.stderr


def test_cli_run_invalid_exits_2_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + NODES + '[[steps]]\ndo = "kill"\n')
    r = _cli("run", str(bad), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2
    assert "steps[0].node: missing required key" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_check_and_list_shipped() -> None:
    r = _cli("check", str(TOP / "scenarios"))
    assert r.returncode == 0, r.stderr
    assert "ok: " in r.stdout
    r = _cli("list", str(TOP / "scenarios"))
    assert r.returncode == 0 and "tutorial.toml" in r.stdout


def test_cli_list_missing_directory_exits_2(tmp_path: Path) -> None:
    r = _cli("list", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert f"{tmp_path / 'nowhere'}: not a directory" in r.stderr


DISK_RULE = '[[steps]]\nfault = "disk"\nnode = "pg1"\npath = "pg_wal/0*"\nops = ["fsync"]\nerrno = "EIO"\n'


def test_disk_fault_needs_the_layer_on_the_node() -> None:
    assert_issue(HEAD + NODES + DISK_RULE, "steps[0].node", "not under the disk fault layer")


def test_power_cut_needs_the_journal() -> None:
    text = HEAD + NODES.replace('role = "primary"', 'role = "primary"\ndisk = true') \
        + '[[steps]]\ndo = "power_cut"\nnode = "pg1"\n'
    assert_issue(text, "steps[0].node", "needs the undo journal")


def test_disk_mode_value() -> None:
    assert_issue(HEAD + NODES.replace('role = "primary"', 'role = "primary"\ndisk = "yes"'),
                 "nodes.pg1.disk", "expected true, false or \"journal\"")


def test_disk_rule_words() -> None:
    from walsim.faults.disk import rule_words
    sc = parse_scenario(HEAD + NODES.replace('role = "primary"', 'role = "primary"\ndisk = "journal"')
                        + DISK_RULE.replace('errno = "EIO"', 'delay = "2ms"\nnth = 3')
                        + '[[steps]]\ndo = "power_cut"\nnode = "pg1"\n')
    assert sc.nodes["pg1"].options["disk"] == "journal" and sc.needs() == {"cluster", "disk"}
    assert rule_words(sc.steps[0].values) == {"path": "pg_wal/0*", "ops": ["fsync"], "do": "delay:2000",
                                              "when": "nth:3", "limit": 0}


def test_promote_most_advanced_roles() -> None:
    three = NODES + '[nodes.pg3]\nrole = "standby"\nupstream = "pg1"\n'
    assert_issue(HEAD + three + '[[steps]]\ndo = "promote_most_advanced"\ncandidates = ["pg1", "pg2"]\n',
                 "steps[0].candidates", "pg1 is the primary at this step")
    # after it, the primary is decided at run time: a later promote is not second-guessed
    sc = parse_scenario(HEAD + three + '[[steps]]\ndo = "promote_most_advanced"\ncandidates = ["pg2", "pg3"]\n'
                        '[[steps]]\ndo = "follow_primary"\nnodes = ["pg2", "pg3"]\n'
                        '[[steps]]\ndo = "promote"\nnode = "pg3"\n')
    assert [st.kind for st in sc.steps] == ["promote_most_advanced", "follow_primary", "promote"]


def test_clock_fault_needs_faketime_on_the_node() -> None:
    step = '[[steps]]\nfault = "clock"\nnode = "pg2"\noffset = "-1h"\n'
    assert_issue(HEAD + NODES + step, "steps[0].node", "clock = true")
    sc = parse_scenario(HEAD + NODES + "clock = true\n" + step)
    assert sc.steps[0].values["offset"] == -3600.0 and sc.nodes["pg2"].options["clock"]
    assert sc.needs() == {"cluster", "clock"}
    assert_issue(HEAD + NODES + "clock = true\n" + step.replace('"-1h"', '"1h"'), "steps[0].offset",
                 "signed duration")


def test_ledger_endpoints_and_a_ledger_started_after_promotion_load() -> None:
    sc = parse_scenario(HEAD + NODES + LINK + '[workloads.w]\nkind = "ledger"\n'
                        'endpoints = ["pg2", "l2", "127.0.0.1:6432", "[::1]:5432"]\n'
                        '[workloads.later]\nkind = "ledger"\nnode = "pg2"\nautostart = false\n'
                        '[[steps]]\ndo = "promote"\nnode = "pg2"\nretarget = false\n'
                        '[[steps]]\nload = "start"\nname = "later"\n', "ok.toml")
    w = sc.workloads["w"].values
    assert w["endpoints"] == ["pg2", "l2", "127.0.0.1:6432", "[::1]:5432"] and w["node"] is None
    assert w["statement_timeout"] == 5.0 and w["tcp_user_timeout"] == 5.0 and w["connect_timeout"] == 2.0
