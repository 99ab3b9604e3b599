"""Every exception walsim raises, under one base class: :class:`WalsimError`.

A caller that wants to tell walsim's own errors from bugs catches
``WalsimError``; each subclass says which part of walsim failed.  Every error
says what failed and where to look: the program and its exit status, the
node, the file and key, the path of the log that holds PostgreSQL's own words.
"""

from __future__ import annotations

from typing import Any, Sequence


class WalsimError(Exception):
    """Base class of every exception walsim raises."""


class UsageError(WalsimError):
    """Bad input from the user on the command line: printed without a traceback, exit status 2."""


# ------------------------------------------------------------------ clusters

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


# ------------------------------------------------------------ fault simulators

class NetdError(WalsimError):
    """walsim-netd refused a command, or could not be started or reached."""


class DiskFaultError(WalsimError):
    """The disk fault layer could not be loaded, configured or rolled back."""


# ------------------------------------------------------------------ managers

class ManagerError(WalsimError):
    """An HA manager (Patroni, repmgr, pg_auto_failover, a user's commands) could not be
    provisioned, started or asked; the message names the manager, the node and its log."""


class ManagerUnsupported(ManagerError):
    """The manager has no such operation, or not one walsim can drive (an ERROR, not a FAIL)."""


class ManagerMissing(ManagerError):
    """A manager's program is not installed; the message names the Debian package."""


# ----------------------------------------------------------------- scenarios

class Invalid(WalsimError):
    """A value does not convert to what a scenario field expects; the caller adds the key path."""


class ScenarioError(WalsimError):
    """A scenario file is invalid; ``issues`` lists every problem found (file, key path, what)."""

    def __init__(self, issues: Sequence[Any]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class StepFailed(WalsimError):
    """The system under test did not do what a step expects (a FAIL, not an ERROR)."""


class HarnessError(WalsimError):
    """walsim itself could not carry out the scenario (an ERROR)."""


class RunInProgress(WalsimError):
    """A run was started in a process that already has one: a run's registry of
    what it started is named by the process's environment (``$WALSIM_REGISTRY``),
    so runs in parallel are separate processes."""


class MissingData(WalsimError):
    """Recorded data a verdict needs is absent or incomplete (the verdict is an ERROR, never a PASS)."""


# --------------------------------------------------------------- conformance

class ConformError(WalsimError):
    """The conformance suite could not run against its target (not a check failing)."""


class UnsafePathError(WalsimError):
    """A directory or file walsim would reuse is not safe to trust: a symbolic
    link, owned by another user, or writable by others (docs/security.md)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C, SIGTERM or SIGHUP after it was torn down and its
    partial record judged; ``rundir`` is where the partial report is.  A
    KeyboardInterrupt (not a WalsimError) so that whatever catches an
    interrupt keeps doing so; the CLI exits 130 on it."""

    def __init__(self, rundir: object, reason: str = "interrupted") -> None:
        super().__init__(reason)
        self.rundir = rundir


class DiskFullError(HarnessError):
    """A filesystem walsim writes to is full (ENOSPC): the message names the
    path, what was being written, and how much was needed and free."""
