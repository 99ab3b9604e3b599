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
