"""Shrinking on synthetic failing predicates reaches the known minimum (no PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from walsim.api import load_scenario
from walsim.explore.schedule import Event, Schedule, digest, generate
from walsim.explore.shrink import Outcome, shrink
from walsim.scenario.schema import parse_duration, parse_size

SPACE = Path(__file__).resolve().parent / "data" / "space.toml"


@pytest.fixture(scope="module")
def space():
    return load_scenario(SPACE)


def big_schedule(space) -> Schedule:
    """A hand-made schedule: two harmless delays, a narrowed link, a kill and its promotion,
    a checkpoint; 3 clients."""
    ev = [
        Event("delay", "delay-1", 300, (("link", "l3"), ("delay", "150ms")), heal_after=900),
        Event("narrow", "narrow-1", 800, (("link", "l3"), ("rate", 20000)), heal_after=700),
        Event("kill", "kill-1", 1500, (("node", "pg1"),)),
        Event("promote", "promote-1", 1800, (("node", "pg2"),), parent="kill-1"),
        Event("delay", "delay-2", 2400, (("link", "l2"), ("delay", "120ms")), heal_after=800),
        Event("checkpoint", "checkpoint-1", 3000, (("node", "pg3"),)),
    ]
    return Schedule("space", 9, tuple(ev), (("ledger", 3),), origin="seed 9")


def run(space, schedule, predicate, **kw):
    calls: list[str] = []

    def oracle(cand: Schedule, change: str) -> Outcome:
        calls.append(digest(space, cand))
        return Outcome(predicate(cand))
    result = shrink(schedule, space.explore, oracle, key=lambda s: digest(space, s), **kw)
    return result, calls


def kill_and_promote(s: Schedule) -> bool:
    entries = {e.entry for e in s.events}
    return {"kill", "promote"} <= entries


def test_reaches_the_kill_and_the_promotion_alone(space) -> None:
    result, calls = run(space, big_schedule(space), kill_and_promote)
    m = result.minimal
    assert [e.step_id for e in m.events] == ["kill-1", "promote-1"]
    assert dict(m.clients) == {"ledger": 1}
    assert result.stopped == "minimal"
    assert len(calls) == len(set(calls)), "a candidate was tested twice"
    # dropping the kill takes its promotion with it: never a promotion alone
    assert all(not (a.events == ["promote-1"]) for a in result.attempts)
    assert any(a.change.startswith("drop kill-1 (and promote-1)") for a in result.attempts)


def test_lowers_a_parameter_to_the_threshold_region(space) -> None:
    """Fails while a delay of at least 60 ms is on l3: the delay is lowered toward its
    range's from end (10 ms) but not below what still fails, the heal comes sooner."""
    def predicate(s: Schedule) -> bool:
        return any(e.entry == "delay" and e.value("link") == "l3" and parse_duration(e.value("delay")) >= 0.060
                   for e in s.events)
    result, _ = run(space, big_schedule(space), predicate)
    m = result.minimal
    assert [e.entry for e in m.events] == ["delay"]
    e = m.events[0]
    assert e.value("link") == "l3" and 0.060 <= parse_duration(e.value("delay")) < 0.150
    assert e.heal_after == 200  # the heal_after range's from end
    assert dict(m.clients) == {"ledger": 1}


def test_a_range_written_harsh_last_shrinks_toward_its_mild_end(space) -> None:
    """narrow: rate from 1MB (mild) to 16kB (harsh); the failure needs a rate under 300 kB."""
    def predicate(s: Schedule) -> bool:
        return any(e.entry == "narrow" and parse_size(e.value("rate")) < 300_000 for e in s.events)
    result, _ = run(space, big_schedule(space), predicate)
    (e,) = result.minimal.events
    # a quarter of the way from 20000 to 1048576, still failing; a half would not fail
    assert parse_size(e.value("rate")) == 20000 + (1048576 - 20000) // 4


def test_a_choice_goes_to_its_first_option(space) -> None:
    s = big_schedule(space)
    result, _ = run(space, s, lambda c: any(e.entry == "delay" and e.step_id == "delay-2" for e in c.events))
    (e,) = result.minimal.events
    assert e.step_id == "delay-2" and e.value("link") == "l2"  # already the first option
    s2 = Schedule("space", 9, (Event("delay", "delay-1", 300, (("link", "l3"), ("delay", "150ms")), 900),),
                  origin="x")
    result2, _ = run(space, s2, lambda c: len(c.events) == 1)
    assert result2.minimal.events[0].value("link") == "l2"


def test_moves_a_fault_later_when_that_still_fails(space) -> None:
    """Needs delay-1 and the checkpoint: delay-1 moves toward the checkpoint (halfway,
    again and again) but never past it; the checkpoint, the last fault, stays put."""
    def predicate(c: Schedule) -> bool:
        return {"delay-1", "checkpoint-1"} <= {e.step_id for e in c.events}
    result, _ = run(space, big_schedule(space), predicate)
    ats = {e.step_id: e.at for e in result.minimal.events}
    assert set(ats) == {"delay-1", "checkpoint-1"} and ats["checkpoint-1"] == 3000
    assert 2900 <= ats["delay-1"] < 3000
    assert [a.change for a in result.accepted if a.change.startswith("move")][0] == "move delay-1 1350ms later"


def test_a_flaky_failure_needs_the_oracle_to_say_so(space) -> None:
    """The oracle decides; a candidate it calls passing is never kept."""
    answers = iter([False] * 1000)
    result, _ = run(space, big_schedule(space), lambda c: next(answers))
    assert result.minimal == big_schedule(space) and not result.accepted


def test_budget_and_deadline_stop_shrinking(space) -> None:
    result, calls = run(space, big_schedule(space), kill_and_promote, max_attempts=2)
    assert result.stopped == "budget" and len(calls) == 2
    result, calls = run(space, big_schedule(space), kill_and_promote, deadline=time.monotonic() - 1)
    assert result.stopped == "deadline" and calls == []


def test_generated_schedules_shrink_too(space) -> None:
    seed = next(s for s in range(1, 200) if len(generate(space, s).events) >= 3
                and any(e.entry == "kill" for e in generate(space, s).events))
    result, _ = run(space, generate(space, seed), kill_and_promote)
    assert sorted(e.entry for e in result.minimal.events) == ["kill", "promote"]
