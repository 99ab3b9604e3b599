"""The model of a validated scenario: what the loader returns and the engine runs.

Everything here is plain data, converted and checked by
:mod:`walsim.scenario.loader` against a :class:`~walsim.scenario.registry.Vocabulary`;
the scenario keeps the vocabulary it was validated with, so that the engine
and the judge find each step's and each verdict's implementation in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walsim.scenario.explore import ExploreSpec
from walsim.scenario.registry import StepKind, VerdictKind, Vocabulary
from walsim.scenario.schema import Names

DURABILITIES = ("async", "sync", "quorum")
ROLES = ("primary", "standby")
#: what a link carries (``[links.NAME] role``; docs/scenarios.md, "Roles and members")
LINK_ROLES = ("replication", "client", "api", "dcs", "monitor", "raft", "other")
#: how walsim-netd reads a link: the PostgreSQL protocol, or opaque bytes
LINK_PROTOS = ("pg", "raw")


@dataclass
class NodeSpec:
    name: str
    role: str
    upstream: str | None
    via: str | None
    slot: str | None
    settings: dict[str, Any]
    hba_method: str
    #: the keys fault layers add to ``[nodes.NAME]`` (``disk``, ``clock``), converted
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LinkSpec:
    """A path through walsim-netd: streaming ``via`` it reaches node ``to``; ``role``
    says what it carries, ``proto`` how netd reads it."""

    name: str
    to: str
    role: str = "replication"
    proto: str = "pg"


@dataclass
class ManagerSpec:
    """``[manager]``: the HA manager that drives the cluster, and its settings."""

    kind: str
    values: dict[str, Any]


@dataclass
class WorkloadSpec:
    name: str
    kind: str
    values: dict[str, Any]


@dataclass
class Step:
    index: int
    category: str
    kind: str
    id: str
    note: str | None
    values: dict[str, Any]

    @property
    def path(self) -> str:
        return f"steps[{self.index}]"

    def describe(self) -> str:
        parts = [self.category if self.category == self.kind else f"{self.category} {self.kind}"]
        for key in ("node", "link", "name", "workload", "upstream", "source", "target"):
            if self.values.get(key):
                parts.append(f"{key}={self.values[key]}")
        return " ".join(parts)


@dataclass
class VerdictSpec:
    index: int
    check: str
    name: str
    values: dict[str, Any]


@dataclass
class Scenario:
    path: Path
    text: str
    name: str
    description: str
    seed: int
    durability: str
    settings: dict[str, Any]
    nodes: dict[str, NodeSpec]
    links: dict[str, LinkSpec]
    workloads: dict[str, WorkloadSpec]
    steps: list[Step]
    verdicts: list[VerdictSpec]
    names: Names = field(default_factory=Names)
    #: the HA manager driving the cluster (None: walsim drives it)
    manager: ManagerSpec | None = None
    #: problems that do not stop the scenario from running (printed by check and run)
    warnings: list[Any] = field(default_factory=list)
    vocabulary: Vocabulary = field(default_factory=Vocabulary, repr=False, compare=False)
    #: the observer's tick in seconds (top-level ``observe_interval``)
    observe_interval: float = 0.1
    #: build the nodes from a cached snapshot image (see walsim.pg.snapshot)
    snapshot: bool = False
    #: the fault space of ``[explore]`` (None: a plain scenario)
    explore: ExploreSpec | None = None
    #: ``[cluster] version``: the PostgreSQL major of every node (None: WALSIM_PG or discovery)
    pg_version: int | None = None

    @property
    def primary(self) -> str:
        return next(n.name for n in self.nodes.values() if n.role == "primary")

    def settings_for(self, node: str) -> dict[str, Any]:
        merged = dict(self.settings)
        merged.update(self.nodes[node].settings)
        return merged

    def step_kind(self, step: Step) -> StepKind:
        kind = self.vocabulary.step(step.category, step.kind)
        if kind is None:  # the loader accepted it with this vocabulary: a programming error
            raise LookupError(f"{step.path}: {step.category} {step.kind!r} is not in this scenario's vocabulary")
        return kind

    def verdict_kind(self, spec: VerdictSpec) -> VerdictKind:
        kind = self.vocabulary.verdict(spec.check)
        if kind is None:
            raise LookupError(f"verdicts[{spec.index}]: {spec.check!r} is not in this scenario's vocabulary")
        return kind

    def layers_used(self) -> list[Any]:
        """The fault layers (classes) this scenario uses, in registration order, with the
        layers they require (``FaultLayer.requires``)."""
        wanted = {layer.name for layer in self.vocabulary.layers if layer.used_by(self)}
        todo = list(wanted)
        while todo:
            layer = self.vocabulary.layer(todo.pop())
            for req in getattr(layer, "requires", ()):
                if req not in wanted:
                    wanted.add(req)
                    todo.append(req)
        return [layer for layer in self.vocabulary.layers if layer.name in wanted]

    def needs(self) -> set[str]:
        """The facilities the scenario needs at run time (``cluster``, ``netd``, ``disk``, ``clock``)."""
        return {"cluster"} | {layer.facility for layer in self.layers_used()}
