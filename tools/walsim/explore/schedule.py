"""Schedules: a fault space and a seed give a plain scenario, through the decision function.

:func:`generate` draws a :class:`Schedule` from a scenario's ``[explore]``
table (:mod:`walsim.scenario.explore`): how many faults, which menu entries,
when (integer milliseconds after the warm-up), with which parameters, when
each is healed, and the clients of each workload.  Every draw is
``decision(seed, "explore.<what>", coordinates...)`` with logical
coordinates (the index of the draw, the entry id, the field name), never a
random stream, so a schedule depends on (scenario, seed) alone and one
extra entry in the menu does not shift every later draw.

:func:`render` writes a schedule as a scenario file that ``walsim-cli run``
replays: the scenario's own cluster, workloads and verdicts, its
``[[steps]]`` first (a fixed prelude), then the drawn steps separated by
``wait = "sleep"`` steps; ``[explore]`` is gone.  The text holds no
timestamp and no path: the same (scenario, seed) always gives the same
bytes, and :func:`digest` names it.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from walsim.core.decision import decision, uniform
from walsim.explore import tomlw
from walsim.scenario.explore import ExploreSpec, MenuEntry, Range
from walsim.scenario.model import Scenario

#: workload kinds whose ``clients`` a fault space may set
CLIENT_WORKLOADS = ("ledger", "reader", "pgbench")


@dataclass(frozen=True)
class Event:
    """One drawn step: ``at`` and ``heal_after`` in milliseconds after the warm-up."""

    entry: str
    step_id: str
    at: int
    values: tuple[tuple[str, Any], ...]
    heal_after: int | None = None
    #: the step id of the event this one follows (``follows``), None when drawn on its own
    parent: str | None = None

    def value(self, name: str) -> Any:
        return dict(self.values).get(name)


@dataclass(frozen=True)
class Schedule:
    """A drawn schedule: what :func:`render` turns into a scenario file."""

    scenario: str
    seed: int
    events: tuple[Event, ...]
    #: workload name -> clients
    clients: tuple[tuple[str, int], ...] = ()
    #: how the schedule was obtained, for the file's header (a shrink records its steps)
    origin: str = ""
    notes: tuple[str, ...] = field(default=(), compare=False)

    def event(self, step_id: str) -> Event:
        return next(e for e in self.events if e.step_id == step_id)

    def descendants(self, step_id: str) -> list[str]:
        """The events that follow ``step_id``, directly or through others."""
        out: list[str] = []
        frontier = [step_id]
        while frontier:
            cur = frontier.pop()
            for e in self.events:
                if e.parent == cur and e.step_id not in out:
                    out.append(e.step_id)
                    frontier.append(e.step_id)
        return out

    def without(self, step_ids: set[str]) -> "Schedule":
        return replace(self, events=tuple(e for e in self.events if e.step_id not in step_ids))

    def with_event(self, event: Event) -> "Schedule":
        return replace(self, events=tuple(event if e.step_id == event.step_id else e for e in self.events))

    def end_ms(self) -> int:
        """When the last drawn step (or heal) happens, after the warm-up."""
        ends = [e.at for e in self.events] + [e.at + e.heal_after for e in self.events
                                              if e.heal_after is not None]
        return max(ends, default=0)

    def describe(self) -> str:
        parts = [f"{e.step_id} at {e.at / 1000:.3f}s"
                 + (f" (healed {e.heal_after / 1000:.3f}s later)" if e.heal_after is not None else "")
                 for e in sorted(self.events, key=lambda e: e.at)]
        return "; ".join(parts) or "no faults"


# ------------------------------------------------------------------ drawing

def _unit(seed: int, rule: str, *coords: int | str) -> float:
    """A number in [0, 1) from the decision function."""
    return (decision(seed, rule, *coords) >> 11) / float(1 << 53)


def _draw_ms(rng: Range, seed: int, rule: str, *coords: int | str) -> int:
    lo, hi = int(round(rng.low * 1000)), int(round(rng.high * 1000))
    return uniform(decision(seed, rule, *coords), lo, hi)


def _draw_range(rng: Range, seed: int, rule: str, *coords: int | str) -> Any:
    if rng.unit == "duration":
        return rng.emit(_draw_ms(rng, seed, rule, *coords) / 1000)
    if rng.integer:
        return rng.emit(uniform(decision(seed, rule, *coords), int(rng.low), int(rng.high)))
    return rng.emit(rng.low + (rng.high - rng.low) * _unit(seed, rule, *coords))


def _draw_values(entry: MenuEntry, seed: int, i: int) -> tuple[tuple[str, Any], ...]:
    out = []
    for name, p in entry.params.items():
        if p.range is not None:
            out.append((name, _draw_range(p.range, seed, "explore.param", i, entry.id, name)))
        elif p.options:
            k = uniform(decision(seed, "explore.param", i, entry.id, name), 0, len(p.options) - 1)
            out.append((name, p.options[k]))
        else:
            out.append((name, p.value))
    return tuple(out)


def _pick(entries: list[MenuEntry], seed: int, i: int) -> MenuEntry | None:
    """A weighted choice (weights in thousandths, so that the draw is exact)."""
    weights = [int(round(e.weight * 1000)) for e in entries]
    total = sum(weights)
    if total <= 0:
        return None
    x = uniform(decision(seed, "explore.pick", i), 0, total - 1)
    for e, w in zip(entries, weights):
        if x < w:
            return e
        x -= w
    return None  # pragma: no cover - x < total


def generate(scenario: Scenario, seed: int) -> Schedule:
    """The schedule of ``scenario``'s fault space for ``seed`` (a pure function of both)."""
    spec = scenario.explore
    if spec is None:
        raise ValueError(f"scenario {scenario.name} declares no fault space ([explore])")
    count = uniform(decision(seed, "explore.count"), int(spec.count.low), int(spec.count.high))
    limit = int(round(spec.duration * 1000))
    counts: dict[str, int] = {}
    events: list[Event] = []
    t = 0

    def add(entry: MenuEntry, at: int, i: int, parent: str | None) -> None:
        counts[entry.id] = counts.get(entry.id, 0) + 1
        heal = (_draw_ms(entry.heal_after, seed, "explore.heal", i, entry.id)
                if entry.heal_after is not None else None)
        ev = Event(entry.id, f"{entry.id}-{counts[entry.id]}", at, _draw_values(entry, seed, i), heal, parent)
        events.append(ev)
        for follower in spec.entries:
            if follower.follows == entry.id and _room(follower, counts):
                gap = _draw_ms(follower.gap or spec.spacing, seed, "explore.gap", i, follower.id)
                add(follower, at + gap, i, ev.step_id)

    for i in range(count):
        t += _draw_ms(spec.spacing, seed, "explore.spacing", i)
        if t > limit:
            break
        eligible = [e for e in spec.entries if e.follows is None and _room(e, counts)]
        entry = _pick(eligible, seed, i)
        if entry is None:
            break
        add(entry, t, i, None)
    clients: list[tuple[str, int]] = []
    if spec.clients is not None:
        for name, w in scenario.workloads.items():
            if w.kind in CLIENT_WORKLOADS:
                clients.append((name, uniform(decision(seed, "explore.clients", name),
                                              int(spec.clients.low), int(spec.clients.high))))
    return Schedule(scenario.name, seed, tuple(events), tuple(clients), origin=f"seed {seed}")


