"""Shared pytest configuration for all walsim suites.

Suites that start PostgreSQL use the fixtures of :mod:`walsim.pg.testing`,
registered below with the rest of walsim's pytest plugin
(:mod:`walsim.pytest_plugin`: ``--walsim-scenarios``, ``netd``,
``disk_faults``), so that every server a test starts is stopped when it ends,
passes, fails or is interrupted.  The checkout's own copy is registered here;
``pytest.ini`` blocks the entry point of an installed walsim (``-p no:walsim``)
so that an installed copy never replaces the one under test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

TOP = Path(__file__).resolve().parent.parent

# Python coverage of every pytest process, the xdist workers included
# (tools/run-pytest sets WALSIM_PYCOV_DATA and combines the files): started
# here, before walsim is imported, saved when pytest ends.
_COVERAGE: Any = None
if os.environ.get("WALSIM_PYCOV_DATA"):
    import coverage

    _COVERAGE = coverage.Coverage(data_file=os.environ["WALSIM_PYCOV_DATA"], data_suffix=True,
                                  source=[str(TOP / "tools" / "walsim")])
    _COVERAGE.start()


def _scale_waits_for_workers() -> None:
    """More xdist workers than cores: every wait is scaled by workers/cores
    (WALSIM_TIMEOUT_MULT), unless the caller chose the multiplier."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers or os.environ.get("WALSIM_TIMEOUT_MULT"):
        return
    ratio = int(workers) / max(1, os.cpu_count() or 1)
    if ratio > 1:
        os.environ["WALSIM_TIMEOUT_MULT"] = f"{ratio:g}"


_scale_waits_for_workers()

pytest_plugins = ["walsim.pytest_plugin"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _COVERAGE is not None:
        _COVERAGE.stop()
        _COVERAGE.save()


@pytest.fixture(scope="session")
def walsim_build() -> Path:
    """The build directory holding bin/ and lib/ (``make`` builds it)."""
    return Path(os.environ.get("WALSIM_BUILD", TOP / "build"))


@pytest.fixture(scope="session")
def repo_top() -> Path:
    return TOP
