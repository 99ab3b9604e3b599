"""One run at a time per process: ``$WALSIM_REGISTRY`` (where a run records the
processes it started, so its supervisor can stop them) belongs to the process,
so a second run started from another thread used to register its servers in
the first run's registry, and the first run's supervisor stopped them when
the first run ended ("the database system is shutting down" in the second
run's settle phase, seen with three runs in threads).  Now the second run is
refused with a clear error, and the first is untouched."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from walsim.api import load_scenario, run_scenario
from walsim.core.errors import RunInProgress, WalsimError
from walsim.core.supervise import REGISTRY_ENV, RunSupervisor

SCENARIO = """
name = "second"
description = "never runs: another run holds the process"
durability = "async"
[nodes.pg1]
role = "primary"
[[steps]]
wait = "sleep"
seconds = 0.1
"""


def test_a_second_run_in_another_thread_is_refused(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with RunSupervisor("run-first", tmp_path) as first:
        mine = os.environ[REGISTRY_ENV]
        assert first.registry is not None and mine == str(first.registry.path)

        def second() -> None:
            try:
                with RunSupervisor("run-second", tmp_path):
                    pass
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        t = threading.Thread(target=second)
        t.start()
        t.join(30)
        assert os.environ[REGISTRY_ENV] == mine, "the refused run changed the first run's registry"
    assert len(errors) == 1 and isinstance(errors[0], RunInProgress) and isinstance(errors[0], WalsimError)
    assert "run-first is in progress" in str(errors[0]) and "separate processes" in str(errors[0])
    assert REGISTRY_ENV not in os.environ
    # the first run over, the next one may start
    with RunSupervisor("run-third", tmp_path):
        pass


def test_run_scenario_refused_leaves_no_run_directory(tmp_path: Path) -> None:
    path = tmp_path / "second.toml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    out = tmp_path / "runs"
    with RunSupervisor("run-first", tmp_path):
        with pytest.raises(RunInProgress, match="cannot start run-second"):
            run_scenario(scenario, out=out)
    assert not any(out.iterdir()), "the refused run left a run directory"
