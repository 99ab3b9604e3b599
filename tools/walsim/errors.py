"""Exceptions of the cluster API.

Every error says what failed and where to look: the program and its exit
status, the node, and the path of the log that holds PostgreSQL's own words.
"""

from __future__ import annotations


class WalsimError(Exception):
    """Base class of walsim's errors."""


class ClusterError(WalsimError):
    """A cluster or node operation failed (the message says which and why)."""


class PgBinariesNotFound(ClusterError):
    """No PostgreSQL installation was found; the message lists what was searched."""


class UnknownNode(ClusterError, LookupError):
    """A node name that the cluster does not have."""


class PortError(ClusterError):
    """A port could not be reserved (taken by another program or another run)."""


class CommandError(ClusterError):
    """A PostgreSQL program (initdb, pg_basebackup, pg_ctl, pg_rewind...) failed."""

    def __init__(self, message: str, *, argv: list[str], returncode: int | None, output: str = "") -> None:
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.output = output


class ServerStartError(ClusterError):
    """The postmaster exited or did not become ready; the message quotes its log."""

    def __init__(self, message: str, *, log_excerpt: str = "", log_file: str = "") -> None:
        super().__init__(message)
        self.log_excerpt = log_excerpt
        self.log_file = log_file


class WaitTimeout(ClusterError, TimeoutError):
    """A deadline passed: says what was awaited, the last value seen and where the logs are."""

    def __init__(self, message: str, *, what: str, last: object, logs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.what = what
        self.last = last
        self.logs = logs
