"""Shared pytest configuration for all walsim suites.

Suites that start PostgreSQL use the fixtures of :mod:`walsim.pg.testing`,
registered below, so that every server a test starts is
stopped when it ends, passes, fails or is interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent

pytest_plugins = ["walsim.pg.testing"]


@pytest.fixture(scope="session")
def walsim_build() -> Path:
    """The build directory holding bin/ and lib/ (``make`` builds it)."""
    return Path(os.environ.get("WALSIM_BUILD", TOP / "build"))


@pytest.fixture(scope="session")
def repo_top() -> Path:
    return TOP
