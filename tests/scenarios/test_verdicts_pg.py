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