def _room(entry: MenuEntry, counts: dict[str, int]) -> bool:
    return entry.max is None or counts.get(entry.id, 0) < entry.max


# ---------------------------------------------------------------- rendering

def _sleep(ms: int, note: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"wait": "sleep", "seconds": f"{ms}ms"}
    if note:
        step["note"] = note
    return step


def steps_of(schedule: Schedule, spec: ExploreSpec) -> list[dict[str, Any]]:
    """The drawn steps of a schedule, with the sleeps between them (no prelude)."""
    items: list[tuple[int, int, dict[str, Any]]] = []
    for n, e in enumerate(schedule.events):
        entry = spec.entry(e.entry)
        step: dict[str, Any] = {entry.category: entry.kind, "id": e.step_id}
        step.update(dict(e.values))
        step["note"] = entry.note or f"explore: {e.entry}" + (f", after {e.parent}" if e.parent else "")
        items.append((e.at, 2 * n, step))
        if e.heal_after is not None:
            items.append((e.at + e.heal_after, 2 * n + 1, {"heal": e.step_id}))
    items.sort(key=lambda x: (x[0], x[1]))
    out: list[dict[str, Any]] = []
    if spec.warmup > 0:
        out.append(_sleep(int(round(spec.warmup * 1000)), "explore: warm-up"))
    now = 0
    for at, _, step in items:
        if at > now:
            out.append(_sleep(at - now))
            now = at
        out.append(step)
    if spec.tail > 0:
        out.append(_sleep(int(round(spec.tail * 1000)), "explore: tail"))
    return out


def declared_seconds(schedule: Schedule, spec: ExploreSpec) -> float:
    """The wall time the schedule's sleeps add up to (warm-up, faults, tail)."""
    return round(spec.warmup + schedule.end_ms() / 1000 + spec.tail, 3)


def document(scenario: Scenario, schedule: Schedule) -> dict[str, Any]:
    """The scenario document of a schedule (what :func:`render` writes)."""
    spec = scenario.explore
    assert spec is not None
    doc = tomllib.loads(scenario.text)
    doc.pop("explore", None)
    doc["seed"] = schedule.seed
    if spec.snapshot:
        doc["snapshot"] = True
    doc["description"] = (doc.get("description", "").rstrip() + f" [schedule {schedule.origin}: "
                          f"{schedule.describe()}]")
    clients = dict(schedule.clients)
    for name, w in doc.get("workloads", {}).items():
        if name in clients and isinstance(w, dict):
            w["clients"] = clients[name]
    doc["steps"] = list(doc.get("steps", [])) + steps_of(schedule, spec)
    return doc


def _body(scenario: Scenario, schedule: Schedule) -> str:
    return tomlw.dumps(document(scenario, schedule))


def digest(scenario: Scenario, schedule: Schedule) -> str:
    """A short name of the schedule's scenario text (the same text, the same digest)."""
    return hashlib.sha256(_body(scenario, schedule).encode()).hexdigest()[:16]


def render(scenario: Scenario, schedule: Schedule) -> str:
    """The schedule as a plain scenario file, with a header saying where it came from."""
    body = _body(scenario, schedule)
    d = hashlib.sha256(body.encode()).hexdigest()[:16]
    header = (f"A schedule of the fault space of scenario {scenario.name!r} ({schedule.origin}),\n"
              f"drawn by walsim-cli explore; schedule digest {d}.\n"
              "A plain scenario: walsim-cli run replays it.")
    for note in schedule.notes:
        header += "\n" + note
    return tomlw.dumps({}, header) + body
