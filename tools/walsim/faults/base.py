"""The interface of a fault layer, the unit by which walsim learns a new way to break things.

A layer is a class: its step kinds (``fault = "..."`` and ``do = "..."``
kinds it carries out), the keys it adds to ``[nodes.NAME]``, and the hooks
the engine calls at fixed points of every run:

=================  ===========================================================
``setup()``        before the first node is built (start a daemon)
``prepare_node()`` after a node is built; True when the node must restart for
                   it (an LD_PRELOAD library takes effect at start)
``route()``        the address a standby streams ``via`` (links of walsim-netd)
``observe()``      sources the observer samples beside the nodes
``apply(step)``    a step of one of the layer's kinds; returns its details
``heal(fid)``      remove one fault this layer installed
``teardown()``     stop what ``setup`` started (always called, even on errors)
``collect(dir)``   copy the layer's traces into the run directory's ``faults/``
=================  ===========================================================

Hooks for a layer that drives the cluster itself (an HA manager,
:mod:`walsim.faults.manager`), all optional:

====================  ========================================================
``build(say)``        build and start every node instead of the engine
                      (``builds_cluster = True``: one layer at most)
``client_route(n)``   the address clients (workloads) connect to for node n
``resolve(role)``     which node holds a role now (``primary``,
                      ``sync_standby``) by the layer's knowledge
``processes(n)``      pids of the node's programs the layer started, by what
                      they are (``manager``, ``postgres``)
====================  ========================================================

``requires`` names layers this one needs (a manager routes its paths through
walsim-netd, so it requires the network layer even in a scenario without
``[links]``).  The engine tears layers down in the reverse order of their
set-up, so that a layer is stopped before the layers it required (the
manager's programs and PostgreSQL before walsim-netd).

The engine knows layers only through this interface and the vocabulary
(:mod:`walsim.scenario.registry`): adding a layer is one module here plus its
line in :func:`walsim.api.vocabulary`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

from walsim.scenario import schema as s
from walsim.scenario.registry import StepKind

if TYPE_CHECKING:  # pragma: no cover
    from walsim.run.context import RunContext
    from walsim.scenario.model import NodeSpec, Scenario, Step


class FaultLayer:
    """Base class of fault layers; every hook does nothing by default."""

    #: the layer's name, as step kinds name it (``StepKind.layer``)
    name: ClassVar[str] = ""
    #: what must exist at run time (``check`` prints it): ``cluster`` when nothing more
    facility: ClassVar[str] = "cluster"
    #: the step kinds this layer carries out
    kinds: ClassVar[Sequence[StepKind]] = ()
    #: keys this layer adds to ``[nodes.NAME]`` tables
    node_fields: ClassVar[Mapping[str, s.Field]] = {}
    #: names of layers this one needs (set up before it, torn down after it)
    requires: ClassVar[Sequence[str]] = ()
    #: this layer builds and starts the nodes itself (:meth:`build`)
    builds_cluster: ClassVar[bool] = False

    def __init__(self, ctx: "RunContext") -> None:
        self.ctx = ctx

    # ------------------------------------------------------------ declaration
    @classmethod
    def used_by(cls, scenario: "Scenario") -> bool:
        """Whether a scenario needs this layer: a step of its kinds or a node key of its own."""
        if any(st.kind in {k.name for k in cls.kinds if k.category == st.category}
               for st in scenario.steps):
            return True
        return any(spec.options.get(key) for spec in scenario.nodes.values() for key in cls.node_fields)

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this layer cannot run on this machine (a missing program or library), or None."""
        return None

    # ------------------------------------------------------------------ hooks
    def setup(self) -> None:
        """Before the first node is built."""

    def prepare_node(self, spec: "NodeSpec") -> bool:
        """After a node is built; True when it must be restarted for the layer to take effect."""
        return False

    def route(self, link: str, upstream: str) -> tuple[str, int] | None:
        """The address through which a standby streams ``via = link`` to ``upstream``, or None."""
        return None

    def observe(self) -> dict[str, tuple[Callable[[], Any], float]]:
        """Extra sources for the observer: ``{name: (function, interval in seconds)}``."""
        return {}

    def apply(self, step: "Step") -> dict[str, Any]:
        raise NotImplementedError(f"layer {self.name} does not implement {step.category} {step.kind}")

    def heal(self, fault_id: str) -> None:
        """Remove one fault this layer installed (it may already have expired)."""

    def teardown(self) -> None:
        """Stop what :meth:`setup` started; called once, even after errors."""

    def collect(self, faults_dir: Path) -> None:
        """Copy this layer's traces into the run directory (``faults/``)."""

    # ------------------------------------------------- cluster-driving layers
    def build(self, say: Callable[[str], None]) -> None:
        """Build and start every node of the scenario (when :attr:`builds_cluster`)."""
        raise NotImplementedError(f"layer {self.name} does not build clusters")

    def client_route(self, node: str) -> tuple[str, int] | None:
        """The address clients connect to for ``node`` (None: the node's own address)."""
        return None

    def resolve(self, role: str) -> str | None:
        """The node that holds ``role`` (``primary``, ``sync_standby``) now, or None."""
        return None

    def processes(self, node: str) -> dict[str, list[tuple[int, int]]]:
        """``{what: [(pid, start time)...]}`` of the node's programs this layer started."""
        return {}


def apply_step(layer: FaultLayer, step: "Step") -> dict[str, Any]:
    """The ``run`` of every kind a layer owns: the layer applies it."""
    return layer.apply(step)


def node_ref_check(key: str, message: Callable[[str, Any], str | None]) -> \
        Callable[[Mapping[str, Any], Mapping[str, "NodeSpec"]], list[tuple[str, str]]]:
    """A ``check_nodes`` hook: ``message(node, option value)`` says what is wrong with the
    node a step names in ``node`` (None: nothing), judged from the node's ``key`` option."""
    def check(values: Mapping[str, Any], nodes: Mapping[str, "NodeSpec"]) -> list[tuple[str, str]]:
        name = values.get("node")
        if name not in nodes:
            return []
        problem = message(name, nodes[name].options.get(key))
        return [("node", problem)] if problem else []
    return check
