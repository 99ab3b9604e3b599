"""The vocabulary of scenario files: every step kind, verdict kind and fault layer.

A *step* is a TOML table with exactly one *category key* whose value names
its kind: ``do = "promote"``, ``fault = "delay"``, ``heal = "f1"``,
``wait = "catchup"``, ``load = "start"``.  A :class:`StepKind` declares the
kind's fields (:mod:`walsim.scenario.schema`), its checks, its documentation
and, attached by the layer that implements it, the function that carries it
out.  A :class:`VerdictKind` does the same for ``[[verdicts]]`` tables.

A :class:`Vocabulary` holds them all.  It is assembled above this layer (by
:func:`walsim.api.vocabulary`): fault layers (:mod:`walsim.faults`), the
built-in steps (:mod:`walsim.run.steps`) and the verdicts (:mod:`walsim.judge`)
hand it their kinds.  The loader validates against a vocabulary it is given
and never imports an implementation; the engine runs what the vocabulary
says.  A new fault layer is one module and one line of registration: the
loader and the engine do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence

from walsim.scenario import schema as s

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import NodeSpec, Scenario, Step

CATEGORIES = ("do", "fault", "heal", "wait", "load")

#: keys every step may carry besides its category key and its kind's fields
COMMON_FIELDS: dict[str, s.Field] = {
    "id": s.string(pattern=r"[A-Za-z][A-Za-z0-9_.-]*",
                   help="a name for the step, referenced by verdicts (and, for faults, by heal)"),
    "note": s.string(help="free text shown in the report's timeline"),
    "timeout": s.duration(help="deadline of the step (default 60 s, scaled by WALSIM_TIMEOUT_MULT): a step "
                          "still running then fails the run, which goes on to its end phase"),
}

#: keys every verdict table carries besides its kind's fields
VERDICT_COMMON: dict[str, s.Field] = {
    "check": s.string(required=True, help="the verdict kind"),
    "id": s.string(pattern=r"[A-Za-z][A-Za-z0-9_.-]*", help="name shown in the report"),
    "at": s.step_ref(help="judge with what was recorded up to the end of this step, faults still on "
                     "(default: at the end of the run, after the settle phase)"),
    "holds": s.boolean(default=True, help="false: the property must not hold (a FAIL of the check is "
                       "the PASS of the verdict, and the other way round)"),
}

#: the default deadline of a wait, in seconds (scaled by WALSIM_TIMEOUT_MULT)
DEFAULT_WAIT_TIMEOUT = 60.0
#: the default deadline of any step, in seconds (scaled by WALSIM_TIMEOUT_MULT)
DEFAULT_STEP_TIMEOUT = 60.0

#: a check of one table's converted values: ``[(key, message), ...]``
Check = Callable[[Mapping[str, Any]], "list[tuple[str, str]]"]
#: a check of a step's values against the declared nodes: ``[(key, message), ...]``
NodeCheck = Callable[[Mapping[str, Any], "Mapping[str, NodeSpec]"], "list[tuple[str, str]]"]
#: carries a step out: ``run(actor, step) -> details``; the actor is the fault
#: layer named by the kind's ``layer``, or the run context for built-in kinds
Runner = Callable[[Any, "Step"], "dict[str, Any] | None"]
#: judges a verdict from a run record: ``(record, values, durability) -> (result, summary, evidence)``
Evaluate = Callable[[Any, Mapping[str, Any], str], "tuple[str, str, dict[str, Any]]"]
#: what a verdict needs from the settle phase: ``(values, scenario) -> (nodes to wait for, deadline s)``
SettleNeeds = Callable[[Mapping[str, Any], "Scenario"], "tuple[list[str], float]"]
#: a check of a verdict's values against the nodes and the steps: ``[(key, message), ...]``
VerdictCheck = Callable[[Mapping[str, Any], "Mapping[str, NodeSpec]", "Sequence[Step]"],
                        "list[tuple[str, str]]"]


@dataclass
class StepKind:
    """One kind of step: what a scenario may write, and who carries it out."""

    category: str
    name: str
    fields: dict[str, s.Field]
    doc: str
    check: Check | None = None
    check_nodes: NodeCheck | None = None
    #: the fault layer that carries it out (:attr:`FaultLayerInfo.name`); None: the run context
    layer: str | None = None
    run: Runner | None = None
    #: for faults: the field naming what the fault acts on (shown in the events and the report)
    target: str | None = None
    #: the step runs pg_ctl, promotes, re-points or rewinds: refused when a manager drives
    #: the cluster (walsim then never does these itself)
    drives_postgres: bool = False
    #: the step acts on an HA manager: refused unless ``[manager]`` is present
    needs_manager: bool = False


@dataclass
class VerdictKind:
    """One kind of verdict: its fields and docs; ``evaluate`` is attached by :mod:`walsim.judge`."""

    name: str
    fields: dict[str, s.Field]
    doc: str
    evaluate: Evaluate | None = None
    settle: SettleNeeds | None = None
    check: VerdictCheck | None = None


class FaultLayerInfo(Protocol):
    """What the vocabulary knows of a fault layer class (:class:`walsim.faults.base.FaultLayer`)."""

    name: str
    facility: str
    kinds: Sequence[StepKind]
    node_fields: Mapping[str, s.Field]

    @classmethod
    def used_by(cls, scenario: "Scenario") -> bool: ...

    @classmethod
    def unavailable(cls) -> str | None: ...


class ManagerKindInfo(Protocol):
    """What the vocabulary knows of an HA manager adapter (:class:`walsim.managers.base.Manager`)."""

    kind: str
    doc: str

    @classmethod
    def all_fields(cls) -> Mapping[str, s.Field]: ...

    @classmethod
    def check_scenario(cls, values: Mapping[str, Any], durability: str,
                       settings: Mapping[str, Any]) -> "list[tuple[str, str]]": ...


def step_kind(category: str, name: str, fields: Mapping[str, s.Field], doc: str, *,
              check: Check | None = None, check_nodes: NodeCheck | None = None,
              layer: str | None = None, run: Runner | None = None,
              target: str | None = None, drives_postgres: bool = False) -> StepKind:
    """A :class:`StepKind`, its category checked."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown step category {category!r}")
    return StepKind(category, name, dict(fields), doc, check, check_nodes, layer, run, target,
                    drives_postgres)


