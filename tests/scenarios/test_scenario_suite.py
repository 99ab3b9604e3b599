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


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    if "netd" in scenario.needs() and not netd_binary().exists():
        pytest.fail(f"{path.name} needs walsim-netd, but {netd_binary()} is missing: run make")
    result = run_scenario(scenario, out=tmp_path, argv_file=str(path))
    assert (result.rundir / "report.html").exists()
    assert (result.rundir / "verdicts.json").exists()
    assert result.verdicts, "a scenario without verdicts proves nothing"
    assert result.exit_status == 0, (
        f"{scenario.name}: exit status {result.exit_status}\n{_table(result)}\n"
        f"run directory: {result.rundir}\nreproduce with: {result.reproduce}")
