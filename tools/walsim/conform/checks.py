"""The registry of conformance checks.

A check is a function of a context (sender or receiver) that returns its
evidence (a short text: the bytes or log line that decided it) when the
behaviour holds, raises :class:`Failed` with the evidence when it does not,
and :class:`Skipped` with the reason when it cannot be decided against this
target.  Each check cites the behaviour it verifies from protocol.md §7 and
where PostgreSQL defines it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from walsim.conform.results import FAIL, PASS, SKIPPED, Report, Result
from walsim.core.errors import WalsimError


class Failed(WalsimError):
    """The target departs from the behaviour; the message is the evidence."""


class Skipped(WalsimError):
    """The check cannot be decided against this target; the message says why."""


@dataclass(frozen=True)
class Check:
    id: str                  # S05, R09: side letter + item of protocol.md §7.1 / §7.2
    side: str                # "sender" or "receiver"
    behaviour: str           # the behaviour, as protocol.md §7 states it
    source: str              # where PostgreSQL defines it
    func: Callable[[Any], str]

    @property
    def section(self) -> str:
        return f"§7.{1 if self.side == 'sender' else 2}.{int(self.id[1:])}"


CHECKS: dict[str, Check] = {}


def check(id: str, behaviour: str, source: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register a check function under ``id`` (decorator)."""
    side = {"S": "sender", "R": "receiver"}[id[0]]

    def register(func: Callable[[Any], str]) -> Callable[[Any], str]:
        if id in CHECKS:
            raise ValueError(f"check {id} registered twice")
        CHECKS[id] = Check(id, side, " ".join(behaviour.split()), source, func)
        return func
    return register


def checks_for(side: str) -> list[Check]:
    return sorted((c for c in CHECKS.values() if c.side == side), key=lambda c: int(c.id[1:]))


def expect(condition: bool, evidence: str) -> None:
    """Raise :class:`Failed` with the evidence unless condition holds."""
    if not condition:
        raise Failed(evidence)


def run_checks(report: Report, checks: Sequence[Check], ctx: Any, only: Sequence[str] = (),
               progress: Callable[[Result], None] | None = None) -> Report:
    """Run ``checks`` (or those of them named in ``only``) in order against
    ``ctx``, appending one Result each to ``report``: PASS with the evidence a
    check returns, FAIL or SKIPPED with the reason it raises."""
    for c in checks:
        if only and c.id not in only:
            continue
        t0 = time.monotonic()
        try:
            status, evidence = PASS, c.func(ctx)
        except Failed as exc:
            status, evidence = FAIL, str(exc)
        except Skipped as exc:
            status, evidence = SKIPPED, str(exc)
        result = Result(c.id, c.behaviour, c.source, status, evidence, time.monotonic() - t0)
        report.results.append(result)
        if progress:
            progress(result)
    return report
