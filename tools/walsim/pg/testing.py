"""pytest fixtures for suites that start PostgreSQL (registered by tests/conftest.py
with ``pytest_plugins = ["walsim.pg.testing"]``).

Fixtures:

``cluster``
    A fresh :class:`~walsim.pg.cluster.Cluster` (no nodes yet) in its own base
    directory.  Every node started through it is stopped when the test ends
    — passed, failed, errored or interrupted (Ctrl-C, SIGTERM) — and
    stragglers are killed by the pids that were recorded.  When the test
    fails, the base directory (logs, configs, data) is kept and its path is
    printed in the test report and in the terminal summary.
``cluster_factory``
    ``cluster_factory(**kwargs)`` makes more clusters with the same cleanup.
``pg_bin``
    The :class:`~walsim.pg.pgbin.PgBin` in use (session scope).
``port_allocator``
    The shared :class:`~walsim.pg.ports.PortAllocator` (for components that
    need their own ports, e.g. a proxy's listen port).
``walsim_run_dir``
    The directory of this test run (session scope): every cluster's base
    directory is created in it; it is removed at the end if nothing in it
    was kept.

Options and environment: ``--walsim-workdir DIR`` (or ``WALSIM_WORKDIR``)
chooses where run directories are created (default: the system temporary
directory); ``--walsim-keep`` (or ``WALSIM_KEEP=1``) keeps every base
directory; ``WALSIM_TIMEOUT_MULT`` scales every wait.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from walsim.pg.cluster import Cluster, stop_all_live
from walsim.pg.pgbin import PgBin
from walsim.pg.ports import PortAllocator

_KEPT: list[str] = []
_previous_sigterm: Any = None


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    # Turn SIGTERM (CI cancelling a job, `timeout`) into the same orderly
    # unwinding as Ctrl-C: fixtures tear down, servers are stopped.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("walsim", "walsim PostgreSQL clusters")
    group.addoption("--walsim-workdir", metavar="DIR", default=None,
                    help="where to create the run directory holding every cluster of the run "
                         "(default: $WALSIM_WORKDIR, else the system temporary directory)")
    group.addoption("--walsim-keep", action="store_true", default=False,
                    help="keep the work directories of passing tests too")


def pytest_configure(config: pytest.Config) -> None:
    global _previous_sigterm
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        except ValueError:  # not the main thread
            pass


def pytest_unconfigure(config: pytest.Config) -> None:
    # Last line of defence: anything still running is stopped (and kept).
    stop_all_live(keep=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_walsim_report_{report.when}", report)


def _test_failed(item: pytest.Item) -> bool:
    setup = getattr(item, "_walsim_report_setup", None)
    call = getattr(item, "_walsim_report_call", None)
    if setup is not None and setup.failed:
        return True
    if call is None:
        # Setup passed but the call never reported: interrupted.
        return setup is not None and setup.passed
    return bool(call.failed)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _KEPT:
        terminalreporter.section("walsim: logs of failed tests kept")
        for line in _KEPT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg_bin() -> PgBin:
    return PgBin()


@pytest.fixture(scope="session")
def port_allocator() -> PortAllocator:
    return PortAllocator()


@pytest.fixture(scope="session")
def walsim_run_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    parent = Path(request.config.getoption("--walsim-workdir") or os.environ.get("WALSIM_WORKDIR")
                  or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run = Path(tempfile.mkdtemp(prefix=f"walsim-run-{worker}-", dir=parent))
    # The PostgreSQL user must be able to reach the clusters inside.
    os.chmod(run, 0o755)
    yield run
    try:
        run.rmdir()  # only when every cluster in it was removed
    except OSError:
        pass


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid.split("::")[-1])[:40].strip("-")


@pytest.fixture
def cluster_factory(request: pytest.FixtureRequest, pg_bin: PgBin,
                    walsim_run_dir: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(**kwargs: Any) -> Cluster:
        kwargs.setdefault("pg_bin", pg_bin)
        kwargs.setdefault("parent_dir", walsim_run_dir)
        kwargs.setdefault("prefix", f"walsim-{_safe_name(request.node.nodeid)}-")
        c = Cluster(**kwargs)
        made.append(c)
        return c

    try:
        yield make
    finally:
        failed = _test_failed(request.node)
        keep_all = bool(os.environ.get("WALSIM_KEEP")) or bool(request.config.getoption("--walsim-keep"))
        problems: list[str] = []
        for c in made:
            problems += c.destroy(keep=failed or keep_all or c.keep)
            if failed:
                line = f"{request.node.nodeid}: {c.base_dir}"
                _KEPT.append(line)
                print(f"walsim: logs of the failed test kept in {c.base_dir}", file=sys.stderr)
                request.node.user_properties.append(("walsim_logs", str(c.base_dir)))
        if problems and not failed:
            # A node that had to be killed means the test left a mess; say so.
            print("walsim: cleanup: " + "; ".join(problems), file=sys.stderr)


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory()
