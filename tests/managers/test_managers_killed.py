"""A managed run whose walsim-cli is killed with SIGKILL (issue 16, item 1):
the run's supervisor stops Patroni, etcd and the PostgreSQL servers Patroni
started (registered by the managers' process supervisor, or found working
in the cluster directory) and removes the directories.  One mechanism for
both (docs/security.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled, wait_until

from test_managers import TOP, VERDICTS, assert_clean, need, scenario_text

pytestmark = pytest.mark.pg


def test_sigkill_of_a_managed_run_leaves_nothing(tmp_path: Path) -> None:
    need("patroni")
    steps = '''
[[steps]]
wait = "sleep"
seconds = 120
'''
    path = tmp_path / "killed.toml"
    path.write_text(scenario_text("patroni", steps, VERDICTS, name="mgr-killed"))
    runtime = tmp_path / "rt"
    log = tmp_path / "cli.log"
    proc = subprocess.Popen([str(TOP / "tools" / "walsim-cli"), "run", str(path), "--out", str(tmp_path / "runs")],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, WALSIM_RUNTIME_DIR=str(runtime)), start_new_session=True)
    try:
        wait_until(lambda: log.read_text(), what="the run at its sleep step", done=lambda t: "wait sleep" in t,
                   timeout=scaled(180), logs=[log])
        reg = next((runtime / "runs").iterdir())
        whats = [json.loads(line)["what"] for line in (reg / "registry.jsonl").read_text().splitlines()]
        assert any("patroni" in w or w.startswith("manager") for w in whats), whats
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rundir = next(d for d in (tmp_path / "runs").iterdir() if d.is_dir())
    assert_clean(rundir)
    cluster = [json.loads(line)["path"] for line in (rundir / "events.jsonl").read_text().splitlines()
               if json.loads(line).get("type") == "cluster_dir"][0]
    wait_until(lambda: os.path.exists(cluster), what="the cluster directory removed", done=lambda e: not e,
               timeout=scaled(10))
    # run.json is marked after the directories are removed, and the registry goes last
    # (reading run.json when the cluster directory was gone failed once in CI)
    wait_until(lambda: os.path.exists(reg), what="the supervisor done (its registry removed)",
               done=lambda e: not e, timeout=scaled(10))
    assert json.loads((rundir / "run.json").read_text())["exit_status"] == 130
