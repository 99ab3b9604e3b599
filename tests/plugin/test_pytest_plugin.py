"""walsim's pytest plugin (walsim.pytest_plugin), driven the way a user's
project drives it: a separate pytest process in a directory of its own,
with the plugin loaded by name (an installed walsim loads it through its
``pytest11`` entry point; ci/pipelines.sh checks that route against
installed copies).  Collection and option errors without PostgreSQL; then
scenario items, failures, JUnit properties, ``-n 2`` and the netd and disk
fixtures against real servers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]

PASSING = '''
name = "{name}"
description = "a primary and a standby that converge"
seed = 4
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
[[steps]]
wait = "catchup"
node = "pg2"
[[verdicts]]
check = "converge"
within = "30s"
'''

FAILING = '''
name = "expects-a-promotion"
description = "nothing is promoted, yet pg2 is expected on timeline 2"
seed = 4
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
[[steps]]
wait = "catchup"
node = "pg2"
[[verdicts]]
check = "timeline"
expect = {{ pg2 = 2 }}
'''.replace("{{", "{").replace("}}", "}")


def pytest_run(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(TOP / "tools")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "walsim.pytest_plugin", "-p", "no:cacheprovider",
                           "-o", "addopts=", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _project(tmp_path: Path, scenarios: dict[str, str]) -> Path:
    proj = tmp_path / "proj"
    (proj / "scenarios").mkdir(parents=True)
    for name, text in scenarios.items():
        (proj / "scenarios" / name).write_text(text)
    return proj


# ------------------------------------------------------------ no PostgreSQL

def test_collects_one_item_per_scenario_file(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first"), "b.toml": PASSING.format(name="second"),
                               "notes.txt": "not a scenario"})
    r = pytest_run(proj, "--collect-only", "-q", "--walsim-scenarios", "scenarios")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.findall(r"^scenarios/\S+::\S+$", r.stdout, re.M) == ["scenarios/a.toml::first",
                                                                  "scenarios/b.toml::second"]


def test_scenario_directory_outside_the_rootdir(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first")})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pytest.ini").write_text("[pytest]\n")
    r = pytest_run(elsewhere, "--collect-only", "-q", "--walsim-scenarios", str(proj / "scenarios"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a.toml::first" in r.stdout and "1 test collected" in r.stdout


def test_run_directories_stay_out_of_collection(tmp_path: Path) -> None:
    """A run directory holds scenario.toml: it is never collected as a test."""
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first")})
    (proj / "walsim-runs" / "first-20260101-000000-seed4").mkdir(parents=True)
    (proj / "walsim-runs" / "first-20260101-000000-seed4" / "scenario.toml").write_text(PASSING.format(name="x"))
    r = pytest_run(proj, "--collect-only", "-q", "--walsim-scenarios", "scenarios")
    assert r.returncode == 0 and "1 test collected" in r.stdout, r.stdout


def test_invalid_scenario_is_a_collection_error_naming_file_and_key(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"good.toml": PASSING.format(name="good"),
                               "bad.toml": PASSING.format(name="bad").replace('role = "standby"', 'role = "leader"')})
    r = pytest_run(proj, "--collect-only", "-q", "--walsim-scenarios", "scenarios")
    assert r.returncode == 2, r.stdout + r.stderr  # interrupted: a collection error
    assert "ERROR collecting scenarios/bad.toml" in r.stdout
    assert re.search(r"invalid scenario file .*bad\.toml", r.stdout)
    assert "nodes.pg2.role" in r.stdout and "leader" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--walsim-scenarios", "nowhere"], "no such file or directory"),
    (["--walsim-scenarios", "empty"], "no *.toml scenario file in this directory"),
    (["--walsim-scenarios", "scenarios", "--walsim-seed", "seven"], "--walsim-seed 'seven': not an integer"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first")})
    (proj / "empty").mkdir()
    r = pytest_run(proj, "--collect-only", *args)
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error
    assert message in r.stderr


def test_ini_option(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first")})
    (proj / "pytest.ini").write_text("[pytest]\nwalsim_scenarios = scenarios\n")
    r = pytest_run(proj, "--collect-only", "-q")
    assert r.returncode == 0 and "scenarios/a.toml::first" in r.stdout, r.stdout + r.stderr


# ------------------------------------------------------------ PostgreSQL

@pytest.mark.pg
def test_scenarios_pass_and_fail_with_verdicts_report_and_junit(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"ok.toml": PASSING.format(name="converges"), "ko.toml": FAILING})
    r = pytest_run(proj, "--walsim-scenarios", "scenarios", "--junitxml", "j.xml", "--walsim-seed", "0x10")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"1 failed, 1 passed", r.stdout)
    # the failure text: the verdicts, the report, the reproduce command
    assert "expects-a-promotion (seed 16): exit status 1" in r.stdout
    assert re.search(r"FAIL\s+timeline: .*pg2", r.stdout)
    assert "reproduce with: walsim-cli run " + str(proj / "scenarios" / "ko.toml") + " --seed 16" in r.stdout
    suite = ET.parse(proj / "j.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"converges", "expects-a-promotion"}
    assert cases["expects-a-promotion"].find("failure") is not None
    assert cases["converges"].find("failure") is None
    for case in cases.values():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert Path(props["walsim_report"]).is_file()
        assert props["walsim_seed"] == "16" and props["walsim_reproduce"].endswith("--seed 16")
    index = (proj / "walsim-runs" / "index.html").read_text()
    assert index.count("/report.html") == 2


@pytest.mark.pg
def test_parallel_workers(tmp_path: Path) -> None:
    proj = _project(tmp_path, {"a.toml": PASSING.format(name="first"), "b.toml": PASSING.format(name="second")})
    r = pytest_run(proj, "--walsim-scenarios", "scenarios", "-n", "2", "--walsim-out", "out")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout
    runs = sorted(p.name.split("-")[0] for p in (proj / "out").iterdir() if p.is_dir())
    assert runs == ["first", "second"]
    assert (proj / "out" / "index.html").read_text().count("/report.html") == 2


FIXTURE_TESTS = '''
import psycopg, pytest

def test_netd_between_nodes(cluster, netd):
    primary = cluster.create_primary("pg1")
    standby = cluster.create_standby("pg2", primary, via=netd.add_link("pg2", primary.host, primary.port))
    standby.wait_for_streaming()
    netd.add_fault("st", link="pg2", kind="stall", dir="down")
    primary.execute("CREATE TABLE t AS SELECT 1 AS x")
    target = primary.lsn("insert")
    assert standby.scalar("SELECT to_regclass('t') IS NULL")
    assert netd.heal("pg2") == 1
    standby.wait_for_replay(target)
    assert standby.scalar("SELECT x FROM t") == 1
    assert netd.seed == 21

def test_netd_failing(netd):
    netd.add_link("l", "127.0.0.1", 9)
    assert False, "deliberate"

def test_disk_faults(cluster, disk_faults):
    pg1 = cluster.create_primary("pg1", start=False)
    disk = disk_faults(pg1)
    pg1.start()
    pg1.execute("CREATE TABLE t (x int)")
    disk.add("ro", path="base/**", ops="write", do="errno:EIO")
    with pytest.raises(psycopg.Error):
        pg1.execute("INSERT INTO t SELECT generate_series(1, 100000)")
        pg1.execute("CHECKPOINT")
    assert disk.stats("ro").fired > 0
'''


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A work directory the PostgreSQL user can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="walsim-plugin-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.pg
def test_netd_and_disk_fixtures(tmp_path: Path, workdir: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "test_fixtures.py").write_text(FIXTURE_TESTS)
    r = pytest_run(proj, "--walsim-seed", "21", "--walsim-workdir", str(workdir), "-rA")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "2 passed" in out and "1 failed" in out, out
    kept = re.findall(r"walsim-netd log and trace of the failed test kept in (\S+)", out)
    assert len(kept) == 1 and (Path(kept[0]) / "netd.log").is_file()
    # the passing test's daemon directory is gone, the failing one's kept
    netd_dirs = list(workdir.glob("*/netd-*"))
    assert [str(d) for d in netd_dirs] == kept
    # nothing left running from the work directory
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(workdir) not in ps
