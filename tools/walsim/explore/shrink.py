"""Shrinking: a failing schedule reduced, one step at a time, while it still fails.

The reductions, tried in this order, each kept only when the candidate still
fails:

1. **drop** a fault (with the faults that follow it: a promotion that
   follows a kill goes with the kill);
2. **heal sooner**: a fault's ``heal_after`` moved to its range's ``from`` end,
   else a half, else a quarter of the way there;
3. **lower** a drawn parameter: to its range's ``from`` end (else a half,
   else a quarter of the way there), a choice to its first option;
4. **move later**: a fault halfway toward the next fault drawn on its own
   (faults overlap less; the schedule does not get longer);
5. **fewer clients**: a workload's clients to 1, else halved.

Then again from 1, until a whole round changes nothing or the budget (a
number of candidates, a deadline) is spent.  A candidate tested once is
never tested again, and a change that did not reproduce the failure is not
tried again on the smaller schedules that follow (failures are taken to be
monotonic: what a larger schedule needed, a smaller one needs too).  Whether a candidate fails is the *oracle*'s answer:
:mod:`walsim.explore.explorer` runs it up to n times and calls it failing
when at least k of the runs fail the same way (PostgreSQL and the kernel
are not deterministic); here it is any function, which is what the unit
tests rely on (a synthetic predicate whose minimum is known).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from walsim.explore.schedule import Event, Schedule
from walsim.scenario.explore import ExploreSpec, Range


@dataclass
class Outcome:
    """The oracle's answer for one candidate: failing or not, from how many runs."""

    failing: bool
    runs: int = 1
    failures: int = 0
    detail: Any = field(default=None, repr=False)

    @property
    def rate(self) -> str:
        return f"{self.failures}/{self.runs}"


@dataclass
class Attempt:
    number: int
    change: str
    key: str
    events: list[str]
    outcome: Outcome
    accepted: bool

    def to_json(self) -> dict[str, Any]:
        return {"attempt": self.number, "change": self.change, "schedule": self.key, "events": self.events,
                "runs": self.outcome.runs, "failures": self.outcome.failures,
                "failing": self.outcome.failing, "accepted": self.accepted}


@dataclass
class ShrinkResult:
    original: Schedule
    minimal: Schedule
    attempts: list[Attempt]
    #: why shrinking stopped: "minimal" (a round changed nothing), "budget" or "deadline"
    stopped: str

    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.accepted]


Oracle = Callable[[Schedule, str], Outcome]
Candidate = tuple[str, Schedule]


# -------------------------------------------------------------- reductions

def _toward(value: float, rng: Range) -> list[float]:
    """The ``from`` end, then a half and a quarter of the way there (only values
    that differ from ``value``)."""
    out = []
    for target in (rng.lo, value + (rng.lo - value) / 2, value + (rng.lo - value) / 4):
        if rng.integer or rng.unit in ("duration", "lsn", "offset"):
            step = 0.001 if rng.unit == "duration" else 1
            target = round(round(target / step) * step, 3)
        if abs(target - value) > 1e-9 and target not in out:
            out.append(target)
    return out


def drop(schedule: Schedule, spec: ExploreSpec, base_clients: Mapping[str, int]) -> Iterator[Candidate]:
    for e in schedule.events:
        gone = {e.step_id, *schedule.descendants(e.step_id)}
        what = e.step_id + (f" (and {', '.join(sorted(gone - {e.step_id}))})" if len(gone) > 1 else "")
        yield f"drop {what}", schedule.without(gone)


def heal_sooner(schedule: Schedule, spec: ExploreSpec, base_clients: Mapping[str, int]) -> Iterator[Candidate]:
    for e in schedule.events:
        rng = spec.entry(e.entry).heal_after
        if e.heal_after is None or rng is None:
            continue
        for target in _toward(e.heal_after / 1000, rng):
            ms = int(round(target * 1000))
            yield (f"heal {e.step_id} after {ms}ms instead of {e.heal_after}ms",
                   schedule.with_event(replace(e, heal_after=ms)))


