"""Fixtures of the walsim-netd suite: a daemon per test, and a primary with a
standby streaming through it."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from walsim.sim.netd import Netd, netd_binary


@pytest.fixture
def netd_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``netd_factory(seed=..., **kwargs)`` starts daemons stopped at test end.

    The daemon's log and trace are copied next to the kept cluster data when
    the test fails (their path is printed)."""
    if not netd_binary().exists():
        pytest.fail(f"{netd_binary()} missing: run make")
    started: list[Netd] = []

    def make(**kwargs: Any) -> Netd:
        wd = tmp_path / f"netd{len(started)}"
        n = Netd.start(wd, die_with_parent=True, **kwargs)
        started.append(n)
        return n
    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for n in started:
        n.stop()
        if failed:
            keep = Path(tmp_path.parent) / f"{request.node.name}-netd-{n.workdir.name}"
            shutil.copytree(n.workdir, keep, dirs_exist_ok=True)
            print(f"netd log and trace kept in {keep}")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A plain TCP socket listening on loopback, standing in for an upstream:
    the kernel completes the handshakes, nobody accepts, reads or answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    yield srv
    srv.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]


@dataclass
class Proxied:
    """A primary, a standby streaming from it through netd link ``pg2``."""
    primary: Any
    standby: Any
    netd: Netd
    link: str
    addr: tuple[str, int]


@pytest.fixture
def proxied(cluster: Any) -> Any:
    """``proxied(netd, standby_settings=..., primary_settings=...)`` builds a
    primary and a standby streaming through the netd link ``pg2``."""
    return lambda netd, **kw: _make_proxied(cluster, netd, **kw)


def _make_proxied(cluster: Any, netd: Netd, *, standby_settings: dict[str, object] | None = None,
                  primary_settings: dict[str, object] | None = None) -> Proxied:
    primary = cluster.create_primary("pg1", settings=primary_settings)
    addr = netd.add_link("pg2", primary.host, primary.port)
    settings = {"wal_retrieve_retry_interval": "500ms"}
    settings.update(standby_settings or {})
    standby = cluster.create_standby("pg2", primary, via=addr, settings=settings)
    standby.wait_for_streaming()
    return Proxied(primary, standby, netd, "pg2", addr)
