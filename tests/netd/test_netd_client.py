"""The Python client walsim.sim.netd without PostgreSQL: rule formatting, errors,
process management."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
