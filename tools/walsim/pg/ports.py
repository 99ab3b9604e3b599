"""TCP port reservation shared by every walsim process on the machine.

A reserved port is a lock file ``port-N.lock`` in a directory
(``$WALSIM_PORT_DIR``, default ``ports/`` in the user's private runtime
directory, :func:`walsim.core.safefs.runtime_dir`) on which the reserving
process holds an exclusive ``flock`` for as long as it owns the port.

Lock files are opened with ``O_NOFOLLOW`` and must be regular files owned
by the user: the directory used to be a world-writable ``/tmp/walsim-ports``
where another user could plant ``port-N.lock -> /etc/something`` and have
root truncate it (issue 16).  A ``$WALSIM_PORT_DIR`` shared by several
users must be sticky (mode 1777, like ``/tmp``); another user's lock file in
it makes its port unavailable, never written.  Ports taken by other users'
servers are still seen by the bind check below.  The lock dies with the process, so a crashed run never leaks a
reservation; pytest-xdist workers and concurrent CI jobs never hand out the
same port.  A candidate port must also be bindable on the loopback and
wildcard addresses (nothing else is listening on it).

Ports a server must bind are still checked by the server itself: the node
retries with a fresh port when PostgreSQL reports ``could not bind``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import stat
from pathlib import Path

from walsim.core.errors import PortError, UnsafePathError
from walsim.core.safefs import open_nofollow, private_dir, runtime_dir

PORT_DIR_ENV = "WALSIM_PORT_DIR"
#: default range, the one PostgreSQL's Cluster.pm uses (below the Linux ephemeral range)
DEFAULT_LOW, DEFAULT_HIGH = 10200, 32767


def default_port_dir() -> Path:
    env = os.environ.get(PORT_DIR_ENV)
    if env:
        return Path(env)
    try:
        return runtime_dir() / "ports"
    except UnsafePathError as exc:
        raise PortError(str(exc)) from None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing is bound to ``port`` on ``host`` or the wildcard address.

    Uses SO_REUSEADDR as PostgreSQL does, so lingering TIME_WAIT connections
    do not count as "taken".
    """
    for addr in dict.fromkeys((host, "0.0.0.0")):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class PortReservation:
    """One reserved port; :meth:`release` (or process exit) frees it."""

    def __init__(self, port: int, path: Path, fd: int) -> None:
        self.port = port
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __repr__(self) -> str:
        return f"PortReservation({self.port}, held={self.held})"

    def __del__(self) -> None:  # pragma: no cover - safety net only
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


class PortAllocator:
    """Hands out free ports in ``[low, high]`` guarded by lock files in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, low: int = DEFAULT_LOW,
                 high: int = DEFAULT_HIGH, host: str = "127.0.0.1") -> None:
        if not 1024 <= low <= high <= 65535:
            raise PortError(f"invalid port range {low}-{high}")
        self.directory = Path(directory) if directory is not None else default_port_dir()
        self.low, self.high, self.host = low, high, host
        self._rng = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))

    def _ensure_dir(self) -> None:
        """The lock directory must be the user's own (0700), or a sticky directory
        shared on purpose (``$WALSIM_PORT_DIR`` mode 1777, like ``/tmp``)."""
        try:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PortError(f"cannot create the port lock directory {self.directory}: {exc}") from None
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            return  # a shared sticky directory: each lock file is checked on open
        try:
            private_dir(self.directory, what="port lock directory",
                        hint=f"or set {PORT_DIR_ENV} to a directory of your own")
        except UnsafePathError as exc:
            raise PortError(str(exc)) from None

    def _try_lock(self, port: int) -> PortReservation | None:
        path = self.directory / f"port-{port}.lock"
        while True:
            try:
                fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o644)
            except (PermissionError, UnsafePathError):
                return None  # another user's lock file or a planted link: skip the port, touch nothing
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    return None
                raise
            # The holder may have unlinked the file between our open and flock:
            # then we locked an orphan inode; start over with the current file.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return PortReservation(port, path, fd)

    def reserve(self, port: int | None = None) -> PortReservation:
        """Reserve ``port``, or any free port of the range when None.

        Raises :class:`PortError` when the given port is in use (by another
        program or another walsim run) or when the range is exhausted.
        """
        self._ensure_dir()
        if port is not None:
            res = self._try_lock(port)
            if res is None:
                raise PortError(f"port {port} is reserved by another walsim process "
                                f"(lock file {self.directory / f'port-{port}.lock'})")
            if not port_is_free(port, self.host):
                res.release()
                raise PortError(f"port {port} is already in use on {self.host} by another program")
            return res
        candidates = list(range(self.low, self.high + 1))
        self._rng.shuffle(candidates)
        for p in candidates:
            res = self._try_lock(p)
            if res is None:
                continue
            if port_is_free(p, self.host):
                return res
            res.release()
        raise PortError(f"no free port in {self.low}-{self.high} (lock files in {self.directory})")

    def held_ports(self) -> list[int]:
        """Ports whose lock file is currently held by some process (for checks and tests)."""
        held = []
        if not self.directory.is_dir():
            return held
        for f in self.directory.glob("port-*.lock"):
            try:
                fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                held.append(int(f.name[5:-5]))
            finally:
                os.close(fd)
        return sorted(held)
