"""Schedules are a pure function of (scenario, seed), cover the declared fault space, and are
plain scenarios: no PostgreSQL here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from walsim.api import load_scenario, parse_scenario
from walsim.explore.schedule import declared_seconds, digest, generate, render
from walsim.scenario.schema import parse_duration, parse_size

TOP = Path(__file__).resolve().parents[2]
PLANTED = TOP / "scenarios" / "explore" / "planted-async-declared-sync.toml"
SPACE = Path(__file__).resolve().parent / "data" / "space.toml"
SEEDS = range(1, 401)


@pytest.fixture(scope="module")
def space():
    return load_scenario(SPACE)


@pytest.fixture(scope="module")
def schedules(space):
    return {seed: generate(space, seed) for seed in SEEDS}


def test_same_seed_same_text_different_seed_different_text(space) -> None:
    for seed in (1, 2, 77, 2 ** 63):
        assert render(space, generate(space, seed)) == render(space, generate(space, seed))
    texts = {render(space, generate(space, seed)) for seed in range(1, 51)}
    assert len(texts) == 50
    digests = {digest(space, generate(space, seed)) for seed in range(1, 51)}
    assert len(digests) == 50


def test_a_schedule_is_a_valid_plain_scenario_without_paths_or_times(space) -> None:
    for seed in range(1, 41):
        text = render(space, generate(space, seed))
        sc = parse_scenario(text, f"seed {seed}")
        assert sc.explore is None and sc.seed == seed and sc.snapshot is True
        assert str(TOP) not in text and str(SPACE) not in text and "/tmp" not in text
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text)  # no date, no time
        doc = tomllib.loads(text)
        # the scenario's own steps come first, unchanged
        assert doc["steps"][0] == {"id": "prelude", "do": "checkpoint", "node": "pg1"}


def test_print_schedule_is_byte_identical_between_processes() -> None:
    env = dict(os.environ, PYTHONPATH=str(TOP / "tools"))
    argv = [sys.executable, "-m", "walsim", "explore", str(PLANTED), "--print-schedule", "5"]
    a = subprocess.run(argv, capture_output=True, env=env, cwd=TOP, check=True).stdout
    b = subprocess.run(argv, capture_output=True, env=env, cwd="/", check=True).stdout
    assert a == b and a.startswith(b"# A schedule of the fault space")
    c = subprocess.run(argv[:-1] + ["6"], capture_output=True, env=env, check=True).stdout
    assert c != a


def test_counts_spacing_and_limits_hold(space, schedules) -> None:
    spec = space.explore
    counts = Counter()
    for s in schedules.values():
        own = [e for e in s.events if e.parent is None]
        assert 1 <= len(own) <= 4
        counts[len(own)] += 1
        ats = [e.at for e in own]
        assert ats == sorted(ats)
        gaps = [b - a for a, b in zip([0] + ats, ats)]
        assert all(300 <= g <= 1500 for g in gaps), gaps
        assert all(a <= spec.duration * 1000 for a in ats)
        per_entry = Counter(e.entry for e in s.events)
        assert per_entry["kill"] <= 1 and per_entry["promote"] <= 1
        assert declared_seconds(s, spec) == pytest.approx(spec.warmup + s.end_ms() / 1000 + spec.tail)
    # every count of the range happens (4 only when the duration leaves room)
    assert {1, 2, 3, 4} <= set(counts)


def test_every_entry_option_and_range_end_is_reached(space, schedules) -> None:
    events = [e for s in schedules.values() for e in s.events]
    entries = Counter(e.entry for e in events)
    assert set(entries) == {e.id for e in space.explore.entries}
    # weights: "delay" has weight 3, "checkpoint" weight 1
    assert entries["delay"] > 2 * entries["checkpoint"]
    links = Counter(e.value("link") for e in events if e.entry == "delay")
    assert set(links) == {"l2", "l3"}
    delays = [parse_duration(e.value("delay")) for e in events if e.entry == "delay"]
    assert min(delays) >= 0.010 and max(delays) <= 0.200
    assert min(delays) < 0.030 and max(delays) > 0.180  # spread over the range
    rates = [parse_size(e.value("rate")) for e in events if e.entry == "narrow"]
    assert all(16 * 1024 <= r <= 1024 * 1024 for r in rates) and len(set(rates)) > 10
    heals = [e.heal_after for e in events if e.entry in ("delay", "narrow")]
    assert all(200 <= h <= 1000 for h in heals) and None not in heals
    assert all(e.heal_after is None for e in events if e.entry in ("kill", "checkpoint"))
    clients = Counter(dict(s.clients)["ledger"] for s in schedules.values())
    assert set(clients) == {1, 2, 3}


def test_a_follower_comes_after_each_occurrence_of_its_entry(space, schedules) -> None:
    seen = 0
    for s in schedules.values():
        kills = [e for e in s.events if e.entry == "kill"]
        promotes = [e for e in s.events if e.entry == "promote"]
        assert len(promotes) == len(kills)  # never drawn on its own, always after a kill
        for k, p in zip(kills, promotes):
            assert p.parent == k.step_id and 100 <= p.at - k.at <= 400
            seen += 1
    assert seen > 20


def test_the_drawn_steps_are_in_time_order_with_their_heals(space) -> None:
    for seed in range(1, 30):
        s = generate(space, seed)
        doc = tomllib.loads(render(space, s))
        t = 0.0
        times = {}
        for st in doc["steps"][1:]:
            if st.get("wait") == "sleep":
                t += parse_duration(st["seconds"])
            elif "heal" in st:
                assert st["heal"] in times and t >= times[st["heal"]]
            else:
                times[st["id"]] = t
        assert t == pytest.approx(declared_seconds(s, space.explore))


def test_the_planted_space_draws_a_kill_in_most_of_its_first_eight_seeds() -> None:
    sc = load_scenario(PLANTED)
    with_kill = [seed for seed in range(1, 9) if any(e.entry == "kill-primary" for e in generate(sc, seed).events)]
    assert len(with_kill) >= 2, with_kill
