"""The Python client walsim.sim.netd without PostgreSQL: rule formatting, errors,
process management."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from walsim.core.errors import WaitTimeout
from walsim.core.supervise import alive, process_starttime
from walsim.core.timeouts import wait_until
from walsim.sim.netd import Netd, NetdError, format_fault


def test_format_fault() -> None:
    assert format_fault("f1", "pg2", "corrupt", dir="down", at_lsn="0/3001000", app=None) == \
        "fault add id=f1 link=pg2 kind=corrupt dir=down at_lsn=0/3001000"
    assert format_fault("s", "l", "stall", discard=True) == "fault add id=s link=l kind=stall discard=1"
    with pytest.raises(ValueError, match="spaces"):
        format_fault("f 1", "l", "stall")
    with pytest.raises(ValueError, match="empty"):
        format_fault("f", "l", "stall", app="")


def test_errors_and_lifecycle(netd_factory: Any, tmp_path: Path) -> None:
    netd: Netd = netd_factory(seed=12)
    assert netd.running
    with pytest.raises(NetdError, match="link=nolink: no such link"):
        netd.add_fault("x", link="nolink", kind="stall")
    with pytest.raises(ValueError):
        netd.raw("ping\nping")
    assert netd.stats()["seed"] == 12
    assert netd.links() == []
    host, port = netd.add_link("a", "127.0.0.1", 9, listen_port=0)
    assert host == "127.0.0.1" and port > 0
    assert netd.links()[0]["port"] == port
    netd.del_link("a")
    assert netd.links() == []
    assert netd.stop() == 0
    assert not netd.running
    assert netd.stop() == 0  # idempotent


def test_start_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(NetdError, match="no such link"):
        Netd.start(tmp_path / "n", faults=["id=a link=zz kind=stall"])
    with pytest.raises(NetdError, match="does not exist"):
        Netd.start(tmp_path / "m", binary=tmp_path / "nope")


_STARTER = """
import sys, time
from pathlib import Path
from walsim.sim.netd import Netd
netd = Netd.start(Path(sys.argv[1]), die_with_parent=sys.argv[2] == "1")
print(netd.proc.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("die_with_parent", [True, False], ids=["die-with-parent", "without"])
def test_a_killed_test_worker_takes_its_netd_along(tmp_path: Path, die_with_parent: bool) -> None:
    """The fixtures start walsim-netd with ``die_with_parent``: a test worker
    killed without running its finalizers (SIGKILL here; xdist workers when
    the master gets SIGTERM) no longer leaves the daemon running.  Without
    the option the daemon outlives its parent (what the option is for)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "tools")}
    env.pop("WALSIM_REGISTRY", None)
    worker = subprocess.Popen([sys.executable, "-c", _STARTER, str(tmp_path / "n"), str(int(die_with_parent))],
                              stdout=subprocess.PIPE, env=env, text=True)
    assert worker.stdout is not None
    pid = int(worker.stdout.readline())
    started = process_starttime(pid)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    try:
        if die_with_parent:
            wait_until(lambda: alive(pid, started), what=f"walsim-netd {pid} to end with its parent",
                       done=lambda a: not a, timeout=10)
        else:
            # the daemon outlives its parent: give a parent-death signal time to arrive
            with pytest.raises(WaitTimeout, match="to end with its parent"):
                wait_until(lambda: alive(pid, started), what=f"walsim-netd {pid} to end with its parent",
                           done=lambda a: not a, timeout=1)
    finally:
        if alive(pid, started):
            os.kill(pid, signal.SIGKILL)
