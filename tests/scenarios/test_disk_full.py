"""A full disk under a run (issue 16, item 2; docs/security.md).

The work directory (where clusters are made) or the run directory is a
small tmpfs.  Before the fix a full work directory showed as a Python
traceback blaming ``netd.log``, a full disk mid-run as a workload timing out
(exit 1), ``harness-traceback.txt`` was written empty and the cluster
directory stayed.  Now: "disk full" naming the path and how much was needed
and free, exit status 2, nothing left behind.

Needs root (mount); CI runs as root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled

CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"

pytestmark = pytest.mark.pg

SCENARIO = """
name = "diskfull"
description = "A primary and a standby under a ledger; the disk fills up under them."
seed = 1
durability = "async"

[nodes.pg1]
role = "primary"

[nodes.pg2]
role = "standby"
upstream = "pg1"

[workloads.ledger]
kind = "ledger"
node = "pg1"
clients = 1
rate = 200

[[steps]]
wait = "commits"
workload = "ledger"
count = 100000
timeout = "20s"
"""


@pytest.fixture
def small_fs() -> Iterator[callable]:
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        if os.geteuid() != 0 and not os.environ.get("CI"):
            pytest.skip("mounting a small tmpfs needs root")
        # under a directory the PostgreSQL user can search (pytest's tmp_path is 0700)
        d = Path(tempfile.mkdtemp(prefix=f"walsim-test-{name}-"))
        os.chmod(d, 0o755)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(d)], check=True)
        mounted.append(d)
        return d
    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def run(tmp_path: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    sc = tmp_path / "diskfull.toml"
    sc.write_text(SCENARIO)
    return subprocess.run([str(CLI), "run", str(sc), "--out", str(out)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=scaled(300))


def postgres_under(path: Path) -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmd:
                out.append(cmd)
    return out


def test_full_work_directory_at_build(tmp_path: Path, small_fs) -> None:
    work = small_fs("work", "20m")  # less than a data directory (about 40 MB)
    out = tmp_path / "runs"
    r = run(tmp_path, out, {"WALSIM_WORKDIR": str(work)})
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    assert "Traceback" not in text, text
    rundir = next(d for d in out.iterdir() if d.is_dir())
    info = json.loads((rundir / "run.json").read_text())
    msg = info["harness_error"]
    assert msg.startswith("disk full: copying the initdb template to ") and str(work) in msg, msg
    assert " needs " in msg and " free on " in msg, msg
    assert "disk full" in text
    tb = rundir / "harness-traceback.txt"
    assert not tb.exists() or tb.stat().st_size > 0
    assert (rundir / "report.html").exists()
    assert list(work.iterdir()) == []  # the cluster directory removed
    assert postgres_under(work) == []


def test_full_work_directory_mid_run(tmp_path: Path, small_fs) -> None:
    """Room for the cluster but not for its WAL: PostgreSQL cannot write and the
    commits stop; the run says the disk is full instead of a timed-out wait."""
    work = small_fs("work", "110m")
    out = tmp_path / "runs"
    r = run(tmp_path, out, {"WALSIM_WORKDIR": str(work)})
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    rundir = next(d for d in out.iterdir() if d.is_dir())
    msg = json.loads((rundir / "run.json").read_text())["harness_error"]
    assert msg.startswith("disk full: cluster directory ") and str(work) in msg, msg
    assert list(work.iterdir()) == []
    assert postgres_under(work) == []


def test_full_run_directory(tmp_path: Path, small_fs) -> None:
    out = small_fs("runs", "256k")
    work = tmp_path / "work"
    work.mkdir()
    r = run(tmp_path, out, {"WALSIM_WORKDIR": str(work)})
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    assert "disk full" in text, text
    assert "Traceback" not in text, text
    assert list(work.iterdir()) == []
    assert postgres_under(work) == []
