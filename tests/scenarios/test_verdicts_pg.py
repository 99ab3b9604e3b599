"""Verdicts whose subject is PostgreSQL's own behaviour, judged on real runs
(issue 19): an unlogged table does not break convergence, a commit blocks
while the only synchronous standby is partitioned and is released by the heal,
a hung step ends the run with a clear failure, a verdict judged while a fault
is still on, a bit flipped where PostgreSQL does not look."""

from __future__ import annotations

from pathlib import Path

import pytest

from walsim.api import RunResult, parse_scenario, run_scenario
from walsim.sim.netd import netd_binary

pytestmark = [pytest.mark.pg]


def run(text: str, tmp_path: Path, name: str) -> RunResult:
    sc = parse_scenario(text, f"{name}.toml")
    if "netd" in sc.needs() and not netd_binary().exists():
        pytest.fail(f"needs walsim-netd, but {netd_binary()} is missing: run make")
    return run_scenario(sc, out=tmp_path)


def by_name(result: RunResult) -> dict[str, object]:
    return {v.name: v for v in result.verdicts}


def table(result: RunResult) -> str:
    return "\n".join(f"{v.result} {v.name}: {v.summary}" for v in result.verdicts)


UNLOGGED = '''
name = "unlogged"
description = "an unlogged table beside a replicated one"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
[[steps]]
do = "sql"
node = "pg1"
query = "CREATE UNLOGGED TABLE scratch AS SELECT g AS x FROM generate_series(1, 100) g"
[[steps]]
do = "sql"
node = "pg1"
query = "CREATE TABLE kept AS SELECT g AS x FROM generate_series(1, 100) g"
[[steps]]
wait = "catchup"
node = "pg2"
[[verdicts]]
check = "converge"
'''


def test_an_unlogged_table_is_skipped_and_the_others_compared(tmp_path: Path) -> None:
    result = run(UNLOGGED, tmp_path, "unlogged")
    v = by_name(result)["converge"]
    assert v.result == "PASS", table(result)
    assert v.evidence["compared"] == ["public.kept"]
    assert v.evidence["skipped"] == {"public.scratch": "unlogged: not replicated by design"}
    assert v.summary.endswith("(1 table(s) compared: public.kept; skipped: public.scratch "
                              "(unlogged: not replicated by design))")


PADDING = '''
name = "padding-flip"
description = "a bit flipped in the alignment padding of a WAL page header"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
[links.l2]
to = "pg1"
[[steps]]
id = "c1"
fault = "corrupt"
link = "l2"
at_lsn = "0/8002014"
note = "byte 20 of the second page of segment 8: padding after the page header's fields"
[[steps]]
do = "sql"
node = "pg1"
query = "CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 100000) g"
[[steps]]
wait = "lsn_passed"
node = "pg2"
kind = "replay"
lsn = "0/8004000"
[[steps]]
do = "sql"
node = "pg1"
query = "DROP TABLE filler"
[[steps]]
heal = "c1"
[[verdicts]]
check = "corruption_detected_not_applied"
node = "pg2"
fault = "c1"
'''


def test_a_flip_in_page_header_padding_is_not_detectable(tmp_path: Path) -> None:
    """PostgreSQL never reads bytes 20-23 of a WAL page: the standby replays past the
    flipped byte without a word, and walsim says so (INFO), neither PASS nor FAIL."""
    result = run(PADDING, tmp_path, "padding")
    v = by_name(result)["corruption_detected_not_applied"]
    assert v.result == "INFO", table(result)
    assert v.summary.startswith("not detectable: the damaged bytes are not checked by the server (corruption at "
                                "0/8002014, byte 20 of the page header at 0/8002000: its alignment padding)")
    assert v.evidence["firings"] >= 1 and not v.evidence["detections"]


SYNC_CUT = '''
name = "sync-cut"
description = "the only synchronous standby partitioned: commits block until the heal"
durability = "sync"
[settings]
synchronous_commit = "on"
synchronous_standby_names = "FIRST 1 (pg2)"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
settings = { synchronous_standby_names = "" }
[links.l2]
to = "pg1"
[workloads.ledger]
kind = "ledger"
node = "pg1"
clients = 2
rate = 50
statement_timeout = "30s"
[[steps]]
wait = "commits"
workload = "ledger"
count = 20
[[steps]]
id = "cut"
fault = "partition"
link = "l2"
[[steps]]
id = "insert"
do = "sql"
node = "pg1"
query = "INSERT INTO walsim_ledger VALUES (-1, -1, -1, 0, 0) RETURNING id"
blocks = "3s"
expect = [[-1]]
[[steps]]
id = "heal-cut"
heal = "cut"
[[steps]]
wait = "released"
step = "insert"
after = "heal-cut"
[[steps]]
wait = "commits"
workload = "ledger"
count = 20
[[verdicts]]
check = "no_acks_during"
fault = "cut"
[[verdicts]]
check = "no_acked_loss"
'''


def test_a_commit_blocks_while_the_synchronous_standby_is_partitioned(tmp_path: Path) -> None:
    result = run(SYNC_CUT, tmp_path, "sync-cut")
    v = by_name(result)
    assert result.exit_status == 0, table(result)
    nad = v["no_acks_during"]
    # commits sent inside the window, or (when both clients had one in flight as the cut
    # came, so that they sent nothing more) commits held from before until the heal
    assert nad.result == "PASS"
    assert nad.evidence["attempted"] + nad.evidence["in_flight_at_start_held"] > 0
    assert nad.evidence["acked_during_by_node"] == {}
    assert nad.summary.startswith("no commit sent while cut was active (t=")


