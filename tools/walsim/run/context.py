"""The run context: what step kinds and fault layers act on during one run.

It holds the cluster, the fault layers the scenario uses (by name, as the
vocabulary lists them), the workloads, the observer and the event log, and
offers the operations steps share: node access, re-pointing and rewinding
standbys (through a layer's route when a standby streams ``via`` a link),
waits with deadlines, and fault bookkeeping (``fault_on``/``fault_off``
events, heal).  It names no fault layer: every layer-specific act goes
through :class:`~walsim.faults.base.FaultLayer`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psycopg

from walsim.core.errors import HarnessError, StepFailed, WaitTimeout
from walsim.core.events import Clock, EventLog
from walsim.core.lsn import format_lsn
from walsim.core.timeouts import wait_until
from walsim.run.workloads import LedgerWorkload, PgbenchWorkload, Target, Workload, node_target
from walsim.scenario.model import Scenario, Step
from walsim.scenario.schema import NODE_REF_RE, is_node_reference

if TYPE_CHECKING:  # pragma: no cover
    from walsim.faults.base import FaultLayer
    from walsim.pg.cluster import Cluster
    from walsim.pg.node import Node
    from walsim.run.observer import Observer


class RunContext:
    """What step kinds act on: nodes, workloads, fault layers, the event log."""

    def __init__(self, scenario: Scenario, seed: int, rundir: Path, clock: Clock,
                 events: EventLog) -> None:
        self.scenario = scenario
        self.seed = seed
        self.rundir = rundir
        self.clock = clock
        self.events = events
        self.cluster: "Cluster | Any" = None
        #: the fault layers this run uses, by name, in registration order
        self.layers: dict[str, "FaultLayer"] = {}
        self.workloads: dict[str, Workload] = {}
        self.observer: "Observer | None" = None
        self.primary = scenario.primary
        #: fault id -> the name of the layer that installed it, while it is on
        self.active_faults: dict[str, str] = {}
        self.current_step: Step | None = None
        #: shown on the progress line when no step runs: setup, settling
        self.phase = "setup"
        self.step_log_offsets: dict[str, int] = {}
        #: step id -> {role: node} when that step ran (for ``@STEP.primary``)
        self.step_roles: dict[str, dict[str, str | None]] = {}
        self._refs: set[str] | None = None
        #: what to do to unblock the running step when its deadline passes
        self._abort_hooks: list[Callable[[], Any]] = []
        #: run-clock time each step started, by id
        self.step_started: dict[str, float] = {}
        #: statements an ``sql`` step with ``blocks`` left running, by step id
        self.pending: dict[str, Any] = {}

    # ------------------------------------------------------------ access
    def node(self, name: str) -> "Node":
        return self.cluster.node(name)

    def workload(self, name: str) -> Workload:
        return self.workloads[name]

    def on_abort(self, hook: Callable[[], Any]) -> None:
        """Register how to unblock the running step (close its connection) should it
        outlive its deadline."""
        self._abort_hooks.append(hook)

    def begin_step(self, step: Step) -> None:
        self._abort_hooks = []
        self.step_started[step.id] = self.clock.now()

    def abort_step(self) -> None:
        hooks, self._abort_hooks = self._abort_hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - best effort: the run goes on regardless
                pass

    def abandon_pending(self) -> list[str]:
        """Interrupt the statements ``sql`` steps left blocked; returns their step ids."""
        left = [sid for sid, p in self.pending.items() if not p.done()]
        for sid in left:
            self.pending[sid].interrupt()
        return left

    def fail(self, step: Step, message: str) -> None:
        raise StepFailed(f"{step.path} ({step.describe()}): {message}")

    def try_lsn(self, node: Any, kind: str) -> int | None:
        try:
            v = node.lsn(kind)
            return int(v) if v is not None else None
        except Exception:  # noqa: BLE001 - informative only
            return None

    def set_primary(self, name: str) -> None:
        self.primary = name

    def endpoint(self, ref: str) -> Target:
        """A ledger endpoint: a node (its own address), a link (walsim-netd's listener,
        forwarding to the link's node) or ``"host:port"`` (an address walsim does not
        manage: a proxy, a manager's endpoint), with the cluster's credentials."""
        sc = self.scenario
        if ref in sc.nodes:
            return node_target(self.node(ref))
        if ref in sc.links:
            to = sc.links[ref].to
            addr = self.route(ref, to)
            assert addr is not None
            node = self.node(to)
            return Target(ref, lambda: node.conninfo(host=addr[0], port=addr[1]))
        host, _, port = ref.rpartition(":")
        host = host.strip("[]")
        some = self.node(self.primary)
        return Target(ref, lambda: some.conninfo(host=host, port=int(port)))

    def identify_server(self, addr: str | None, port: int | None, system_identifier: str | None) -> str | None:
        """The node listening at ``addr:port`` (what ``inet_server_addr()`` and
        ``inet_server_port()`` answered), or None when walsim does not know it."""
        if addr is None or port is None or self.cluster is None:
            return None
        for name, node in list(self.cluster.nodes.items()):
            # a node listens on its own address and on 127.0.0.1 (docs/clusters.md)
            if int(node.port) == int(port) and (str(node.host) in (addr, "localhost") or addr == "127.0.0.1"):
                return name
        return None

    def retarget_writers(self, name: str) -> None:
        target = self.client_target(name)
        for wl in self.workloads.values():
            if isinstance(wl, (LedgerWorkload, PgbenchWorkload)):
                wl.retarget(target)
                self.events.event("workload_retarget", name=wl.name, node=name)

    def client_target(self, name: str) -> Target:
        """What a client connects to for node ``name``: its address, or the one a layer routes
        clients through (a managed cluster's client link)."""
        node = self.node(name)
        for layer in self.layers.values():
            addr = layer.client_route(name)
            if addr is not None:
                return Target(name, node.conninfo(host=addr[0], port=addr[1]))
        return node_target(node)

    # ------------------------------------------------------- node references
    def resolve_node(self, ref: str) -> str:
        """A node name, or the node a reference names (``@primary``, ``@sync_standby``, and
        ``@STEP.primary``: what ``@primary`` was when step STEP ran)."""
        if not is_node_reference(ref):
            return ref
        m = NODE_REF_RE.fullmatch(ref)
        if m is None:
            raise HarnessError(f"malformed node reference {ref!r}")
        role = m.group("role")
        if m.group("step"):
            seen = self.step_roles.get(m.group("step"))
            if seen is None:
                raise HarnessError(f"{ref}: step {m.group('step')!r} has not run yet")
            name = seen.get(role)
        else:
            name = self.current_role(role)
        if name is None:
            raise StepFailed(f"{ref}: no node is {role.replace('_', ' ')}"
                             + (f" (when step {m.group('step')} ran)" if m.group("step") else " now"))
        return name

    def current_role(self, role: str) -> str | None:
        """Which node holds ``role`` now: a layer's answer (the manager's view), else walsim's
        own record (the primary) or the primary's pg_stat_replication (a sync standby)."""
        for layer in self.layers.values():
            name = layer.resolve(role)
            if name is not None:
                return name
        if role == "primary":
            return self.primary
        try:
            rows = self.node(self.primary).query(
                "SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') "
                "ORDER BY sync_priority, application_name")
        except psycopg.Error:
            return None
        return next((r[0] for r in rows if r[0] in self.scenario.nodes), None)

    def _referenced_steps(self) -> set[str]:
        if self._refs is None:
            found: set[str] = set()
            for st in self.scenario.steps:
                for v in st.values.values():
                    for x in (v if isinstance(v, list) else [v]):
                        m = NODE_REF_RE.fullmatch(x) if is_node_reference(x) else None
                        if m and m.group("step"):
                            found.add(m.group("step"))
            self._refs = found
        return self._refs

    def resolve_step(self, step: Step) -> Step:
        """The step with its node references resolved (an event records what they named);
        the roles of a step that a later ``@STEP.role`` names are recorded first."""
        if step.id in self._referenced_steps() and step.id not in self.step_roles:
            roles = {r: self.current_role(r) for r in ("primary", "sync_standby")}
            self.step_roles[step.id] = roles
            self.events.event("step_roles", id=step.id, roles=roles)
        resolved: dict[str, Any] = {}
        values = dict(step.values)
        for key, v in step.values.items():
            if isinstance(v, list) and any(is_node_reference(x) for x in v):
                values[key] = [self.resolve_node(x) for x in v]
                resolved[key] = values[key]
            elif is_node_reference(v):
                values[key] = self.resolve_node(v)
                resolved[key] = values[key]
        if not resolved:
            return step
        self.events.event("node_refs", id=step.id, resolved=resolved)
        return replace(step, values=values)

    def node_processes(self, name: str, what: str) -> list[tuple[int, int]]:
        """Pids (with start times) of a node's programs of one kind that layers started
        (``manager``; ``node``: every program of the node)."""
        out: list[tuple[int, int]] = []
        for layer in self.layers.values():
            for kind, pids in layer.processes(name).items():
                if what == "node" or kind == what:
                    out += pids
        return out

    # ------------------------------------------------------------ topology
    def route(self, via: str | None, upstream: str) -> tuple[str, int] | None:
        """The address a standby streams from when it goes ``via`` a link (None: directly)."""
        if via is None:
            return None
        for layer in self.layers.values():
            addr = layer.route(via, upstream)
            if addr is not None:
                return addr
        raise HarnessError(f"no fault layer of this run provides the link {via!r}")

    def repoint(self, node: str, upstream: str, via: str | None) -> None:
        n, up = self.node(node), self.node(upstream)
        addr = self.route(via, upstream)
        if addr is None:
            n.repoint(up)
        else:
            n.repoint(addr[0], addr[1])
            n.upstream = up

    def rewind(self, node: str, source: str, via: str | None, start: bool) -> None:
        n, src = self.node(node), self.node(source)
        if n.is_running():
            n.stop("fast")
        n.rewind(src)
        addr = self.route(via, source)
        if addr is not None:
            n.repoint(addr[0], addr[1])
            n.upstream = src
        if start:
            n.start()

    # ---------------------------------------------------------------- waits
    def _waiting(self, step: Step, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except WaitTimeout as exc:
            self.fail(step, str(exc))

    def wait_catchup(self, step: Step, node: str, upstream: str | None, mode: str, timeout: float) -> str:
        n = self.node(node)
        up = self.node(upstream) if upstream else (n.upstream or self.node(self.primary))
        lsn = self._waiting(step, lambda: up.wait_for_catchup(n, mode, timeout=timeout))
        return str(lsn)

    def wait_lsn(self, step: Step, node: str, kind: str, target: int, timeout: float) -> int:
        n = self.node(node)

        def probe() -> int:
            v = n.lsn(kind)
            return int(v) if v is not None else 0
        return self._waiting(step, lambda: wait_until(
            probe, what=f"{node}'s {kind} LSN to reach {format_lsn(target)}", timeout=timeout,
            done=lambda v: v >= target, logs=[n.log_file], tolerate=(psycopg.OperationalError,)))

    def wait_commits(self, step: Step, workload: str, count: int, timeout: float) -> int:
        wl = self.workloads[workload]
        if not isinstance(wl, LedgerWorkload):
            raise HarnessError(f"wait commits needs a ledger workload; {workload} is {wl.kind}")
        if not wl.running:
            self.fail(step, f"workload {workload} is not running: no commit will come")
        base = wl.acked_count()
        return self._waiting(step, lambda: wait_until(
            lambda: wl.acked_count() - base, what=f"{count} more acknowledged commits of {workload}",
            timeout=timeout, done=lambda v: v >= count)) or 0

    def wait_log(self, step: Step, node: str, regex: str, timeout: float, since_start: bool) -> str:
        n = self.node(node)
        since = 0 if since_start else self.step_log_offsets.get(node, 0)
        m = self._waiting(step, lambda: n.wait_for_log(regex, since=since, timeout=timeout))
        return m.group(0) if m else ""

    def wait_role(self, step: Step, node: str, role: str, timeout: float) -> None:
        n = self.node(node)

        def probe() -> str:
            try:
                return "standby" if n.in_recovery() else "primary"
            except psycopg.OperationalError:
                return "down"
        self._waiting(step, lambda: wait_until(probe, what=f"{node} to be {role}", timeout=timeout,
                                               done=lambda v: v == role, logs=[n.log_file]))

    # --------------------------------------------------------------- faults
    def run_step(self, step: Step) -> dict[str, Any]:
        """Carry a step out: by its fault layer when its kind names one, else by itself.
        A fault step's window opens (``fault_on``) when its layer has installed it."""
        kind = self.scenario.step_kind(step)
        if kind.run is None:
            raise HarnessError(f"{step.path}: {step.category} {step.kind} has no implementation")
        step = self.resolve_step(step)
        if kind.layer is None:
            return kind.run(self, step) or {}
        layer = self.layers.get(kind.layer)
        if layer is None:
            raise HarnessError(f"{step.path}: {step.category} {step.kind} needs the {kind.layer} "
                               "fault layer, which this run did not set up")
        detail = kind.run(layer, step) or {}
        if step.category == "fault":
            self.active_faults[step.id] = layer.name
            self.events.event("fault_on", id=step.id, kind=step.kind,
                              target=step.values.get(kind.target) if kind.target else None, detail=detail)
        return detail

    def heal(self, target: str) -> list[str]:
        """Remove one fault (its step id) or every active one (``"all"``); returns what was healed."""
        ids = list(self.active_faults) if target == "all" else [target]
        healed = []
        for fid in ids:
            layer_name = self.active_faults.pop(fid, None)
            if layer_name is None:
                continue  # already healed (or expired by its duration)
            self.layers[layer_name].heal(fid)
            step = next((st for st in self.scenario.steps if st.id == fid), None)
            self.events.event("fault_off", id=fid, kind=step.kind if step else None)
            healed.append(fid)
        return healed

    # -------------------------------------------------------------- status
    def status_line(self, elapsed: float) -> str:
        parts = [f"{elapsed:6.1f}s"]
        st = self.current_step
        parts.append(f"step {st.index + 1}/{len(self.scenario.steps)} {st.describe()}" if st else self.phase)
        if self.observer is not None:
            prim = self.observer.latest.get(self.primary) or {}
            plsn = prim.get("insert_lsn")
            for name in self.scenario.nodes:
                smp = self.observer.latest.get(name)
                if not smp or not smp.get("up"):
                    parts.append(f"{name}:down")
                elif smp.get("role") == "primary":
                    parts.append(f"{name}:P {format_lsn(smp['insert_lsn'])}")
                else:
                    rl = smp.get("replay_lsn")
                    lag = f" lag {max(0, plsn - rl) // 1024}kB" if plsn and rl else ""
                    parts.append(f"{name}:S {format_lsn(rl) if rl else '-'}{lag}")
        ledgers = [w for w in self.workloads.values() if isinstance(w, LedgerWorkload)]
        if ledgers:
            parts.append(f"acked {sum(w.acked_count() for w in ledgers)}")
        return " | ".join(parts)