@dataclass
class Vocabulary:
    """Every step kind, verdict kind and fault layer a scenario may use."""

    steps: dict[tuple[str, str], StepKind] = field(default_factory=dict)
    verdicts: dict[str, VerdictKind] = field(default_factory=dict)
    layers: list[Any] = field(default_factory=list)
    #: keys of ``[nodes.NAME]`` tables contributed by fault layers (``disk``, ``clock``)
    node_fields: dict[str, s.Field] = field(default_factory=dict)
    #: ``[manager] kind`` -> the adapter (:class:`ManagerKindInfo`)
    managers: dict[str, Any] = field(default_factory=dict)

    def add_manager(self, manager: ManagerKindInfo) -> None:
        """An HA manager adapter: the ``[manager] kind`` it answers to, and its keys."""
        if manager.kind in self.managers:
            raise ValueError(f"manager kind {manager.kind!r} is registered twice")
        self.managers[manager.kind] = manager

    def add_steps(self, kinds: Iterable[StepKind]) -> None:
        for k in kinds:
            key = (k.category, k.name)
            if key in self.steps:
                raise ValueError(f"step kind {k.category} {k.name!r} is declared twice")
            self.steps[key] = k

    def add_verdicts(self, kinds: Iterable[VerdictKind]) -> None:
        for k in kinds:
            if k.name in self.verdicts:
                raise ValueError(f"verdict kind {k.name!r} is declared twice")
            self.verdicts[k.name] = k

    def add_layer(self, layer: FaultLayerInfo) -> None:
        """A fault layer: its step kinds and its node keys."""
        if any(x.name == layer.name for x in self.layers):
            raise ValueError(f"fault layer {layer.name!r} is registered twice")
        for k in layer.kinds:
            if k.layer != layer.name:
                raise ValueError(f"step kind {k.name!r} of layer {layer.name!r} names layer {k.layer!r}")
        self.add_steps(layer.kinds)
        for key, f in layer.node_fields.items():
            if key in self.node_fields:
                raise ValueError(f"node key {key!r} is declared by two layers")
            self.node_fields[key] = f
        self.layers.append(layer)

    def step(self, category: str, name: str) -> StepKind | None:
        return self.steps.get((category, name))

    def step_kinds(self, category: str | None = None) -> list[StepKind]:
        return [k for (c, _), k in sorted(self.steps.items()) if category in (None, c)]

    def verdict(self, name: str) -> VerdictKind | None:
        return self.verdicts.get(name)

    def layer(self, name: str) -> Any:
        return next((x for x in self.layers if x.name == name), None)
