"""The interface of an HA manager adapter, and what an adapter is given.

An adapter turns ``[manager] kind = "..."`` into a running cluster that the
manager, not walsim, drives: it writes the manager's configuration, starts
its DCS, monitor or witness, starts the manager on every node (which builds
and starts PostgreSQL itself), and answers questions in the manager's own
words (:meth:`Manager.members`).  In managed mode walsim never runs
``pg_ctl``, promotes, re-points or rewinds: the adapter only starts the
manager's programs and asks it.

Every address an adapter writes into a configuration (replication, DCS,
REST API, monitor, what clients connect to) comes from :class:`Paths`, so
that routing a path through a walsim-netd link is a change of what
``Paths`` returns, not of the adapter.  Every program is started by the
:class:`~walsim.managers.procs.Supervisor` (own process group, pid recorded,
stopped in order).

=======================  =====================================================
``missing()``            what is not installed (names the Debian package)
``provision()``          configuration files, the DCS, the monitor, the witness
``start()``              the manager on every node; the nodes are built by it
``wait_ready(timeout)``  a leader and every member replicating (the manager's view)
``members()``            the manager's own view of every node (:class:`Member`)
``switchover(to)``       the manager's planned switchover
``pause()/resume()``     the manager's maintenance mode (no automatic failover)
``processes(node)``      pids of the node's programs by what they are
``stop()``               managers, then PostgreSQL if left running, then DCS/monitor
``logs()``               the manager's log files, for errors and collection
=======================  =====================================================
"""

from __future__ import annotations

import shutil
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence

from walsim.core.errors import ManagerError, ManagerMissing, ManagerUnsupported
from walsim.core.timeouts import wait_until
from walsim.managers.procs import Supervisor
from walsim.pg.cluster import Cluster
from walsim.pg.node import Node
from walsim.scenario import schema as s

#: the roles of :attr:`Member.role`, normalised across managers
ROLES = ("primary", "standby", "down", "unknown")

#: PostgreSQL settings of every managed node (the manager may add its own)
BASE_SETTINGS: dict[str, object] = {
    "wal_level": "replica",
    "hot_standby": True,
    "wal_log_hints": True,
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_keep_size": "128MB",
    "max_connections": 40,
    "shared_buffers": "32MB",
    "log_line_prefix": "%m [%p] %b: ",
    "log_replication_commands": True,
    "wal_retrieve_retry_interval": "500ms",
    # A stall keeps TCP connections open: detection waits on these (ha-managers notes).
    "wal_sender_timeout": "5s",
    "wal_receiver_timeout": "5s",
    "fsync": False,
}


@dataclass
class Member:
    """One node as the manager sees it."""

    name: str
    #: primary, standby, down or unknown (the manager's role, normalised)
    role: str
    #: the manager's own word for the node's state (``running``, ``streaming``, ``* running``...)
    state: str
    #: the manager considers it a working member (replicating, or the leader)
    healthy: bool
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "state": self.state, "healthy": self.healthy}


class Paths(Protocol):
    """Addresses an adapter gets from the cluster and network layer."""

    def host(self, node: str) -> str:
        """The loopback address node ``node``'s servers listen on."""

    def hosts(self) -> list[str]:
        """Every node's address (for access rules such as pg_hba.conf)."""

    def member(self, name: str, kind: str) -> str:
        """Declare a member beside the nodes (``dcs``, ``monitor``, ``witness``); its address."""

    def source_env(self, member: str) -> dict[str, str]:
        """Environment that makes a program's connections come from the member's address."""

    def link(self, name: str, to: tuple[str, int], *, proto: str, path: str,
             owner: str | None, target: str | None, same_port: bool = False) -> tuple[str, int]:
        """An address that reaches ``to``: a walsim-netd link, or ``to`` itself when
        the path cannot go through netd yet.  ``proto``: ``pg`` (PostgreSQL protocol) or
        ``raw`` (HTTP, gRPC, anything); ``path``: what the traffic is (``pg``, ``api``,
        ``dcs``, ``monitor``, ``client``); ``owner``: the node whose processes alone use
        it (a node's way to the DCS), ``target``: the node it leads to; ``same_port``: the
        link listens at ``to``'s port number on an address of its own (for a manager that
        publishes one host and one port per node)."""


@dataclass
class NodeDecl:
    """A node of the scenario: its name, initial role and PostgreSQL settings."""

    name: str
    role: str
    settings: dict[str, Any]


@dataclass
class ManagerEnv:
    """What an adapter works with."""

    cluster: Cluster
    nodes: list[NodeDecl]
    values: dict[str, Any]
    paths: Paths
    supervisor: Supervisor
    dir: Path
    event: Callable[..., None] = lambda *a, **k: None
    timeout_mult: float = 1.0

    @property
    def primary(self) -> str:
        return next(n.name for n in self.nodes if n.role == "primary")


