"""The engine's bookkeeping without PostgreSQL: a fake fault layer and a fake
cluster plugged into a vocabulary of their own.  What is tested here is
walsim's logic (which layer a step reaches, fault windows in the event log,
heal, routes, teardown order, the vocabulary's rules), not any server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from walsim.core.errors import HarnessError, ScenarioError
from walsim.core.events import Clock, EventLog, JsonlWriter
from walsim.faults.base import FaultLayer, apply_step, node_ref_check
from walsim.run import engine, steps
from walsim.run.context import RunContext
from walsim.run.settle import settle_needs
from walsim.scenario import schema as s
from walsim.scenario.loader import parse_scenario
from walsim.scenario.registry import VerdictKind, Vocabulary, step_kind


class FakeLayer(FaultLayer):
    """Records every hook call in ``CALLS`` (class-wide: the engine builds instances)."""

    name = "fake"
    facility = "fake"
    CALLS: list[tuple[str, Any]] = []
    kinds = [
        step_kind("fault", "wobble", {"node": s.node_ref(required=True), "amount": s.integer(default=1)},
                  "a fake fault", layer="fake", run=apply_step, target="node",
                  check_nodes=node_ref_check("fake", lambda n, v: None if v else f"{n} has no fake = true")),
        step_kind("do", "poke", {"node": s.node_ref(required=True)}, "a fake action", layer="fake", run=apply_step),
    ]
    node_fields = {"fake": s.boolean(default=False, help="under the fake layer")}
    fail_teardown = False

    def setup(self) -> None:
        self.CALLS.append(("setup", None))

    def route(self, link: str, upstream: str) -> tuple[str, int] | None:
        self.CALLS.append(("route", (link, upstream)))
        return ("127.0.0.9", 9999) if link == "l1" else None

    def apply(self, step: Any) -> dict[str, Any]:
        self.CALLS.append(("apply", step.id))
        return {"amount": step.values.get("amount")}

    def heal(self, fault_id: str) -> None:
        self.CALLS.append(("heal", fault_id))

    def teardown(self) -> None:
        self.CALLS.append(("teardown", None))
        if self.fail_teardown:
            raise RuntimeError("teardown broke")

    def collect(self, faults_dir: Path) -> None:
        self.CALLS.append(("collect", faults_dir.name))


def vocab(*layers: Any) -> Vocabulary:
    v = Vocabulary()
    v.add_steps(steps.KINDS)
    for layer in layers:
        v.add_layer(layer)
    v.add_verdicts([VerdictKind("settles", {"node": s.node_ref(required=True),
                                            "within": s.duration(default=5.0)}, "fake",
                                settle=lambda vals, sc: ([vals["node"]], float(vals["within"])))])
    return v


SCENARIO = """
name = "fake"
description = "fake"
durability = "async"
[nodes.pg1]
role = "primary"
fake = true
[nodes.pg2]
role = "standby"
upstream = "pg1"
[[steps]]
id = "w1"
fault = "wobble"
node = "pg1"
amount = 3
[[steps]]
id = "p"
do = "poke"
node = "pg1"
[[steps]]
id = "w2"
fault = "wobble"
node = "pg1"
[[verdicts]]
check = "settles"
node = "pg2"
within = "40s"
"""


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    FakeLayer.CALLS = []
    FakeLayer.fail_teardown = False
    sc = parse_scenario(SCENARIO, vocab(FakeLayer))
    clock = Clock()
    c = RunContext(sc, 1, tmp_path, clock, EventLog(tmp_path / "events.jsonl", clock))
    c.layers = {"fake": FakeLayer(c)}
    return c


def events(ctx: RunContext) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ctx.rundir / "events.jsonl").read_text().splitlines()]


def test_a_fault_step_reaches_its_layer_and_opens_a_window(ctx: RunContext) -> None:
    detail = ctx.run_step(ctx.scenario.steps[0])
    assert detail == {"amount": 3}
    assert FakeLayer.CALLS == [("apply", "w1")]
    assert ctx.active_faults == {"w1": "fake"}
    on = [e for e in events(ctx) if e["type"] == "fault_on"]
    assert [(e["id"], e["kind"], e["target"], e["detail"]) for e in on] == [("w1", "wobble", "pg1", {"amount": 3})]


def test_an_action_of_a_layer_opens_no_window(ctx: RunContext) -> None:
    ctx.run_step(ctx.scenario.steps[1])
    assert FakeLayer.CALLS == [("apply", "p")] and ctx.active_faults == {}
    assert not [e for e in events(ctx) if e["type"] == "fault_on"]


def test_heal_one_then_all_then_again(ctx: RunContext) -> None:
    for st in ctx.scenario.steps:
        ctx.run_step(st)
    assert ctx.heal("w1") == ["w1"]
    assert ctx.heal("all") == ["w2"]
    assert ctx.heal("all") == [] and ctx.heal("w1") == []
    assert [c for c in FakeLayer.CALLS if c[0] == "heal"] == [("heal", "w1"), ("heal", "w2")]
    off = [(e["id"], e["kind"]) for e in events(ctx) if e["type"] == "fault_off"]
    assert off == [("w1", "wobble"), ("w2", "wobble")]


def test_a_step_whose_layer_is_not_set_up_is_a_harness_error(ctx: RunContext) -> None:
    ctx.layers = {}
    with pytest.raises(HarnessError, match="needs the fake fault layer"):
        ctx.run_step(ctx.scenario.steps[0])


def test_route_asks_every_layer_and_fails_clearly(ctx: RunContext) -> None:
    assert ctx.route(None, "pg1") is None
    assert ctx.route("l1", "pg1") == ("127.0.0.9", 9999)
    with pytest.raises(HarnessError, match="no fault layer of this run provides the link 'l9'"):
        ctx.route("l9", "pg1")


def test_settle_needs_come_from_verdict_kinds(ctx: RunContext) -> None:
    assert settle_needs(ctx) == (["pg2"], 40.0)


def test_only_used_layers_are_set_up(ctx: RunContext) -> None:
    class Unused(FakeLayer):
        name = "unused"
        kinds = []
        node_fields = {}
    sc = parse_scenario(SCENARIO, vocab(FakeLayer, Unused))
    assert [layer.name for layer in sc.layers_used()] == ["fake"]
    assert sc.needs() == {"cluster", "fake"}
    ctx.scenario, ctx.layers = sc, {}
    engine._setup_layers(ctx)
    assert list(ctx.layers) == ["fake"] and FakeLayer.CALLS == [("setup", None)]


def test_teardown_reaches_every_layer_even_when_one_fails(ctx: RunContext, tmp_path: Path) -> None:
    class Second(FakeLayer):
        name = "second"
        kinds = []
        node_fields = {}
    ctx.layers["fake"].fail_teardown = True  # type: ignore[attr-defined]
    ctx.layers["second"] = Second(ctx)
    clock = Clock()
    engine._teardown(ctx, False, JsonlWriter(tmp_path / "s.jsonl", clock), JsonlWriter(tmp_path / "l.jsonl", clock))
    assert FakeLayer.CALLS == [("teardown", None), ("collect", "faults"), ("teardown", None), ("collect", "faults")]
    errors = [e for e in events(ctx) if e["type"] == "layer_error"]
    assert [(e["layer"], e["phase"]) for e in errors] == [("fake", "teardown")]
    assert "teardown broke" in errors[0]["error"]


def test_a_layer_checks_the_nodes_a_step_names() -> None:
    text = SCENARIO.replace("fake = true\n", "")
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text, vocab(FakeLayer))
    assert [(i.path, i.message) for i in exc.value.issues] == [
        ("steps[0].node", "pg1 has no fake = true"), ("steps[2].node", "pg1 has no fake = true")]


def test_a_layers_kinds_are_unknown_without_the_layer() -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(SCENARIO, vocab())
    paths = {i.path for i in exc.value.issues}
    assert {"nodes.pg1.fake", "steps[0].fault", "steps[1].do", "steps[2].fault"} <= paths


def test_vocabulary_refuses_duplicates_and_misnamed_kinds() -> None:
    v = vocab(FakeLayer)
    with pytest.raises(ValueError, match="registered twice"):
        v.add_layer(FakeLayer)

    class Liar(FaultLayer):
        name = "liar"
        kinds = [step_kind("fault", "fib", {}, "x", layer="other", run=apply_step)]
    with pytest.raises(ValueError, match="names layer 'other'"):
        Vocabulary().add_layer(Liar)
    with pytest.raises(ValueError, match="declared twice"):
        v.add_steps(steps.KINDS[:1])


def test_a_step_past_its_deadline_is_aborted_and_fails(ctx: RunContext, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step has a deadline (``timeout``, default 60 s x WALSIM_TIMEOUT_MULT): a step
    still running then has its abort hooks called and fails the run's steps."""
    import threading

    monkeypatch.setenv("WALSIM_TIMEOUT_MULT", "1")
    released = threading.Event()

    class Hanging(FakeLayer):
        def apply(self, step: Any) -> dict[str, Any]:
            self.ctx.on_abort(released.set)  # what an sql step does with its connection
            released.wait(30)
            return {}

    sc = parse_scenario(SCENARIO.replace('id = "p"\ndo = "poke"\nnode = "pg1"',
                                         'id = "p"\ndo = "poke"\nnode = "pg1"\ntimeout = "0.2s"'), vocab(FakeLayer))
    ctx.scenario = sc
    ctx.layers = {"fake": Hanging(ctx)}
    with pytest.raises(engine.StepFailed) as info:
        engine.run_with_deadline(ctx, sc.steps[1])
    assert released.is_set()
    assert str(info.value).startswith("steps[1] (do poke node=pg1): did not finish within 0.2")
    ev = [e for e in events(ctx) if e["type"] == "step_deadline"]
    assert ev and ev[0]["id"] == "p" and ev[0]["unblocked"] is True


def test_step_deadlines(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALSIM_TIMEOUT_MULT", "2")
    sc = parse_scenario(SCENARIO + '[[steps]]\nwait = "sleep"\nseconds = "200s"\n'
                        '[[steps]]\nwait = "catchup"\nnode = "pg2"\ntimeout = "10s"\n', vocab(FakeLayer))
    ctx.scenario = sc
    assert engine.step_deadline(ctx, sc.steps[1]) == 120.0                       # the default, scaled
    assert engine.step_deadline(ctx, sc.steps[3]) == 200.0 + engine.WAIT_GRACE * 2  # a sleep: its length
    assert engine.step_deadline(ctx, sc.steps[4]) == 20.0 + engine.WAIT_GRACE * 2   # a wait: its own timeout
