"""A full disk, told as such: which path, how much was needed, how much is free.

A run writes in two places: the run directory (records, report) and the
work directory (the cluster: data directories, WAL).  When either fills up
the failure shows elsewhere first — ``cp`` of the initdb template failing,
a Python ``write`` raising ``ENOSPC``, PostgreSQL unable to write WAL and a
workload timing out.  :func:`is_enospc` recognises the first two in an
exception chain; :func:`full_paths` finds a filesystem with (almost) no
space left among the places a run writes, for the third.  The engine turns
either into a :class:`~walsim.core.errors.DiskFullError` (exit status 2).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Mapping

#: below this much free space a filesystem counts as full
FULL_BELOW = 1024 * 1024

ENOSPC_TEXT = "No space left on device"


def _existing(path: Path) -> Path:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer can still use on the filesystem of ``path``."""
    st = os.statvfs(_existing(Path(path)))
    return st.f_bavail * st.f_frsize


def mount_point(path: str | os.PathLike[str]) -> Path:
    p = _existing(Path(path)).resolve()
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def tree_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the files under ``path`` (what a copy of it needs)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def human(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def is_enospc(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an exception it was raised from is a full disk."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if ENOSPC_TEXT in str(exc) or ENOSPC_TEXT in str(getattr(exc, "output", "") or ""):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def full_paths(paths: Mapping[str, str | os.PathLike[str] | None]) -> list[str]:
    """``what path: N free on MOUNT`` for each of ``paths`` whose filesystem is full."""
    out = []
    for what, path in paths.items():
        if path is None:
            continue
        try:
            free = free_bytes(path)
        except OSError:
            continue
        if free < FULL_BELOW:
            out.append(f"{what} {path}: {human(free)} free on {mount_point(path)}")
    return out


def full_message(full: list[str], cause: str | None = None, step_error: str | None = None) -> str:
    """The harness error of a run that ran out of space: where, and what failed first."""
    where = "; ".join(full) or cause or "no space left on a device"
    if step_error:
        return f"disk full: {where} (the step failed with: {step_error})"
    return f"disk full: {where}"