def common_fields() -> dict[str, s.Field]:
    """Keys of ``[manager]`` every kind accepts."""
    return {
        "ready_timeout": s.duration(default=120.0, help="deadline for a leader and every member "
                                    "replicating at start (scaled by WALSIM_TIMEOUT_MULT)"),
        "config": s.Field(lambda v, _n: _table(v), False, {},
                          "settings passed through to the manager's own configuration, merged "
                          "over walsim's (see docs/managers.md for each kind)", "table"),
    }


def _table(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise s.Invalid(f"expected a table, got {s._type_name(v)}")
    return v


class Manager:
    """Base class of manager adapters."""

    #: ``[manager] kind``
    kind: ClassVar[str] = ""
    #: one paragraph for ``walsim-cli kinds`` and the docs
    doc: ClassVar[str] = ""
    #: program -> the Debian package that provides it
    programs: ClassVar[Mapping[str, str]] = {}
    #: keys of ``[manager]`` this kind adds to :func:`common_fields`
    fields: ClassVar[Mapping[str, s.Field]] = {}
    #: process kinds stopped first to last by :meth:`stop` (then the nodes, then the rest)
    stop_order: ClassVar[Sequence[str]] = ("manager",)
    #: process kinds stopped after PostgreSQL
    after_postgres: ClassVar[Sequence[str]] = ("dcs", "monitor")

    def __init__(self, env: ManagerEnv) -> None:
        self.env = env
        self.cluster = env.cluster
        self.runas = env.cluster.runas
        self.values = env.values
        self.paths = env.paths
        self.sup = env.supervisor
        self.dir = env.dir
        self.superuser_password = secrets.token_hex(16)
        #: node -> the address clients connect to (its ``NODE-client`` path)
        self.client: dict[str, tuple[str, int]] = {}

    # ------------------------------------------------------- declaration
    @classmethod
    def all_fields(cls) -> dict[str, s.Field]:
        """Every key ``[manager]`` of this kind accepts."""
        out = common_fields()
        out.update(cls.fields)
        return out

    @classmethod
    def check_scenario(cls, values: Mapping[str, Any], durability: str,
                       settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems of a scenario run under this manager: ``[(key path, message)]``.
        By default a ``sync``/``quorum`` durability needs ``synchronous_standby_names``."""
        if durability in ("sync", "quorum") and not str(settings.get("synchronous_standby_names", "")).strip():
            return [("durability", f"durability = \"{durability}\" promises that an acknowledged commit "
                     f"survives the loss of the primary, but the {cls.kind} configuration sets no "
                     "synchronous_standby_names")]
        return []

    # ------------------------------------------------------------ install
    @classmethod
    def find_program(cls, name: str, pg_bindir: Path | None = None) -> Path | None:
        if pg_bindir is not None and (pg_bindir / name).exists():
            return pg_bindir / name
        found = shutil.which(name)
        return Path(found) if found else None

    @classmethod
    def missing(cls, values: Mapping[str, Any], pg_bindir: Path | None = None) -> str | None:
        """A message naming every missing program and its Debian package, or None."""
        gone = [(p, pkg) for p, pkg in cls.programs.items() if cls.find_program(p, pg_bindir) is None]
        if not gone:
            return None
        pkgs = " ".join(dict.fromkeys(pkg for _, pkg in gone))
        names = ", ".join(p for p, _ in gone)
        return (f"manager kind {cls.kind!r} needs {names}, not installed: install the Debian "
                f"package(s) {pkgs} (apt-get install {pkgs}, or make deps)")

    def program(self, name: str) -> str:
        found = self.find_program(name, self.cluster.pg.bindir)
        if found is None:
            raise ManagerMissing(self.missing(self.values, self.cluster.pg.bindir) or name)
        return str(found)

    # -------------------------------------------------------------- nodes
    def new_node(self, decl: NodeDecl) -> Node:
        """A :class:`Node` the manager will create and start (walsim never starts it)."""
        node = self.cluster.add_managed_node(decl.name, managed_by=self.kind)
        node.host = self.paths.host(decl.name)
        return node

    def client_path(self, node: Node) -> tuple[str, int]:
        """The node's client path (``NODE-client``), recorded in :attr:`client`."""
        self.client[node.name] = self.paths.link(f"{node.name}-client", (node.host, node.port), proto="pg",
                                                 path="client", owner=None, target=node.name)
        return self.client[node.name]

    def node_settings(self, decl: NodeDecl, node: Node) -> dict[str, object]:
        """PostgreSQL settings for a managed node: walsim's base, the scenario's, and the
        ones that keep the node's files in its directory (socket, log)."""
        out: dict[str, object] = dict(BASE_SETTINGS)
        out.update(decl.settings)
        out.update({
            "unix_socket_directories": str(node.base_dir),
            "cluster_name": node.name,
            "logging_collector": True,
            "log_directory": str(node.base_dir),
            "log_filename": node.log_file.name,
            "log_file_mode": "0640",
            "log_rotation_age": 0,
            "log_rotation_size": 0,
            "log_truncate_on_rotation": False,
        })
        return out

    def hba_lines(self) -> list[str]:
        """pg_hba.conf lines admitting the superuser and the replication role from every
        node's address (and only those)."""
        auth = "scram-sha-256"
        addrs = list(dict.fromkeys(["127.0.0.1"] + self.paths.hosts()))
        lines = ["local all all trust"]
        for a in addrs:
            lines.append(f"host all all {a}/32 {auth}")
            lines.append(f"host replication all {a}/32 {auth}")
        return lines

    # ----------------------------------------------------------- interface
    def provision(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def members(self) -> list[Member]:
        raise NotImplementedError

    def primary(self) -> str | None:
        """The node the manager names as leader/primary (None: none, or it cannot be asked)."""
        prim = [m.name for m in self.members() if m.role == "primary"]
        return prim[0] if len(prim) == 1 else None

    def sync_standby(self) -> str | None:
        """A synchronous standby of the leader, by the leader's pg_stat_replication."""
        prim = self.primary()
        if prim is None:
            return None
        rows = self.cluster.node(prim).query(
            "SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') "
            "ORDER BY sync_priority, application_name")
        names = [r[0] for r in rows if r[0] in self.cluster.nodes]
        return names[0] if names else None

    def wait_ready(self, timeout: float) -> list[Member]:
        """A leader and every member healthy, by the manager's own view."""
        def probe() -> list[Member]:
            self.check_alive()  # a program that exited: at once, not at the deadline
            try:
                return self.members()
            except (ManagerError, OSError):
                return []

        def done(ms: list[Member]) -> bool:
            return (len(ms) == len(self.env.nodes) and all(m.healthy for m in ms)
                    and sum(1 for m in ms if m.role == "primary") == 1)
        try:
            return wait_until(probe, what=f"{self.kind}: a leader and every member healthy",
                              done=done, timeout=timeout,
                              logs=self.logs(), interval=0.2, max_interval=1.0)
        except ManagerError:
            raise
        except Exception as exc:
            raise ManagerError(f"{exc}\n{self.log_excerpt()}") from None

    def check_alive(self) -> None:
        """Raise :class:`ManagerError` (with the log's end) if a program exited."""
        for mp in self.sup.procs:
            if mp.proc is not None and mp.proc.poll() is not None and not getattr(mp, "expected_exit", False):
                raise ManagerError(f"{self.kind}: {mp.label} exited with status {mp.proc.returncode}; "
                                   f"its log ({mp.log}) ends with:\n{mp.tail()}")

    def switchover(self, to: str | None) -> dict[str, Any]:
        raise ManagerUnsupported(f"manager kind {self.kind!r} has no switchover")

    def pause(self) -> None:
        raise ManagerUnsupported(f"manager kind {self.kind!r} has no maintenance mode")

    def resume(self) -> None:
        raise ManagerUnsupported(f"manager kind {self.kind!r} has no maintenance mode")

    def processes(self, node: str) -> dict[str, list[tuple[int, int]]]:
        """``{"manager": [(pid, starttime)...], "postgres": [...]}`` of one node."""
        out: dict[str, list[tuple[int, int]]] = {"manager": [], "postgres": []}
        n = self.cluster.node(node)
        pg = set()
        pm = n.postmaster_pid()
        if pm is not None:
            for info in [p for p in [*(_stat_list([pm])), *n._record_children()] if p is not None]:
                out["postgres"].append((info.pid, info.starttime))
                pg.add(info.pid)
        for mp in self.sup.procs:
            if mp.node == node and mp.what == "manager":
                out["manager"] += [(i.pid, i.starttime) for i in mp.group() if i.pid not in pg]
        return out

    def stop(self) -> list[str]:
        """Managers, then PostgreSQL left running, then DCS/monitor."""
        problems = self.sup.stop(self.stop_order)
        for node in list(self.cluster.nodes.values()):
            try:
                problems += node._teardown()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{node.name}: {exc}")
        problems += self.sup.stop(self.after_postgres)
        return problems

    def touch(self, path: Path) -> Path:
        """An empty file owned by the PostgreSQL user (a log a program appends to)."""
        path.touch()
        self.runas.chown(path)
        return path

    def logs(self) -> list[Path]:
        return [mp.log for mp in self.sup.procs]

    def log_excerpt(self, lines: int = 15) -> str:
        parts = []
        for mp in self.sup.procs:
            t = mp.tail(lines)
            if t:
                parts.append(f"{mp.label} ({mp.log}):\n{t}")
        return "\n".join(parts)

    def collect(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for p in self.dir.rglob("*"):
            if p.is_file() and p.suffix in (".log", ".yml", ".yaml", ".json", ".conf", ".cfg", ".ini") \
                    and p.stat().st_size < (32 << 20):
                rel = p.relative_to(self.dir)
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy(p, dest / rel)
                except OSError:
                    pass


def _stat_list(pids: Sequence[int]) -> list[Any]:
    from walsim.pg import procs
    return [procs.stat(p) for p in pids]