def test_without_a_synchronous_standby_the_commit_does_not_block(tmp_path: Path) -> None:
    """The same steps with asynchronous replication: the sql step fails (the INSERT
    returned at once) and every commit during the partition was acknowledged."""
    text = (SYNC_CUT.replace('durability = "sync"', 'durability = "async"')
            .replace('synchronous_standby_names = "FIRST 1 (pg2)"', 'synchronous_standby_names = ""')
            .replace('[[steps]]\nid = "insert"',
                     '[[steps]]\nwait = "commits"\nworkload = "ledger"\ncount = 20\n[[steps]]\nid = "insert"'))
    result = run(text, tmp_path, "async-cut")
    assert result.step_error is not None and "it was expected to block for 3 s" in result.step_error
    assert result.step_error.startswith("steps[3] (do sql node=pg1): the statement succeeded after ")
    nad = by_name(result)["no_acks_during"]
    assert nad.result == "FAIL", table(result)
    assert nad.evidence["acked_during_by_node"].get("pg1", 0) > 0


HUNG = SYNC_CUT.replace('blocks = "3s"\nexpect = [[-1]]\n', 'timeout = "4s"\n').replace(
    '[[steps]]\nwait = "released"\nstep = "insert"\nafter = "heal-cut"\n', '')


@pytest.mark.timeout(600)
def test_a_hung_step_ends_the_run_with_a_clear_failure_and_a_full_teardown(tmp_path: Path) -> None:
    """An INSERT blocked by the partitioned synchronous standby, without blocks: the step
    outlives its deadline, fails, and the run settles and tears down (before issue 19 the
    run hung for ever)."""
    result = run(HUNG, tmp_path, "hung")
    assert result.step_error is not None
    assert result.step_error.startswith("steps[2] (do sql node=pg1): did not finish within ")
    mult = float((result.rundir / "run.json").read_text().split('"timeout_mult": ')[1].split(",")[0].split("\n")[0])
    assert f"within {4 * mult:g} s" in result.step_error
    events = (result.rundir / "events.jsonl").read_text()
    assert '"type": "step_deadline"' in events and '"type": "run_end"' in events
    # the cluster is gone: no server of this run is left running
    cluster_dir = [line for line in events.splitlines() if '"cluster_dir"' in line][0].split('"path": "')[1].split('"')[0]
    assert not Path(cluster_dir, "pg1", "data", "postmaster.pid").exists()


PARTITIONED = '''
name = "judged-while-partitioned"
description = "a standby partitioned away does not converge while the partition lasts, and does after"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
[nodes.pg3]
role = "standby"
upstream = "pg1"
[links.l2]
to = "pg1"
[workloads.ledger]
kind = "ledger"
node = "pg1"
rate = 100
[[steps]]
id = "cut"
fault = "partition"
link = "l2"
[[steps]]
id = "more"
wait = "commits"
workload = "ledger"
count = 50
[[verdicts]]
id = "pg2-not-while-cut"
check = "converge"
nodes = ["pg2"]
within = "2s"
at = "more"
holds = false
[[verdicts]]
id = "pg3-while-cut"
check = "converge"
nodes = ["pg3"]
within = "10s"
at = "more"
[[verdicts]]
id = "all-after-heal"
check = "converge"
'''


def test_a_verdict_judged_while_a_fault_is_still_on(tmp_path: Path) -> None:
    """converge judged at a step, the partition still on: pg2 (behind it) does not
    converge, pg3 does; after the end phase's heal every node converges."""
    result = run(PARTITIONED, tmp_path, "partitioned")
    v = by_name(result)
    assert result.exit_status == 0, table(result)
    assert v["pg2-not-while-cut"].summary.startswith("does not hold, as expected (holds = false): pg2 never "
                                                      "replayed up to ")
    assert v["pg2-not-while-cut"].judged_at.startswith("step more (t=")
    assert v["pg3-while-cut"].summary.endswith("(table checksums not compared: workloads were running (ledger))")
    assert v["all-after-heal"].judged_at == "end of run"
    assert (result.rundir / "snapshots" / "more.json").exists()


THROUGH_LINK = '''
name = "clients-through-a-link"
description = "clients reach the primary through a walsim-netd link; the link is cut, a standby promoted"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
[links.front]
to = "pg1"
[workloads.ledger]
kind = "ledger"
endpoints = ["front", "pg2"]
rate = 100
statement_timeout = "1s"
[[steps]]
wait = "commits"
workload = "ledger"
count = 50
[[steps]]
id = "cut"
fault = "partition"
link = "front"
[[steps]]
do = "promote"
node = "pg2"
retarget = false
[[steps]]
wait = "commits"
workload = "ledger"
count = 50
[[verdicts]]
check = "failover_time_under"
from = "cut"
max = "60s"
'''


def test_clients_through_a_link_are_recorded_by_the_node_that_acknowledged(tmp_path: Path) -> None:
    """An endpoint that is a proxy (a walsim-netd link to pg1): each commit records the
    endpoint it went through and the node that acknowledged it (the server's own
    address); when the link is cut the clients find pg2 themselves."""
    import json
    result = run(THROUGH_LINK, tmp_path, "through-link")
    assert result.exit_status == 0, table(result)
    acked = [json.loads(x) for x in (result.rundir / "ledger.jsonl").read_text().splitlines()]
    acked = [r for r in acked if r.get("op") == "write" and r["outcome"] == "acked"]
    assert {(r["endpoint"], r["node"]) for r in acked} == {("front", "pg1"), ("pg2", "pg2")}
    ft = by_name(result)["failover_time_under"]
    assert ft.evidence["failed_node"] == "pg1" and ft.evidence["new_primary"] == "pg2"
