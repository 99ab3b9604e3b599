"""HA managers as test targets: every adapter against the real manager, cleanup, bad input.

For each of Patroni, repmgr, pg_auto_failover and the command adapter (with
the toy manager of ``toy_ha.py``) a scenario builds the cluster through the
manager, checks that the manager's members agree with the nodes, kills the
primary's whole node and waits for the manager to promote another one, then
judges the run (``no_acked_loss``, ``single_writer``, ``manager_view``).
After every run, failing and interrupted ones included, no process of the
run is left: neither one recorded in the run's ``pids.json`` (managers, DCS,
monitor) nor any whose command line names the cluster's directory
(PostgreSQL started by a manager).

The managers are Debian packages (``make deps``); a missing one skips its
test outside CI and fails it in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from walsim.api import parse_scenario, run_scenario, vocabulary
from walsim.core.errors import ScenarioError
from walsim.managers.procs import leftovers
from walsim.pg import procs

pytestmark = [pytest.mark.pg]

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
TOY = HERE / "toy_ha.py"

MANAGERS = {
    "patroni": 'kind = "patroni"\n',
    "repmgr": 'kind = "repmgr"\n',
    "pg_auto_failover": 'kind = "pg_auto_failover"\n',
    "command": (f'kind = "command"\nsetup = ["{TOY}", "setup"]\nstart = ["{TOY}", "start", "{{node}}"]\n'
                f'members = ["{TOY}", "members"]\n'),
}
#: nodes per manager: pg_auto_failover's and the toy's canonical setup is two nodes
NODES = {"patroni": 3, "repmgr": 3, "pg_auto_failover": 2, "command": 2}


def need(kind: str) -> None:
    missing = vocabulary().managers[kind].missing({}, Path("/usr/lib/postgresql/15/bin"))
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have every manager installed (make deps): {missing}")
        pytest.skip(missing)


def scenario_text(kind: str, steps: str, verdicts: str = "", name: str = "mgr-test",
                  manager_extra: str = "") -> str:
    nodes = '[nodes.pg1]\nrole = "primary"\n' + "".join(
        f'[nodes.pg{i}]\nrole = "standby"\nupstream = "pg1"\n' for i in range(2, NODES[kind] + 1))
    return (f'name = "{name}"\ndescription = "test"\ndurability = "async"\n\n[manager]\n{MANAGERS[kind]}'
            f'{manager_extra}\n{nodes}\n[workloads.ledger]\nkind = "ledger"\nnode = "@primary"\nclients = 2\n'
            f'rate = 50\n{steps}{verdicts}')


FAILOVER = '''
[[steps]]
wait = "manager_agrees"
timeout = "30s"

[[steps]]
wait = "commits"
workload = "ledger"
count = 50

[[steps]]
id = "crash"
do = "kill"
node = "@primary"
what = "node"

[[steps]]
wait = "new_primary"
exclude = "@crash.primary"
timeout = "90s"

[[steps]]
wait = "commits"
workload = "ledger"
count = 50
'''
VERDICTS = '''
[[verdicts]]
check = "no_acked_loss"

[[verdicts]]
check = "single_writer"

[[verdicts]]
check = "manager_view"
'''


def cluster_dir(rundir: Path) -> str:
    for line in (rundir / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("type") == "cluster_dir":
            return ev["path"]
    raise AssertionError(f"{rundir}: no cluster_dir event")


def left_running(rundir: Path) -> list[str]:
    """Processes of a run still alive: recorded in pids.json, or naming its cluster directory."""
    out = [f"{p['what']}@{p['node']} pid {p['pid']}" for p in leftovers(rundir / "pids.json")]
    base = cluster_dir(rundir)
    for entry in procs.PROC.iterdir():
        if entry.name.isdigit():
            info = procs.stat(int(entry.name))
            if info is not None and base in info.title and info.state not in ("Z", "X"):
                out.append(f"pid {info.pid}: {info.title}")
    return out


def assert_clean(rundir: Path) -> None:
    deadline = time.monotonic() + 10
    left = left_running(rundir)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = left_running(rundir)
    assert left == [], f"processes left by {rundir}: {left}"


@pytest.mark.parametrize("kind", list(MANAGERS))
def test_adapter_fails_over_and_judges(kind: str, tmp_path: Path) -> None:
    """Cluster up through the manager, members agree, the primary's node dies, the manager
    promotes another node, writes go on; the verdicts are computed from the records."""
    need(kind)
    sc = parse_scenario(scenario_text(kind, FAILOVER, VERDICTS, name=f"mgr-{kind.replace('_', '-')}"))
    result = run_scenario(sc, out=tmp_path)
    table = "\n".join(f"{v.result} {v.name}: {v.summary}" for v in result.verdicts)
    assert result.step_error is None and result.harness_error is None, table
    events = [json.loads(x) for x in (result.rundir / "events.jsonl").read_text().splitlines()]
    ready = next(e for e in events if e["type"] == "manager_ready")
    assert sum(m["role"] == "primary" for m in ready["members"]) == 1
    assert all(m["healthy"] for m in ready["members"]), ready
    roles = next(e for e in events if e["type"] == "step_roles" and e["id"] == "crash")["roles"]
    waited = next(e for e in events if e["type"] == "step_end" and e["kind"] == "new_primary")
    assert waited["detail"]["primary"] != roles["primary"]
    by = {v.name: v for v in result.verdicts}
    assert by["manager_view"].result == "PASS", table
    assert by["no_acked_loss"].result in ("PASS", "INFO"), table
    assert by["no_acked_loss"].evidence["acked"] >= 100
    # the ledger saw acknowledgements from the old primary, then from the new one
    acked_by = {json.loads(x).get("node") for x in (result.rundir / "ledger.jsonl").read_text().splitlines()
                if json.loads(x).get("outcome") == "acked"}
    assert {roles["primary"], waited["detail"]["primary"]} <= acked_by
    assert (result.rundir / "manager").is_dir()
    assert_clean(result.rundir)


def test_failing_run_leaves_nothing(tmp_path: Path) -> None:
    """A step that fails (no failover happens within its deadline) stops the run with a FAIL,
    and every manager, DCS and PostgreSQL process is gone afterwards."""
    need("patroni")
    steps = '''
[[steps]]
wait = "new_primary"
exclude = "@primary"
timeout = "2s"
'''
    result = run_scenario(parse_scenario(scenario_text("patroni", steps, VERDICTS, name="mgr-fail")), out=tmp_path)
    assert result.exit_status == 1
    assert result.step_error and "new primary" in result.step_error
    assert_clean(result.rundir)


def test_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to walsim-cli) in the middle of a run: managers, then PostgreSQL, then
    the DCS and netd are stopped; the partial run is still judged."""
    need("patroni")
    steps = '''
[[steps]]
wait = "sleep"
seconds = 120
'''
    path = tmp_path / "interrupted.toml"
    path.write_text(scenario_text("patroni", steps, VERDICTS, name="mgr-interrupt"))
    # SIGINT's default disposition in the child: a shell running the suite in the
    # background (CI) would otherwise hand it down ignored, and Ctrl-C would not be Ctrl-C.
    proc = subprocess.Popen([str(TOP / "tools" / "walsim-cli"), "run", str(path), "--out", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "wait sleep" in line or time.monotonic() > deadline:
            break
    assert any("wait sleep" in ln for ln in lines), "".join(lines)
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode != 0, "".join(lines) + rest
    rundir = next(d for d in (tmp_path / "runs").iterdir() if d.is_dir())
    assert json.loads((rundir / "run.json").read_text())["harness_error"] == "interrupted"
    assert_clean(rundir)


def test_manager_that_never_elects_is_an_error_with_its_log(tmp_path: Path) -> None:
    """Patroni pointed at a DCS nobody serves never elects a leader: the run ends with an
    ERROR quoting Patroni's log by its deadline, not a hang."""
    need("patroni")
    extra = 'ready_timeout = "8s"\n\n[manager.config.etcd3]\nhosts = ["127.0.0.1:9"]\n'
    text = scenario_text("patroni", "", VERDICTS, name="mgr-noleader", manager_extra=extra)
    start = time.monotonic()
    result = run_scenario(parse_scenario(text), out=tmp_path)
    took = time.monotonic() - start
    assert result.exit_status == 2
    assert result.harness_error and "patroni" in result.harness_error
    assert "pg1" in result.harness_error and ".log" in result.harness_error, result.harness_error
    assert took < 8 * float(os.environ.get("WALSIM_TIMEOUT_MULT", "1")) * 2 + 60
    assert_clean(result.rundir)


# ------------------------------------------------------------------ bad input

def test_unknown_manager_kind_is_named() -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(scenario_text("patroni", "").replace('kind = "patroni"', 'kind = "keepalived"'))
    assert "manager.kind" in str(exc.value) and "'keepalived'" in str(exc.value)
    assert "patroni" in str(exc.value) and "pg_auto_failover" in str(exc.value)


def test_missing_manager_binary_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the manager's programs not installed the run stops before anything starts,
    exit 2, and says which Debian packages to install."""
    import shutil
    from walsim.managers import base
    real = shutil.which
    monkeypatch.setattr(base.shutil, "which",
                        lambda name, *a, **k: None if name in ("patroni", "etcd", "etcdctl") else real(name, *a, **k))
    result = run_scenario(parse_scenario(scenario_text("patroni", "", VERDICTS, name="mgr-missing")), out=tmp_path)
    assert result.exit_status == 2
    assert result.harness_error is not None
    assert "apt-get install patroni etcd-server etcd-client" in result.harness_error, result.harness_error
    assert "patroni, etcd, etcdctl" in result.harness_error
    assert_clean(result.rundir)


def test_managed_cluster_refuses_walsim_driving_postgres() -> None:
    steps = '\n[[steps]]\ndo = "promote"\nnode = "pg2"\n\n[[steps]]\ndo = "stop"\nnode = "pg1"\n'
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(scenario_text("patroni", steps))
    text = str(exc.value)
    assert "steps[0].do" in text and "steps[1].do" in text and "[manager] drives this cluster" in text


def test_managed_cluster_refuses_links_and_via() -> None:
    text = scenario_text("patroni", "").replace('upstream = "pg1"\n', 'upstream = "pg1"\nvia = "l2"\n', 1)
    text += '\n[links.l2]\nto = "pg1"\n'
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text)
    assert "nodes.pg2.via" in str(exc.value) and "links" in str(exc.value)


def test_node_reference_must_name_a_step() -> None:
    steps = '\n[[steps]]\nwait = "new_primary"\nexclude = "@nosuch.primary"\n'
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(scenario_text("patroni", steps))
    assert "steps[0].exclude" in str(exc.value) and "'nosuch'" in str(exc.value)


def test_node_references_are_refused_in_verdicts() -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(scenario_text("patroni", "", '\n[[verdicts]]\ncheck = "log_contains"\nnode = "@primary"\n'
                                     'regex = "x"\n'))
    assert "verdicts[0].node" in str(exc.value)


def test_sync_durability_needs_the_managers_own_setting() -> None:
    text = scenario_text("patroni", "").replace('durability = "async"', 'durability = "sync"')
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text)
    assert "synchronous_mode" in str(exc.value)
    parse_scenario(text.replace('kind = "patroni"\n', 'kind = "patroni"\nsynchronous_mode = true\n'))


def test_manager_steps_need_a_manager() -> None:
    text = ('name = "x"\ndescription = "x"\ndurability = "async"\n[nodes.pg1]\nrole = "primary"\n'
            '[[steps]]\nwait = "new_primary"\n[[steps]]\ndo = "switchover"\n')
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text)
    assert "steps[0].wait" in str(exc.value) and "steps[1].do" in str(exc.value)
    assert "needs a [manager] table" in str(exc.value)


def test_every_shipped_manager_scenario_loads() -> None:
    files = sorted((TOP / "scenarios" / "managers").glob("*.toml"))
    assert {"patroni-isolate-async", "patroni-isolate-sync", "repmgr-isolate-no-witness",
            "pgaf-isolate"} <= {f.stem for f in files}
    for f in files:
        sc = parse_scenario(f.read_text(), str(f))
        assert sc.manager is not None and sc.description.strip(), f


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-x", "-q"]))
