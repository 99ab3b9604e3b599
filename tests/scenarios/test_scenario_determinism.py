"""Determinism: the same scenario and seed give the same fault decisions.

The scenario streams pg2 through walsim-netd with a jittered delay: netd draws
each message's jitter from the decision function at the message's logical
coordinates (link, direction, connection key, message index).  Two runs with
one seed must agree on every coordinate both reached (how many messages a run
sends depends on timing, what is decided for message N must not); a third run
with another seed must disagree.  The ledger clients' choices (account and
amount per client and sequence number) are compared the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from walsim.api import run_scenario
from walsim.sim.netd import netd_binary
from walsim.api import parse_scenario

pytestmark = [pytest.mark.pg]

SCENARIO = '''
name = "determinism"
description = "a jittered delay on a standby's link under ledger load, for comparing decisions"
seed = 1234
durability = "async"

[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
[links.l2]
to = "pg1"
[workloads.ledger]
kind = "ledger"
node = "pg1"
clients = 2
rate = 100

[[steps]]
id = "jitter"
fault = "delay"
link = "l2"
dir = "down"
delay = "1ms"
jitter = "5ms"

[[steps]]
wait = "commits"
workload = "ledger"
count = 150

[[steps]]
heal = "all"

[[verdicts]]
check = "converge"
'''


def _decisions(rundir: Path) -> dict[tuple[Any, ...], Any]:
    out = {}
    for line in (rundir / "faults" / "netd.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "fault" and rec.get("rule") == "jitter":
            # the message index is the logical coordinate; the byte offset of
            # message N depends on how the sender batched WAL, so it is left out
            out[(rec["link"], rec["dir"], rec["conn"], rec["msg"])] = rec["delay_us"]
    return out


def _ledger(rundir: Path) -> dict[tuple[int, int], tuple[int, int]]:
    out = {}
    for line in (rundir / "ledger.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("op") == "write":
            out[(rec["client"], rec["seq"])] = (rec["account"], rec["amount"])
    return out


def _run(tmp_path: Path, seed: int, tag: str) -> Path:
    sc = parse_scenario(SCENARIO, "determinism.toml")
    result = run_scenario(sc, seed=seed, out=tmp_path / tag)
    assert result.exit_status == 0, [(v.name, v.result, v.summary) for v in result.verdicts]
    return result.rundir


def test_same_seed_same_decisions(tmp_path: Path) -> None:
    if not netd_binary().exists():
        pytest.fail(f"{netd_binary()} missing: run make")
    a, b, c = _run(tmp_path, 1234, "a"), _run(tmp_path, 1234, "b"), _run(tmp_path, 99, "c")
    da, db, dc = _decisions(a), _decisions(b), _decisions(c)
    common = set(da) & set(db)
    assert len(common) >= 20, f"too few common coordinates to compare ({len(common)})"
    differing = [k for k in common if da[k] != db[k]]
    assert not differing, f"same seed, different decisions at {differing[:5]}"
    other = set(da) & set(dc)
    assert other and sum(da[k] != dc[k] for k in other) > len(other) // 2, \
        "another seed should change most jitter decisions"
    la, lb, lc = _ledger(a), _ledger(b), _ledger(c)
    both = set(la) & set(lb)
    assert len(both) >= 100 and all(la[k] == lb[k] for k in both)
    assert sum(la[k] != lc[k] for k in set(la) & set(lc)) > 0
