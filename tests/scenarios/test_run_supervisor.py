"""A run leaves nothing behind whatever kills the CLI (issue 16, item 1;
docs/security.md).

``walsim-cli run`` is killed with SIGKILL during the build, under a network
fault, and during the teardown: within 10 s (x WALSIM_TIMEOUT_MULT) no
process the run started is left (postmasters and their children,
walsim-netd, pgbench) and no directory it created (the cluster directory,
netd's work directory); ``run.json`` records the interruption.  SIGHUP (an
SSH session closing) and SIGTERM end a run like Ctrl-C: exit 130, the
partial report's path printed and the same status in ``run.json``.  Before
this, a SIGKILL or SIGHUP left three postmasters, netd and both directories.

Processes are found twice: through the run's registry (read just before the
kill) and independently, by scanning /proc for command lines naming the
cluster directory or netd's work directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from walsim.core.timeouts import scaled, wait_until
from walsim.core.supervise import Registry, alive, collect_garbage

CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"

pytestmark = pytest.mark.pg

SCENARIO = """
name = "killed"
description = "A run that is killed while it builds, under a partition, or while it tears down."
seed = 3
durability = "async"

[nodes.pg1]
role = "primary"

[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"

[links.l2]
to = "pg1"

[workloads.load]
kind = "pgbench"
node = "pg1"
clients = 1

[[steps]]
fault = "partition"
link = "l2"

[[steps]]
wait = "sleep"
seconds = "{sleep}"

[[steps]]
heal = "all"
"""


def start_run(tmp_path: Path, sleep: float = 60) -> tuple[subprocess.Popen[bytes], Path, Path]:
    sc = tmp_path / "killed.toml"
    sc.write_text(SCENARIO.format(sleep=sleep))
    runtime = tmp_path / "rt"
    env = dict(os.environ, WALSIM_RUNTIME_DIR=str(runtime))
    out = tmp_path / "runs"
    proc = subprocess.Popen([str(CLI), "run", str(sc), "--out", str(out)], env=env,
                            stdout=open(tmp_path / "cli.log", "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, out, runtime


def rundir_of(out: Path, proc: subprocess.Popen[bytes]) -> Path:
    def found() -> list[Path]:
        assert proc.poll() is None, f"walsim-cli exited with {proc.returncode}"
        return [d for d in out.glob("killed-*") if d.is_dir()]
    return wait_until(found, what="the run directory", done=lambda ds: len(ds) == 1, timeout=scaled(60))[0]


def events(rundir: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in (rundir / "events.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def partition_in_force(rundir: Path) -> bool:
    """The scenario's sleep under the partition has begun: every process is registered."""
    return any(e["type"] == "step_start" and e.get("kind") == "sleep" for e in events(rundir))


def snapshot(runtime: Path) -> tuple[list[tuple[int, int, str]], list[str]]:
    regs = list((runtime / "runs").iterdir())
    assert len(regs) == 1, regs
    entries = Registry(regs[0]).entries()
    return ([(e.pid, e.starttime, e.what) for e in entries if e.kind == "process"],
            [e.path for e in entries if e.kind == "dir"])


def processes_naming(paths: list[str]) -> list[str]:
    """Live processes whose command line names one of the paths (independent of the registry)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X") and any(p in cmd for p in paths):
            found.append(f"{entry.name}: {cmd[:160]}")
    return found


def assert_nothing_left(procs: list[tuple[int, int, str]], dirs: list[str], runtime: Path) -> None:
    def left() -> list[str]:
        # the registry itself goes last, once the supervisor has cleaned everything
        return ([f"{what} pid {pid}" for pid, st, what in procs if alive(pid, st)] +
                [d for d in dirs if os.path.lexists(d)] + processes_naming(dirs) +
                [f"registry {r}" for r in (runtime / "runs").iterdir()])
    wait_until(left, what="every process and directory of the killed run gone, and its registry",
               done=lambda v: not v, timeout=scaled(10))


def kill_when(tmp_path: Path, ready, what: str, sleep: float = 60,
              registered=None) -> tuple[Path, list, list, bool]:
    """Start a run, SIGKILL walsim-cli once ``ready(rundir)``, and require that nothing of
    the run is left.  The registry is read when ``ready`` holds, or earlier, when
    ``registered(rundir)`` holds (a teardown may remove it before the kill).  The last
    value says whether the kill found walsim-cli still running."""
    proc, out, runtime = start_run(tmp_path, sleep)
    try:
        rundir = rundir_of(out, proc)
        if registered is not None:
            wait_until(lambda: registered(rundir), what="the run registered", timeout=scaled(60),
                       logs=[tmp_path / "cli.log"])
            procs, dirs = snapshot(runtime)
        wait_until(lambda: ready(rundir), what=what, timeout=scaled(60), logs=[tmp_path / "cli.log"])
        if registered is None:
            procs, dirs = snapshot(runtime)
        os.kill(proc.pid, signal.SIGKILL)
        killed = proc.wait() == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_nothing_left(procs, dirs, runtime)
    return rundir, procs, dirs, killed


def test_sigkill_during_build(tmp_path: Path) -> None:
    def building(d: Path) -> bool:
        cdir = [e["path"] for e in events(d) if e["type"] == "cluster_dir"]
        return bool(cdir) and (Path(cdir[0]) / "pg1").exists()  # the template copy under way
    rundir, procs, dirs, _ = kill_when(tmp_path, building, "the build under way")
    assert any("cluster directory" in d or "walsim-killed-" in d for d in dirs)
    info = json.loads((rundir / "run.json").read_text())
    assert info["exit_status"] == 130 and info["interrupted"] is True
    assert (rundir / "supervisor.json").exists()


def test_sigkill_under_faults(tmp_path: Path) -> None:
    rundir, procs, _dirs, _ = kill_when(
        tmp_path, partition_in_force,
        "the partition in force")
    whats = {w for _p, _s, w in procs}
    assert "walsim-netd" in whats and any(w.startswith("postmaster of") for w in whats)
    assert any(w.startswith("pgbench") for w in whats)
    actions = json.loads((rundir / "supervisor.json").read_text())["actions"]
    assert any("walsim-netd" in a for a in actions) and any("postmaster of pg1" in a for a in actions)


def test_sigkill_during_teardown(tmp_path: Path) -> None:
    """final.json is written just before the teardown; a teardown may end before the kill
    lands (then the registry is gone too): the kill must hit a running teardown in one of
    three runs, and every run must leave nothing."""
    for attempt in range(3):
        (tmp_path / f"try{attempt}").mkdir()
        _rundir, _procs, _dirs, killed = kill_when(tmp_path / f"try{attempt}", lambda d: (d / "final.json").exists(),
                                                   "the teardown", sleep=1, registered=partition_in_force)
        if killed:
            return
    pytest.fail("walsim-cli finished its teardown before SIGKILL in three runs")


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_interrupt_with_130(tmp_path: Path, sig: signal.Signals) -> None:
    proc, out, runtime = start_run(tmp_path)
    try:
        rundir = rundir_of(out, proc)
        wait_until(lambda: partition_in_force(rundir),
                   what="the partition in force", timeout=scaled(60), logs=[tmp_path / "cli.log"])
        procs, dirs = snapshot(runtime)
        os.kill(proc.pid, sig)
        rc = proc.wait(timeout=scaled(120))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "cli.log").read_text()
    assert rc == 130, log
    assert f"walsim-cli: partial report: {rundir}" in log
    info = json.loads((rundir / "run.json").read_text())
    assert info["exit_status"] == 130 and info["interrupted"] == f"signal {sig.name}"
    assert (rundir / "report.html").exists()
    assert_nothing_left(procs, dirs, runtime)
    assert not (rundir / "supervisor.json").exists()  # the CLI tore down itself


def kill_run_and_supervisor(tmp_path: Path) -> tuple[Path, list, list, Path]:
    """A run under its partition whose CLI and supervisor are both SIGKILLed: what it had
    registered is left behind for gc or cluster down."""
    proc, out, runtime = start_run(tmp_path)
    try:
        rundir = rundir_of(out, proc)
        wait_until(lambda: partition_in_force(rundir),
                   what="the partition in force", timeout=scaled(60), logs=[tmp_path / "cli.log"])
        procs, dirs = snapshot(runtime)
        reg = Registry(next((runtime / "runs").iterdir()))
        os.kill(reg.owner()["supervisor"]["pid"], signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rundir, procs, dirs, runtime


def test_gc_cleans_a_run_whose_supervisor_died_too(tmp_path: Path) -> None:
    """SIGKILL of the CLI and its supervisor at once: ``walsim-cli gc`` finds the
    registry of the dead run and cleans it, listing what it stops."""
    _rundir, procs, dirs, runtime = kill_run_and_supervisor(tmp_path)
    time.sleep(0.5)
    assert [w for p, s, w in procs if alive(p, s)], "the run should still be there without a supervisor"
    env = dict(os.environ, WALSIM_RUNTIME_DIR=str(runtime))
    dry = subprocess.run([str(CLI), "gc", "--dry-run"], env=env, capture_output=True,
                         text=True, timeout=scaled(60))
    assert dry.returncode == 0 and "would be" in dry.stdout, dry.stdout + dry.stderr
    r = subprocess.run([str(CLI), "gc"], env=env, capture_output=True, text=True,
                       timeout=scaled(120))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped walsim-netd" in r.stdout and "removed cluster directory" in r.stdout, r.stdout
    assert_nothing_left(procs, dirs, runtime)
    assert collect_garbage(root=runtime) == []


def test_cluster_down_of_a_dead_run_stops_netd_too(tmp_path: Path) -> None:
    """``walsim-cli cluster down --dir`` on the cluster of a run whose CLI and
    supervisor are gone stops its nodes, walsim-netd, and removes netd's
    directory as well as the cluster's."""
    rundir, procs, dirs, runtime = kill_run_and_supervisor(tmp_path)
    cluster_dir = [e["path"] for e in events(rundir) if e["type"] == "cluster_dir"][0]
    env = dict(os.environ, WALSIM_RUNTIME_DIR=str(runtime))
    r = subprocess.run([str(CLI), "cluster", "down", "--dir", cluster_dir], env=env, capture_output=True,
                       text=True, timeout=scaled(120))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped walsim-netd" in r.stdout and "removed walsim-netd work directory" in r.stdout, r.stdout
    assert_nothing_left(procs, dirs, runtime)
