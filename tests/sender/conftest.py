"""Fixtures of the walsim-sender suite (helpers live in sender_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from walsim.pg.ports import PortAllocator

from sender_support import SenderProcess


@pytest.fixture
def sender_binary(walsim_build: Path) -> Path:
    binary = walsim_build / "bin" / "walsim-sender"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run make first")
    return binary


@pytest.fixture
def start_sender(sender_binary: Path, port_allocator: PortAllocator,
                 tmp_path: Path) -> Iterator[Callable[..., SenderProcess]]:
    """``start_sender(waldir, *args)`` starts a sender; all are stopped at the end."""
    started: list[SenderProcess] = []

    def start(waldir: Path, *args: str) -> SenderProcess:
        reservation = port_allocator.reserve()
        try:
            s = SenderProcess(sender_binary, waldir, reservation, tmp_path, args)
        except BaseException:
            reservation.release()
            raise
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            s.stop()
            s.reservation.release()


