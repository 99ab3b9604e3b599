"""Every scenario file runs as a test against real PostgreSQL.

Parametrised over ``scenarios/*.toml`` (or ``$WALSIM_SCENARIOS``, so a user's
CI runs ``pytest tests/scenarios`` over its own directory, with JUnit XML from
``--junitxml`` and parallel runs with ``-n``: nodes take ports from the shared
allocator).  A scenario passes when every verdict is PASS or INFO; otherwise
the verdict table, the run directory and the command that reproduces the run
are in the failure message.  Run directories of failed scenarios are kept
under pytest's temporary directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from walsim.api import run_scenario
from walsim.sim.netd import netd_binary
from walsim.commands._support import default_scenario_dir
from walsim.api import load_scenario

pytestmark = [pytest.mark.pg]

FILES = sorted(default_scenario_dir().glob("*.toml"))


def _table(result) -> str:
    return "\n".join(f"  {v.result:<5} {v.name}: {v.summary}" for v in result.verdicts)


#: Scenario outcomes that depend on the PostgreSQL major (WALSIM_PG, [cluster]
#: version): on these majors a failing run must show the mechanism in the
#: node's log, and is then an expected failure, not a wrong scenario
#: (docs/versions.md).  It may also pass there (the mechanism is a race).
VERSION_DIFFERENCES: dict[str, tuple[tuple[int, ...], str, str, str]] = {
    "wal-fsync-eio": (
        (13, 14), "pg1", r"startup: PANIC:  could not f(data)?sync[^\n]*\n(.*\n)*.*aborting startup due to "
                         r"startup process failure",
        "before 15 the startup process writes the end-of-crash-recovery checkpoint itself, so a failed WAL "
        "fsync there PANICs the startup process and the postmaster gives up ('aborting startup due to startup "
        "process failure'); from 15 the checkpointer runs during crash recovery and takes that checkpoint, its "
        "PANIC is an ordinary crash and the postmaster tries again until the disk is healed"),
}


def _expected_difference(scenario: object, result: object) -> str | None:
    from walsim.pg.pgbin import PgBin
    diff = VERSION_DIFFERENCES.get(scenario.name)  # type: ignore[attr-defined]
    if diff is None or result.exit_status == 0:  # type: ignore[attr-defined]
        return None
    majors, node, mechanism, why = diff
    major = scenario.pg_version or PgBin().major  # type: ignore[attr-defined]
    if major not in majors:
        return None
    log = (result.rundir / "nodes" / node / "postgresql.log").read_text(errors="replace")  # type: ignore[attr-defined]
    assert re.search(mechanism, log), (f"{scenario.name} failed on PostgreSQL {major}, but not by the "  # type: ignore[attr-defined]
                                       f"known difference (/{mechanism}/ not in {node}'s log): {result.rundir}")
    return f"PostgreSQL {major}: {why}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    if "netd" in scenario.needs() and not netd_binary().exists():
        pytest.fail(f"{path.name} needs walsim-netd, but {netd_binary()} is missing: run make")
    result = run_scenario(scenario, out=tmp_path, argv_file=str(path))
    assert (result.rundir / "report.html").exists()
    assert (result.rundir / "verdicts.json").exists()
    assert result.verdicts, "a scenario without verdicts proves nothing"
    why = _expected_difference(scenario, result)
    if why is not None:
        pytest.xfail(why)
    assert result.exit_status == 0, (
        f"{scenario.name}: exit status {result.exit_status}\n{_table(result)}\n"
        f"run directory: {result.rundir}\nreproduce with: {result.reproduce}")
