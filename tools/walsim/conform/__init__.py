"""Conformance suite: runnable checks of a replication sender or receiver
against the PostgreSQL 15 protocol (``../shared/notes/protocol.md`` §7).

:mod:`walsim.conform.sender` checks a server with ``walsim-probe``;
:mod:`walsim.conform.receiver` runs a receiver against ``walsim-sender``
through an observing relay; :mod:`walsim.conform.results` renders the
outcome as a table, JSON or JUnit XML.  See docs/conformance.md.
"""

from walsim.conform.checks import CHECKS, Check, Failed, Skipped
from walsim.conform.results import Result, Report

__all__ = ["CHECKS", "Check", "Failed", "Skipped", "Result", "Report"]
