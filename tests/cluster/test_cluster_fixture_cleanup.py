"""No server outlives its test: the fixtures of walsim.pg.testing are run on an
inner pytest session whose tests fail, raise, pass and get interrupted."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from walsim.pg import procs
from walsim.pg.ports import PortAllocator
from walsim.core.timeouts import scaled, wait_until

from interrupt_support import sigint_default

pytestmark = pytest.mark.pg
TOOLS = Path(__file__).resolve().parents[2] / "tools"

INNER = r'''
import json, os, time
from pathlib import Path

def record(cluster, tag):
    pids = []
    for node in cluster:
        pids += node.pids("postmaster") + node.pids("walsender") + node.pids("walreceiver") \
            + node.pids("startup") + node.pids("checkpointer")
    out = Path(os.environ["INNER_OUT"]) / f"{tag}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pids": pids, "base": str(cluster.base_dir),
                               "ports": [n.port for n in cluster]}))
    os.replace(tmp, out)   # the outer test acts as soon as the file exists

def test_fails(cluster):
    pg1 = cluster.create_primary("pg1")
    cluster.create_standby("pg2", pg1)
    record(cluster, "fails")
    assert pg1.scalar("SELECT 1") == 2, "deliberate failure"

def test_raises(cluster):
    cluster.create_primary("pg1")
    record(cluster, "raises")
    raise RuntimeError("deliberate exception")

def test_passes(cluster):
    pg1 = cluster.create_primary("pg1")
    cluster.create_standby("pg2", pg1)
    record(cluster, "passes")

def test_hangs(cluster):
    pg1 = cluster.create_primary("pg1")
    record(cluster, "hangs")
    while True:          # until the outer test interrupts this session
        time.sleep(0.1)
'''


@pytest.fixture
def inner(tmp_path: Path) -> Iterator[dict[str, Path]]:
    # The inner session's clusters and port locks live in their own
    # directories, so what it leaves behind can be checked exactly.
    work = Path(tempfile.mkdtemp(prefix="walsim-inner-"))
    os.chmod(work, 0o755)
    dirs = {"tests": tmp_path / "inner", "out": tmp_path / "out", "work": work, "ports": work / "ports"}
    for d in ("tests", "out"):
        dirs[d].mkdir()
    (dirs["tests"] / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (dirs["tests"] / "test_inner.py").write_text(INNER)
    yield dirs
    shutil.rmtree(work, ignore_errors=True)


def _env(dirs: dict[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(TOOLS), INNER_OUT=str(dirs["out"]), WALSIM_WORKDIR=str(dirs["work"]),
               WALSIM_PORT_DIR=str(dirs["ports"]))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _argv(dirs: dict[str, Path], select: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "walsim.pg.testing", "-q", "-rN",
            "-k", select, "--rootdir", str(dirs["tests"]), str(dirs["tests"] / "test_inner.py")]


def _assert_clean(dirs: dict[str, Path], tags: list[str]) -> dict[str, dict]:
    records = {t: json.loads((dirs["out"] / f"{t}.json").read_text()) for t in tags}
    for tag, rec in records.items():
        assert rec["pids"], tag
        alive = [p for p in rec["pids"] if procs.alive(p)]
        assert not alive, f"{tag}: processes still running: {alive}"
    assert PortAllocator(dirs["ports"]).held_ports() == []
    assert list(dirs["ports"].glob("port-*.lock")) == []
    return records


def test_failing_raising_and_passing_tests_stop_their_servers(inner: dict[str, Path]) -> None:
    proc = subprocess.run(_argv(inner, "fails or raises or passes"), env=_env(inner), cwd=inner["tests"],
                          capture_output=True, text=True, timeout=scaled(240))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "2 failed, 1 passed" in output, output
    records = _assert_clean(inner, ["fails", "raises", "passes"])
    # Logs of failed tests are kept and their path printed; a passing test's are removed.
    for tag in ("fails", "raises"):
        base = Path(records[tag]["base"])
        assert f"logs of the failed test kept in {base}" in output
        assert (base / "pg1" / "postgresql.log").stat().st_size > 0
        assert (base / "pg1" / "data" / "walsim.conf").exists()
    assert "walsim: logs of failed tests kept" in output
    assert not Path(records["passes"]["base"]).exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_session_stops_its_servers(inner: dict[str, Path], sig: int) -> None:
    proc = subprocess.Popen(_argv(inner, "hangs"), env=_env(inner), cwd=inner["tests"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_default)
    try:
        wait_until(lambda: (inner["out"] / "hangs.json").exists() or proc.poll() is not None,
                   what="the inner test to start its server", timeout=120)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=scaled(120))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, output
    records = _assert_clean(inner, ["hangs"])
    base = Path(records["hangs"]["base"])
    assert base.exists(), "an interrupted test keeps its logs"
    assert re.search(r"received (fast|immediate) shutdown request", (base / "pg1" / "postgresql.log").read_text())