def lower(schedule: Schedule, spec: ExploreSpec, base_clients: Mapping[str, int]) -> Iterator[Candidate]:
    for e in schedule.events:
        entry = spec.entry(e.entry)
        for name, p in entry.params.items():
            current = e.value(name)
            targets: list[Any] = []
            if p.range is not None:
                targets = [p.range.emit(t) for t in _toward(p.range.number(current), p.range)]
            elif p.options and current != p.options[0]:
                targets = [p.options[0]]
            for target in targets:
                values = tuple((k, target if k == name else v) for k, v in e.values)
                yield f"{e.step_id}: {name} = {target!r} instead of {current!r}", \
                    schedule.with_event(replace(e, values=values))


def later(schedule: Schedule, spec: ExploreSpec, base_clients: Mapping[str, int]) -> Iterator[Candidate]:
    own = sorted((e for e in schedule.events if e.parent is None), key=lambda e: e.at)
    for e, nxt in zip(own, own[1:]):
        delta = (nxt.at - e.at) // 2
        if delta < 50:
            continue
        moved = {e.step_id, *schedule.descendants(e.step_id)}
        cand = schedule
        for sid in moved:
            ev = cand.event(sid)
            cand = cand.with_event(replace(ev, at=ev.at + delta))
        yield f"move {e.step_id} {delta}ms later", cand


def fewer_clients(schedule: Schedule, spec: ExploreSpec, base_clients: Mapping[str, int]) -> Iterator[Candidate]:
    current = dict(base_clients)
    current.update(dict(schedule.clients))
    for name, n in current.items():
        for target in dict.fromkeys((1, n // 2)):
            if 1 <= target < n:
                clients = dict(current)
                clients[name] = target
                yield (f"{name}: {target} client(s) instead of {n}",
                       replace(schedule, clients=tuple(sorted(clients.items()))))


REDUCTIONS: tuple[Callable[[Schedule, ExploreSpec, Mapping[str, int]], Iterator[Candidate]], ...] = (
    drop, heal_sooner, lower, later, fewer_clients)


# ------------------------------------------------------------------ shrink

def shrink(schedule: Schedule, spec: ExploreSpec, oracle: Oracle, *, key: Callable[[Schedule], str],
           base_clients: Mapping[str, int] | None = None, max_attempts: int = 60,
           deadline: float | None = None, max_rounds: int = 4) -> ShrinkResult:
    """Reduce a failing ``schedule`` while ``oracle`` says it still fails.

    ``key`` names a schedule (its digest) so that no candidate is tested
    twice; ``base_clients`` are the workloads' clients when the schedule
    does not set them; ``deadline`` is a :func:`time.monotonic` instant."""
    current = schedule
    attempts: list[Attempt] = []
    tested = {key(schedule)}
    # A change that did not reproduce the failure is not tried again on a smaller
    # schedule (failures are assumed monotonic: this keeps the number of runs down).
    rejected: set[str] = set()
    base = dict(base_clients or {})
    stopped = "minimal"
    for _ in range(max_rounds):
        changed = False
        for reduce in REDUCTIONS:
            # Walk the candidates of this reduction; after an accepted one, start
            # the reduction over on the smaller schedule (its candidates changed).
            progress = True
            while progress:
                progress = False
                for change, cand in reduce(current, spec, base):
                    k = key(cand)
                    if k in tested or change in rejected:
                        continue
                    if len(attempts) >= max_attempts:
                        return ShrinkResult(schedule, current, attempts, "budget")
                    if deadline is not None and time.monotonic() >= deadline:
                        return ShrinkResult(schedule, current, attempts, "deadline")
                    tested.add(k)
                    outcome = oracle(cand, change)
                    attempts.append(Attempt(len(attempts) + 1, change, k, [e.step_id for e in cand.events],
                                            outcome, outcome.failing))
                    if outcome.failing:
                        current = cand
                        changed = progress = True
                        break
                    rejected.add(change)
        if not changed:
            break
    return ShrinkResult(schedule, current, attempts, stopped)
