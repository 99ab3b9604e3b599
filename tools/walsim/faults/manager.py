"""The manager layer: an HA manager (Patroni, repmgr, pg_auto_failover, a user's commands)
builds and drives the cluster; walsim breaks it and watches.

A scenario with ``[manager] kind = "..."`` uses this layer.  It builds the
cluster through the kind's adapter (:mod:`walsim.managers`) instead of the
engine (``builds_cluster``): configuration, DCS/monitor, the manager on every
node, then a wait until the manager names a leader and every member
replicates.  Every path the adapter asks for (replication, DCS, REST API,
monitor, clients) is a walsim-netd link of the network layer (which this
layer ``requires``), named ``NODE-pg``, ``NODE-api``, ``NODE-dcs``,
``NODE-monitor``, ``NODE-client``.

Its step kinds: ``do = "switchover"``, ``do = "manager_pause"`` /
``"manager_resume"`` (the manager's maintenance mode), and the waits ``new_primary``, ``members_healthy``, ``manager_agrees``.  Killing or
freezing a node's manager or whole node is the process layer's ``kill`` and
``pause`` with ``what = "manager" | "node"``; this layer tells it the pids
(:meth:`ManagerLayer.processes`); cutting a node off its DCS, peers, monitor or
clients is the network layer's ``fault = "isolate"`` on the links this layer
declares to it.

The manager's view (its member list) is sampled every 0.5 s into
``samples.jsonl`` (``source = "manager"``); when it names a new leader the
layer records a ``manager_primary`` event and makes that node the run's
primary.  The ledger clients are not told: they search every node's client
path for the writable one themselves.  Teardown stops the managers, then PostgreSQL if
a manager left it running, then the DCS or monitor; walsim-netd is torn down
after this layer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psycopg

from walsim.core.errors import HarnessError, ManagerError, ManagerUnsupported, StepFailed, WaitTimeout
from walsim.core.timeouts import multiplier, wait_until
from walsim.faults.base import FaultLayer, apply_step
from walsim.managers.base import Manager, ManagerEnv, NodeDecl
from walsim.managers.procs import Supervisor
from walsim.scenario import schema as s
from walsim.scenario.registry import DEFAULT_WAIT_TIMEOUT, step_kind

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import Scenario, Step

LAYER = "manager"
def _timeout() -> s.Field:
    return s.duration(default=DEFAULT_WAIT_TIMEOUT, help="deadline of the wait (scaled by WALSIM_TIMEOUT_MULT)")


def _kind(*args: Any, **kw: Any) -> Any:
    k = step_kind(*args, **kw)
    k.needs_manager = True
    return k


KINDS = [
    _kind("do", "switchover", {
        "to": s.node_ref(help="the candidate (default: the manager chooses)"),
        "wait": s.boolean(default=True, help="wait until the manager names a new leader"),
        "timeout": _timeout(),
    }, "the manager's planned switchover (patronictl switchover, repmgr standby switchover, "
       "pg_autoctl perform switchover)", layer=LAYER, run=apply_step),
    _kind("do", "manager_pause", {}, "the manager's maintenance mode: no automatic failover "
              "until manager_resume", layer=LAYER, run=apply_step),
    _kind("do", "manager_resume", {}, "leave the manager's maintenance mode", layer=LAYER,
              run=apply_step),
    _kind("wait", "new_primary", {
        "exclude": s.node_ref(help="a node that does not count (the old primary, e.g. @crash.primary)"),
        "timeout": _timeout(),
    }, "until the manager names a leader (other than exclude) that is out of recovery",
        layer=LAYER, run=apply_step),
    _kind("wait", "members_healthy", {"timeout": _timeout()},
              "until the manager names one leader and every member healthy (replicating)",
              layer=LAYER, run=apply_step),
    _kind("wait", "manager_agrees", {"timeout": _timeout()},
              "until the manager's view of every node's role matches the node (pg_is_in_recovery)",
              layer=LAYER, run=apply_step),
]


#: the role of each of the manager layer's paths in the network layer's words
PATH_ROLES = {"pg": "replication", "client": "client", "api": "api", "dcs": "dcs", "monitor": "monitor"}


class NetPaths:
    """:class:`walsim.managers.base.Paths` on the network layer.

    Every path is one of the network layer's links with a role (``add_path``)
    and every member beside the nodes is declared to it (``declare_member``),
    so that its ``fault = "isolate"`` cuts a managed node off its DCS, monitor,
    peers or clients by the node that opened each connection."""

    def __init__(self, layer: "ManagerLayer") -> None:
        self.layer = layer
        #: link name -> {"path", "owner", "target", "proto", "to", "listen"}
        self.links: dict[str, dict[str, Any]] = {}

    def _net(self) -> Any:
        return self.layer.ctx.layers["netd"]  # the layer requires it

    def _cluster(self) -> Any:
        cluster = self.layer.ctx.cluster
        return cluster if getattr(cluster, "node_addresses", False) else None

    def host(self, node: str) -> str:
        cluster = self._cluster()
        return cluster.address(node) if cluster is not None else "127.0.0.1"

    def hosts(self) -> list[str]:
        cluster = self._cluster()
        return list(cluster.addresses().values()) if cluster is not None else ["127.0.0.1"]

    def member(self, name: str, kind: str) -> str:
        """A member beside the nodes (the DCS, the monitor, a witness): its address."""
        self._net().declare_member(name, kind)
        return self.host(name)

    def source_env(self, member: str) -> dict[str, str]:
        """The environment that makes a program's connections come from a member's address."""
        cluster = self._cluster()
        return dict(cluster.source_environment(member)) if cluster is not None else {}

    def link(self, name: str, to: tuple[str, int], *, proto: str, path: str,
             owner: str | None, target: str | None, same_port: bool = False) -> tuple[str, int]:
        meta: dict[str, Any] = {"path": path, "owner": owner, "target": target, "proto": proto,
                                "to": f"{to[0]}:{to[1]}"}
        listen = None
        if same_port:
            # Another loopback address, the same port number (the port is walsim's
            # reservation, so the pair is ours); 127.0.9.0/24 is walsim's for these.
            listen = (f"127.0.9.{1 + sum(1 for m in self.links.values() if m.get('same_port'))}", int(to[1]))
            meta["same_port"] = True
        addr = self._net().add_path(name, to, target=target or owner or "", role=PATH_ROLES[path], proto=proto,
                                    listen=listen)
        meta["listen"] = f"{addr[0]}:{addr[1]}"
        self.links[name] = meta
        return addr


class ManagerLayer(FaultLayer):
    """An HA manager drives the cluster."""

    name = LAYER
    facility = "manager"
    kinds = KINDS
    requires = ("netd",)
    builds_cluster = True

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.adapter: Manager | None = None
        self.paths = NetPaths(self)
        self._last_primary: str | None = None
        self._view_lock = threading.Lock()
        self.last_view: list[dict[str, Any]] = []

    @classmethod
    def used_by(cls, scenario: "Scenario") -> bool:
        return scenario.manager is not None

    # ------------------------------------------------------------------ build
    def build(self, say: Callable[[str], None]) -> None:
        sc = self.ctx.scenario
        spec = sc.manager
        assert spec is not None
        adapter_cls = sc.vocabulary.managers[spec.kind]
        cluster = self.ctx.cluster
        missing = adapter_cls.missing(spec.values, cluster.pg.bindir)
        if missing:
            raise HarnessError(missing)
        mdir = cluster.runas.makedirs(cluster.base_dir / "manager", 0o755)
        xdg = {k: str(cluster.runas.makedirs(mdir / sub, 0o700)) for k, sub in
               (("XDG_CONFIG_HOME", "xdg-config"), ("XDG_DATA_HOME", "xdg-data"),
                ("XDG_RUNTIME_DIR", "xdg-runtime"))}
        xdg["TMPDIR"] = str(cluster.runas.makedirs(mdir / "tmp", 0o700))
        # pids.json in the run directory: it outlives the cluster's directory, so a
        # test (or a person) can check afterwards that nothing is left running.
        sup = Supervisor(cluster.runas, self.ctx.rundir / "pids.json", xdg,
                         on_event=lambda kind, **kw: self.ctx.events.event(kind, **kw))
        decls = [NodeDecl(n.name, n.role, sc.settings_for(n.name)) for n in sc.nodes.values()]
        env = ManagerEnv(cluster, decls, dict(spec.values), self.paths, sup, mdir,
                         event=lambda kind, **kw: self.ctx.events.event(kind, **kw),
                         timeout_mult=multiplier())
        self.adapter = adapter_cls(env)
        say(f"{spec.kind}: provisioning (configuration, DCS/monitor)")
        try:
            self.adapter.provision()
            say(f"{spec.kind}: starting the manager on {', '.join(d.name for d in decls)}")
            self.adapter.start()
            members = self.adapter.wait_ready(spec.values["ready_timeout"])
        except ManagerError as exc:
            raise HarnessError(f"{spec.kind}: {exc}") from None
        primary = next(m.name for m in members if m.role == "primary")
        self.ctx.set_primary(primary)
        self._last_primary = primary
        self.ctx.events.event("links", links=self.paths.links)
        self.ctx.events.event("manager_ready", kind=spec.kind, members=[m.to_json() for m in members])
        self.ctx.events.event("cluster_ready", nodes=list(sc.nodes),
                              ports={n: self.ctx.node(n).port for n in sc.nodes}, primary=primary)

    # ----------------------------------------------------------------- routes
    def client_route(self, node: str) -> tuple[str, int] | None:
        return getattr(self.adapter, "client", {}).get(node) if self.adapter else None

    def resolve(self, role: str) -> str | None:
        if self.adapter is None:
            return None
        try:
            return self.adapter.primary() if role == "primary" else self.adapter.sync_standby()
        except (ManagerError, OSError, psycopg.Error):
            return None

    def processes(self, node: str) -> dict[str, list[tuple[int, int]]]:
        return self.adapter.processes(node) if self.adapter is not None else {}

    # ---------------------------------------------------------------- observe
    def observe(self) -> dict[str, tuple[Callable[[], Any], float]]:
        return {LAYER: (self._sample, 0.5)}

    def _sample(self) -> dict[str, Any]:
        assert self.adapter is not None
        members = [m.to_json() for m in self.adapter.members()]
        with self._view_lock:
            self.last_view = members
        prim = [m["name"] for m in members if m["role"] == "primary"]
        if len(prim) == 1 and prim[0] != self._last_primary:
            self._last_primary = prim[0]
            self.ctx.events.event("manager_primary", node=prim[0])
            self.ctx.set_primary(prim[0])
        return {"members": members, "primary": prim[0] if len(prim) == 1 else None}

    # ----------------------------------------------------------------- steps
    def apply(self, step: "Step") -> dict[str, Any]:
        if self.adapter is None:
            raise HarnessError("the manager is not running")
        v = step.values
        try:
            if step.kind == "switchover":
                return self._switchover(step)
            if step.kind == "manager_pause":
                self.adapter.pause()
                return {}
            if step.kind == "manager_resume":
                self.adapter.resume()
                return {}
            if step.kind == "new_primary":
                return self._wait_new_primary(step, v.get("exclude"), v["timeout"])
            if step.kind == "members_healthy":
                return self._wait_healthy(step, v["timeout"])
            if step.kind == "manager_agrees":
                return self._wait_agrees(step, v["timeout"])
        except ManagerUnsupported as exc:
            raise HarnessError(f"{step.path} ({step.describe()}): {exc}") from None
        except ManagerError as exc:
            raise StepFailed(f"{step.path} ({step.describe()}): {exc}") from None
        raise HarnessError(f"{step.path}: the manager layer has no step {step.kind!r}")

    def _switchover(self, step: "Step") -> dict[str, Any]:
        assert self.adapter is not None
        v = step.values
        before = self.adapter.primary()
        detail = self.adapter.switchover(v.get("to"))
        if v["wait"]:
            detail.update(self._wait_new_primary(step, before, v["timeout"]))
        return detail

    def _wait(self, step: "Step", what: str, probe: Callable[[], Any], done: Callable[[Any], bool],
              timeout: float) -> Any:
        assert self.adapter is not None
        try:
            return wait_until(probe, what=what, done=done, timeout=timeout,
                              tolerate=(ManagerError, OSError, psycopg.Error), logs=self.adapter.logs(),
                              interval=0.2, max_interval=0.5)
        except WaitTimeout as exc:
            raise StepFailed(f"{step.path} ({step.describe()}): {exc}") from None

    def _wait_new_primary(self, step: "Step", exclude: str | None, timeout: float) -> dict[str, Any]:
        assert self.adapter is not None
        t0 = time.monotonic()

        def probe() -> str | None:
            # The excluded node may still be a primary in the manager's view (a split
            # brain the manager shows, as repmgr does): the other one counts.
            prims = [m.name for m in self.adapter.members()  # type: ignore[union-attr]
                     if m.role == "primary" and m.name != exclude]
            if len(prims) != 1:
                return None
            return prims[0] if not self.ctx.node(prims[0]).in_recovery() else None
        name = self._wait(step, "the manager to name a new primary" + (f" other than {exclude}" if exclude else "")
                          + " that is out of recovery", probe, lambda p: p is not None, timeout)
        self.ctx.set_primary(name)
        return {"primary": name, "waited_s": round(time.monotonic() - t0, 2)}

    def _wait_healthy(self, step: "Step", timeout: float) -> dict[str, Any]:
        assert self.adapter is not None
        n = len(self.ctx.scenario.nodes)

        def done(ms: list[Any]) -> bool:
            return len(ms) == n and all(m.healthy for m in ms) and sum(m.role == "primary" for m in ms) == 1
        ms = self._wait(step, "every member healthy and one leader (the manager's view)",
                        self.adapter.members, done, timeout)
        return {"members": [m.to_json() for m in ms]}

    def observed_roles(self) -> dict[str, str]:
        out = {}
        for name in self.ctx.scenario.nodes:
            try:
                out[name] = "standby" if self.ctx.node(name).in_recovery() else "primary"
            except (psycopg.Error, OSError):
                out[name] = "down"
        return out

    def _wait_agrees(self, step: "Step", timeout: float) -> dict[str, Any]:
        assert self.adapter is not None

        def probe() -> tuple[dict[str, str], dict[str, str]]:
            view = {m.name: m.role for m in self.adapter.members()}  # type: ignore[union-attr]
            return view, self.observed_roles()
        view, seen = self._wait(step, "the manager's roles to match the nodes' (pg_is_in_recovery)", probe,
                                lambda x: x[0] == x[1], timeout)
        return {"roles": view}

    # -------------------------------------------------------------- teardown
    def teardown(self) -> None:
        if self.adapter is None:
            return
        problems = self.adapter.stop()
        if problems:
            self.ctx.events.event("teardown_problems", layer=LAYER, problems=problems)

    def collect(self, faults_dir: Path) -> None:
        if self.adapter is not None:
            self.adapter.collect(self.ctx.rundir / "manager")
