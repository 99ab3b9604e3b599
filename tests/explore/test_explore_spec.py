"""``[explore]`` is validated like the rest of a scenario: every problem named with its key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from walsim.api import parse_scenario
from walsim.core.errors import ScenarioError

TOP = Path(__file__).resolve().parents[2]
BASE = '''
name = "t"
description = "d"
durability = "async"
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
[links.l2]
to = "pg1"
[workloads.w]
kind = "ledger"
node = "pg1"
'''


def issues(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE + text, "t.toml")
    return [f"{i.path}: {i.message}" for i in info.value.issues]


def ok(text: str):
    return parse_scenario(BASE + text, "t.toml")


def test_a_valid_space_loads_with_defaults() -> None:
    sc = ok('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\n')
    spec = sc.explore
    assert spec is not None and spec.duration == 10.0 and spec.reruns == 3 and spec.fails == 2
    assert (spec.count.lo, spec.count.hi) == (1, 3) and spec.snapshot is True
    assert [e.id for e in spec.entries] == ["k"] and spec.entries[0].params["node"].value == "pg1"


def test_a_plain_scenario_has_no_space() -> None:
    assert ok("").explore is None


@pytest.mark.parametrize("text,expected", [
    ('[explore]\n', "explore.faults: missing"),
    ('[explore]\nfaults = 3\n', "explore.faults: expected an array of tables"),
    ('[explore]\nbogus = 1\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\n',
     "explore.bogus: unknown key"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "explode"\nnode = "pg1"\n',
     'explore.faults[0].do: unknown do kind \'explode\''),
    ('[explore]\n[[explore.faults]]\nid = "k"\nwait = "sleep"\n',
     "explore.faults[0]: expected exactly one of the keys fault or do"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg9"\n',
     "explore.faults[0].node: unknown node 'pg9'"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = { one_of = ["pg1", "pg9"] }\n',
     "explore.faults[0].node: one_of[1]: unknown node 'pg9'"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\n',
     "explore.faults[0].node: missing required key"),
    ('[explore]\n[[explore.faults]]\nid = "d"\nfault = "delay"\nlink = "l2"\ndelay = { from = "1s" }\n',
     "explore.faults[0].delay: expected { from = A, to = B }"),
    ('[explore]\n[[explore.faults]]\nid = "d"\nfault = "delay"\nlink = "l2"\ndelay = { from = "1s", to = "x" }\n',
     "explore.faults[0].delay: expected a duration"),
    ('[explore]\n[[explore.faults]]\nid = "d"\nfault = "delay"\nlink = "l2"\ndelay = "1s"\nwobble = 1\n',
     "explore.faults[0].wobble: unknown key"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\nheal_after = "1s"\n',
     "explore.faults[0].heal_after: only faults are healed"),
    ('[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\nfollows = "nope"\n',
     "explore.faults[0].follows: unknown entry 'nope'"),
    ('[explore]\n[[explore.faults]]\nid = "a"\ndo = "kill"\nnode = "pg1"\nfollows = "b"\n'
     '[[explore.faults]]\nid = "b"\ndo = "kill"\nnode = "pg1"\nfollows = "a"\n',
     "explore.faults[0].follows: entries follow each other in a cycle: a -> b -> a"),
    ('[explore]\n[[explore.faults]]\nid = "a"\ndo = "kill"\nnode = "pg1"\n'
     '[[explore.faults]]\nid = "a"\ndo = "checkpoint"\nnode = "pg1"\n',
     "explore.faults[1].id: duplicate entry id 'a'"),
    ('[explore]\nfails = 4\nreruns = 3\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\n',
     "explore.fails: at least 4 failing runs out of reruns = 3"),
    ('[explore]\ncount = { from = 1, to = 2.5 }\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\n',
     "explore.count: expected an integer"),
    # the kind's own checks, for every value a draw can produce
    ('[explore]\n[[explore.faults]]\nid = "b"\nfault = "bandwidth"\nlink = "l2"\nrate = { from = 0, to = "1MB" }\n',
     'explore.faults[0].rate: a bandwidth of 0 is a stall'),
    ('[explore]\n[[explore.faults]]\nid = "dk"\nfault = "disk"\nnode = { one_of = ["pg1"] }\npath = "pg_wal/*"\n'
     'ops = ["fsync"]\nerrno = "EIO"\n',
     "explore.faults[0].node: pg1 is not under the disk fault layer"),
])
def test_problems_are_named_with_their_key_path(text: str, expected: str) -> None:
    found = issues(text)
    assert any(expected in f for f in found), found


def test_run_refuses_a_fault_space_and_check_accepts_it(tmp_path: Path) -> None:
    f = tmp_path / "space.toml"
    f.write_text(BASE + '[explore]\n[[explore.faults]]\nid = "k"\ndo = "kill"\nnode = "pg1"\n')
    env = dict(os.environ, PYTHONPATH=str(TOP / "tools"))
    run = subprocess.run([sys.executable, "-m", "walsim", "run", str(f)], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "declares a fault space" in run.stderr and "--print-schedule" in run.stderr
    check = subprocess.run([sys.executable, "-m", "walsim", "check", str(f)], capture_output=True, text=True,
                           env=env)
    assert check.returncode == 0 and "a fault space of 1 faults" in check.stdout


def test_explore_refuses_a_scenario_without_a_space(tmp_path: Path) -> None:
    f = tmp_path / "plain.toml"
    f.write_text(BASE)
    env = dict(os.environ, PYTHONPATH=str(TOP / "tools"))
    proc = subprocess.run([sys.executable, "-m", "walsim", "explore", str(f), "--print-schedule", "1"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "declares no fault space" in proc.stderr


@pytest.mark.parametrize("args,expected", [
    (["--shard", "3/2"], "--shard '3/2': expected K/N"),
    (["--seeds", "5..2"], "--seeds: empty seed range"),
    (["--budget", "soon"], "--budget: expected a duration"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--fails", "3", "--reruns", "2"], "expected 1 <= fails <= reruns"),
])
def test_bad_options_exit_2_naming_the_option(args: list[str], expected: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(TOP / "tools"))
    proc = subprocess.run([sys.executable, "-m", "walsim", "explore",
                           str(TOP / "scenarios/explore/planted-async-declared-sync.toml"), *args],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


def test_lsn_and_lsn_offset_ranges_are_drawn_and_written_back() -> None:
    from walsim.core.lsn import parse_lsn
    from walsim.explore.schedule import generate, render
    from walsim.scenario.schema import parse_size
    sc = ok('[explore]\ncount = 3\n'
            '[[explore.faults]]\nid = "rel"\nfault = "stall"\nlink = "l2"\nat_lsn = { from = "+16kB", to = "+1MB" }\n'
            '[[explore.faults]]\nid = "abs"\nfault = "corrupt"\nlink = "l2"\n'
            'at_lsn = { from = "0/3000000", to = "0/3100000" }\n')
    rel, ab = [], []
    for seed in range(1, 40):
        s = generate(sc, seed)
        parse_scenario(render(sc, s), f"seed {seed}")
        for e in s.events:
            (rel if e.entry == "rel" else ab).append(e.value("at_lsn"))
    assert rel and all(v.startswith("+") and 16384 <= parse_size(v[1:]) <= 1048576 for v in rel)
    assert ab and all(0x3000000 <= parse_lsn(v) <= 0x3100000 for v in ab)
    assert issues('[explore]\n[[explore.faults]]\nid = "x"\nfault = "stall"\nlink = "l2"\n'
                  'at_lsn = { from = "0/3000000", to = "+1MB" }\n')[0].endswith("do not mix)")


def test_a_menu_entry_may_carry_a_step_deadline() -> None:
    from walsim.explore.schedule import generate, render
    sc = ok('[explore]\ncount = 1\n[[explore.faults]]\nid = "c"\ndo = "checkpoint"\nnode = "pg1"\n'
            'timeout = { from = "5s", to = "9s" }\n')
    text = render(sc, generate(sc, 3))
    step = next(s for s in parse_scenario(text).steps if s.id == "c-1")
    assert 5.0 <= step.values.get("timeout", 0) <= 9.0 or 5.0 <= getattr(step, "timeout", 0) <= 9.0
    assert any(x.endswith("expected a duration such as \"5s\", \"250ms\" or \"2min\", got 'soon'")
               for x in issues('[explore]\n[[explore.faults]]\nid = "c"\ndo = "checkpoint"\nnode = "pg1"\n'
                               'timeout = "soon"\n'))
