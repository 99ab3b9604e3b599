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

import pytest

TOP = Path(__file__).resolve().parent.parent

pytest_plugins = ["walsim.pytest_plugin"]


@pytest.fixture(scope="session")
def walsim_build() -> Path:
    """The build directory holding bin/ and lib/ (``make`` builds it)."""
    return Path(os.environ.get("WALSIM_BUILD", TOP / "build"))


@pytest.fixture(scope="session")
def repo_top() -> Path:
    return TOP
