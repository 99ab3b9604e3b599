"""Process inspection through /proc, by pid only.

walsim never finds or kills PostgreSQL processes by name.  It starts the
postmaster itself, reads its pid from ``postmaster.pid``, and finds the
postmaster's children by their parent pid; a child's kind (walsender,
walreceiver, startup...) comes from the process title PostgreSQL sets.  A
pid is remembered together with its start time so that a recycled pid is
never mistaken for a former PostgreSQL process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")

#: process kinds (as in pg_stat_activity.backend_type) and the title prefixes that identify them
KINDS = {
    "walsender": ("walsender",),
    "walreceiver": ("walreceiver",),
    "startup": ("startup",),
    "checkpointer": ("checkpointer",),
    "background writer": ("background writer",),
    "walwriter": ("walwriter",),
    "autovacuum launcher": ("autovacuum launcher",),
    "autovacuum worker": ("autovacuum worker",),
    "archiver": ("archiver",),
    "logical replication launcher": ("logical replication launcher",),
}
ALIASES = {"bgwriter": "background writer", "backend": "client backend",
           "client backend": "client backend", "postmaster": "postmaster"}


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    starttime: int
    title: str


def stat(pid: int) -> ProcInfo | None:
    """The /proc entry of ``pid``, or None if it no longer exists."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may itself contain ")" and spaces.
    rest = raw[raw.rindex(")") + 2:].split()
    state, ppid, starttime = rest[0], int(rest[1]), int(rest[19])
    try:
        title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        title = ""
    return ProcInfo(pid, ppid, state, starttime, title)


def children(ppid: int) -> list[ProcInfo]:
    """Direct children of ``ppid`` (a scan of /proc)."""
    out = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        info = stat(int(entry.name))
        if info is not None and info.ppid == ppid:
            out.append(info)
    return out


def alive(pid: int, starttime: int | None = None) -> bool:
    """True if ``pid`` exists, is not a zombie, and (when given) started at ``starttime``."""
    info = stat(pid)
    if info is None or info.state in ("Z", "X"):
        return False
    return starttime is None or info.starttime == starttime


def classify(title: str, cluster_name: str | None = None) -> str:
    """The kind of a PostgreSQL child process from its title.

    Titles look like ``postgres: pg1: walreceiver streaming 0/3000148``
    (``pg1`` is ``cluster_name``); anything that is not an auxiliary process
    is a ``client backend``.
    """
    text = title
    if text.startswith("postgres: "):
        text = text[len("postgres: "):]
    if cluster_name and text.startswith(f"{cluster_name}: "):
        text = text[len(cluster_name) + 2:]
    for kind, prefixes in KINDS.items():
        if text.startswith(prefixes):
            return kind
    return "client backend"


def normalize_kind(kind: str) -> str:
    k = kind.strip().lower()
    k = ALIASES.get(k, k)
    if k not in KINDS and k not in ("client backend", "postmaster"):
        raise ValueError(f"unknown process kind {kind!r}; known: postmaster, backend, "
                         + ", ".join(KINDS))
    return k


def signal_name(sig: int) -> str:
    import signal as _signal
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return str(sig)


def kill_if_same(pid: int, starttime: int, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process that started at ``starttime``."""
    info = stat(pid)
    if info is None or info.starttime != starttime or info.state in ("Z", "X"):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
