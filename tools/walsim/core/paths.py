"""Where walsim's own files are: the C programs, the disk layer library, the
shipped scenarios and the test data.

Every lookup of a built program goes through here, so that a checkout
(``build/`` beside ``tools/``), ``WALSIM_BUILD`` and an installed layout are
resolved in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the top of the source tree this package was loaded from (tools/walsim/core/paths.py)
SOURCE_TOP = Path(__file__).resolve().parents[3]

BUILD_ENV = "WALSIM_BUILD"
SCENARIOS_ENV = "WALSIM_SCENARIOS"


def build_dir() -> Path:
    """``$WALSIM_BUILD``, else ``build/`` of the checkout."""
    env = os.environ.get(BUILD_ENV)
    return Path(env) if env else SOURCE_TOP / "build"


def program(name: str) -> Path:
    """The path of a walsim C program (``walsim-netd``, ``walsim-probe``...)."""
    return build_dir() / "bin" / name


def library(name: str) -> Path:
    """The path of a shared library walsim builds (``libwalsim-disk.so``)."""
    return build_dir() / "lib" / name


def scenarios_dir() -> Path:
    """``$WALSIM_SCENARIOS``, else ``scenarios/`` of the checkout (or of the install)."""
    env = os.environ.get(SCENARIOS_ENV)
    if env:
        return Path(env)
    for cand in (SOURCE_TOP / "scenarios", Path(__file__).resolve().parents[2] / "scenarios"):
        if cand.is_dir():
            return cand
    return Path("scenarios")


def test_data_dir() -> Path:
    """``tests/data`` of the checkout (real WAL segments and protocol captures)."""
    return SOURCE_TOP / "tests" / "data"
