"""walsim-cli cluster up / status / down."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from walsim.pg import procs
from walsim.commands.cluster import sync_spec
from walsim.core.errors import UsageError
from walsim.core.timeouts import scaled, wait_until

from interrupt_support import sigint_default

pytestmark = pytest.mark.pg
CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"


@pytest.fixture
def workdir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="walsim-clitest-"))
    os.chmod(parent, 0o755)
    yield parent / "cluster"
    shutil.rmtree(parent, ignore_errors=True)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=scaled(120))


def test_up_status_down(workdir: Path) -> None:
    out_path = workdir.parent / "up.out"
    with open(out_path, "w") as out:
        up = subprocess.Popen([str(CLI), "cluster", "up", "--standbys", "2", "--cascade", "--sync", "FIRST1",
                               "--dir", str(workdir)], stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: "walsim: stop:" in out_path.read_text() or up.poll() is not None,
                   what="walsim-cli cluster up to print the ready banner", timeout=180,
                   logs=[out_path])
        assert up.poll() is None, out_path.read_text()
        banner = out_path.read_text()
        assert f"cluster ready in {workdir}" in banner
        assert "pg3   standby of pg2" in banner
        assert "synchronous_standby_names = 'FIRST 1 (pg2, pg3)'" in banner

        status = _cli("cluster", "status", "--dir", str(workdir))
        assert status.returncode == 0, status.stderr
        rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:4]}
        assert rows["pg1"][1:3] == ["primary", "running"]
        assert rows["pg2"][1:3] == ["standby", "running"] and rows["pg2"][-1] == "streaming/sync"
        assert rows["pg3"][1:3] == ["cascade", "running"] and rows["pg3"][4] == "pg2"
        assert rows["pg3"][-1] == "streaming/async"
        pids = [int(p) for p in (workdir / n / "data" / "postmaster.pid" for n in ("pg1", "pg2", "pg3"))
                for p in [p.read_text().split()[0]]]

        down = _cli("cluster", "down", "--dir", str(workdir))
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=scaled(60)) == 0
        assert not [p for p in pids if procs.alive(p)]
        assert not workdir.exists()
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=scaled(60))


def test_cli_bad_input(workdir: Path) -> None:
    status = _cli("cluster", "status", "--dir", str(workdir))
    assert status.returncode == 2
    assert f"--dir {workdir}: " in status.stderr and "not a walsim cluster directory" in status.stderr
    bad = _cli("cluster", "up", "--sync", "MOST3", "--dir", str(workdir))
    assert bad.returncode == 2 and "--sync 'MOST3'" in bad.stderr and "unknown: MOST3" in bad.stderr
    assert not workdir.exists()
    assert sync_spec("ANY2", ["pg2", "pg3"]) == "ANY 2 (pg2, pg3)"
    assert sync_spec("FIRST 1 (pg3, pg2)", ["pg2", "pg3"]) == "FIRST 1 (pg3, pg2)"
    assert sync_spec("pg2", ["pg2", "pg3"]) == "pg2"
    with pytest.raises(UsageError, match="unknown: pg9"):
        sync_spec("ANY 1 (pg2, pg9)", ["pg2", "pg3"])
    with pytest.raises(UsageError, match="3 synchronous standbys requested"):
        sync_spec("FIRST3", ["pg2", "pg3"])


def test_up_stops_everything_on_ctrl_c(workdir: Path) -> None:
    import signal
    out_path = workdir.parent / "up.out"
    with open(out_path, "w") as out:
        up = subprocess.Popen([str(CLI), "cluster", "up", "--standbys", "1", "--slots", "--dir", str(workdir),
                               "--keep"], stdout=out, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=sigint_default)
    try:
        wait_until(lambda: "walsim: stop:" in out_path.read_text() or up.poll() is not None,
                   what="walsim-cli cluster up to print the ready banner", timeout=180, logs=[out_path])
        assert up.poll() is None, out_path.read_text()
        pids = [int((workdir / n / "data" / "postmaster.pid").read_text().split()[0]) for n in ("pg1", "pg2")]
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=scaled(60)) == 0, out_path.read_text()
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=scaled(60))
    assert not [p for p in pids if procs.alive(p)]
    assert (workdir / "pg1" / "postgresql.log").exists()          # --keep
    assert "received fast shutdown request" in (workdir / "pg2" / "postgresql.log").read_text()
    assert f"work directory kept: {workdir}" in out_path.read_text()
