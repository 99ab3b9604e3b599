"""``walsim-cli run --junit FILE --json FILE`` end to end against real
PostgreSQL: a passing and a failing scenario in one call, and a run stopped
by SIGTERM (the files name the interrupted run, with the same status as the
command's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

pytestmark = [pytest.mark.pg]

TOP = Path(__file__).resolve().parents[2]
SCHEMA = etree.XMLSchema(etree.parse(str(TOP / "tests" / "data" / "junit.xsd")))

BASE = '''
name = "{name}"
description = "{name}"
seed = 6
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
[[steps]]
do = "sql"
node = "pg1"
query = "CREATE TABLE t AS SELECT 1 AS x"
{steps}
[[verdicts]]
check = "converge"
within = "30s"
{verdicts}
'''


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TOP / "tools")}
    return subprocess.Popen([sys.executable, "-m", "walsim", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def test_junit_and_json_of_a_passing_and_a_failing_scenario(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a-pass.toml").write_text(BASE.format(name="passes", steps="", verdicts=""))
    (tmp_path / "s" / "b-fail.toml").write_text(BASE.format(
        name="fails", steps="", verdicts='[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = 3 }\n'))
    proc = _cli("run", "s", "--junit", "out/r.xml", "--json", "out/r.json", "--out", "runs", cwd=tmp_path)
    (tmp_path / "out").mkdir()
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    xml = (tmp_path / "out" / "r.xml").read_bytes()
    assert SCHEMA.validate(etree.fromstring(xml)), SCHEMA.error_log
    suites = {s.get("name"): s for s in ET.fromstring(xml).findall("testsuite")}
    assert set(suites) == {"passes", "fails"}
    assert (suites["passes"].get("failures"), suites["fails"].get("failures")) == ("0", "1")
    failure = suites["fails"].find("testcase[@name='timeline']/failure")
    assert "pg2" in failure.get("message")
    assert "reproduce with: walsim-cli run s/b-fail.toml --seed 6" in failure.text
    doc = json.loads((tmp_path / "out" / "r.json").read_text())
    assert doc["exit_status"] == 1 and [r["exit_status"] for r in doc["runs"]] == [0, 1]
    for run in doc["runs"]:
        assert (tmp_path / run["report"]).is_file()
        assert json.loads((tmp_path / run["rundir"] / "run.json").read_text())["exit_status"] == run["exit_status"]
    assert (tmp_path / "runs" / "index.html").read_text().count("/report.html") == 2


def test_sigterm_writes_the_interrupted_run(tmp_path: Path) -> None:
    (tmp_path / "long.toml").write_text(BASE.format(
        name="long", steps='[[steps]]\nwait = "sleep"\nseconds = "120s"\n', verdicts=""))
    proc = _cli("run", "long.toml", "--junit", "r.xml", "--json", "r.json", "--out", "runs", cwd=tmp_path)
    deadline = time.monotonic() + 300
    started = None
    while time.monotonic() < deadline and started is None:
        for ev in (tmp_path / "runs").glob("*/events.jsonl"):
            if '"step_start"' in ev.read_text() and '"sleep"' in ev.read_text():
                started = ev.parent
        time.sleep(0.2)
    assert started is not None, "the run never reached its sleep step"
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["exit_status"] == 130
    (run,) = doc["runs"]
    assert run["exit_status"] == 130 and Path(run["rundir"]).name == started.name
    assert any(v["result"] == "ERROR" and "interrupted" in v["summary"] for v in run["verdicts"])
    assert (tmp_path / run["report"]).is_file()
    xml = (tmp_path / "r.xml").read_bytes()
    assert SCHEMA.validate(etree.fromstring(xml)), SCHEMA.error_log
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.find("testcase[@name='harness']/error").get("message") == "interrupted"
    # the verdicts that need the settle phase cannot be judged: ERROR, never PASS
    assert suite.find("testcase[@name='converge']/error") is not None and suite.get("failures") == "0"
    # no server of the run is left
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(started) not in ps
