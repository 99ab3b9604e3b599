"""Fixtures of the conformance suite (helpers live in conform_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from walsim.pg.ports import PortAllocator

from conform_support import PASSWORD, Sender


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    p = tmp_path / "passfile"
    p.write_text(f"*:*:*:rep:{PASSWORD}\n")
    p.chmod(0o600)
    return p


@pytest.fixture
def start_sender(walsim_build: Path, port_allocator: PortAllocator, tmp_path: Path,
                 passfile: Path) -> Iterator[Callable[..., Sender]]:
    """``start_sender(waldir, *args)``; every sender is stopped at the end."""
    started: list[Sender] = []
    binary = walsim_build / "bin" / "walsim-sender"

    def start(waldir: Path, *args: str) -> Sender:
        reservation = port_allocator.reserve()
        port = reservation.port
        reservation.release()
        s = Sender(binary, waldir, port, passfile, tmp_path / f"sender-{port}.log", args)
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            s.stop()
