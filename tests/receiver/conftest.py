"""Fixtures of the walsim-receiver suite (tests/receiver)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver_support import Receivers  # noqa: E402

from walsim.pg.cluster import Cluster  # noqa: E402


@pytest.fixture
def receivers(cluster: Cluster, walsim_build: Path) -> Iterator[Receivers]:
    """Receivers writing into the cluster's base directory (kept on failure)."""
    binary = walsim_build / "bin" / "walsim-receiver"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing; run make first")
    r = Receivers(cluster.base_dir / "receivers", walsim_build, cluster.pg.bindir)
    r.workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield r
    finally:
        r.cleanup()
