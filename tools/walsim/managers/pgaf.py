"""pg_auto_failover 2.0: a monitor and one ``pg_autoctl`` keeper per node.

The monitor is its own PostgreSQL instance under ``manager/monitor`` (not a
scenario node).  Each node is created by ``pg_autoctl create postgres`` (the
first becomes the primary, the others clone from it) and then kept by
``pg_autoctl run`` under the supervisor; pg_autoctl starts and stops its
PostgreSQL itself (a child of the keeper, in its process group).

pg_auto_failover publishes one host and port per node, and every peer and
the monitor connect there.  The node's PostgreSQL listens on 127.0.0.1 at its
port, and its ``NODE-pg`` link listens on another loopback address at the
same port number: that address is the node's ``--hostname``.  Each node
reaches the monitor through its own ``NODE-monitor`` link; clients use
``NODE-client``.  pg_autoctl writes to ``~/.config`` and ``/tmp`` unless told
otherwise: ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``, ``XDG_RUNTIME_DIR`` and
``TMPDIR`` point inside the cluster's directory.

Authentication is ``trust`` from 127.0.0.1 (pg_autoctl's own default, and its
quick start's): pg_auto_failover's health checks and replication run without
passwords unless each is configured, which this adapter does not do yet.

Test timings by default: on the monitor ``health_check_period = 1000``,
``health_check_timeout = 1000``, ``health_check_max_retries = 1``,
``health_check_retry_delay = 500``, ``node_considered_unhealthy_timeout =
3000``, ``primary_demote_timeout = 5000``, ``startup_grace_period = 3000``
(milliseconds; ``monitor_settings`` overrides any ``pgautofailover.*`` GUC);
on each node ``network_partition_timeout = 5`` (seconds; ``config`` adds any
``pg_autoctl config set`` key, e.g. ``"timeout.prepare_promotion_catchup" = 5``).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Mapping

import psycopg

from walsim.core.errors import ManagerError
from walsim.core.timeouts import wait_until
from walsim.managers.base import Manager, Member, NodeDecl
from walsim.pg.node import format_value
from walsim.scenario import schema as s

MONITOR_DEFAULTS = {
    "health_check_period": 1000, "health_check_timeout": 1000, "health_check_max_retries": 1,
    "health_check_retry_delay": 500, "node_considered_unhealthy_timeout": 3000,
    "primary_demote_timeout": 5000, "startup_grace_period": 3000,
}
PRIMARY_STATES = ("single", "primary", "wait_primary", "join_primary", "apply_settings")
STANDBY_STATES = ("secondary", "catchingup", "wait_standby", "prepare_promotion", "stop_replication",
                  "report_lsn", "fast_forward", "join_secondary")
DOWN_STATES = ("demoted", "demote_timeout", "draining", "dropped", "maintenance", "wait_maintenance",
               "prepare_maintenance")
#: settings pg_autoctl sets on the command line or manages itself
PGAF_OWNS = ("port", "listen_addresses", "synchronous_standby_names", "synchronous_commit")


class PgAutoFailoverManager(Manager):
    kind = "pg_auto_failover"
    doc = ("pg_auto_failover: a monitor (its own PostgreSQL) and a pg_autoctl keeper per node; "
           "synchronous replication by default")
    programs = {"pg_autoctl": "pg-auto-failover-cli"}
    fields = {
        "network_partition_timeout": s.integer(default=5, lo=1, help="seconds before an isolated "
                                               "primary demotes itself (pg_autoctl timeout)"),
        "monitor_settings": s.Field(lambda v, _n: _gucs(v), False, {},
                                    "pgautofailover.* settings of the monitor (without the prefix), "
                                    "over walsim's test timings", "table"),
    }
    stop_order = ("manager",)
    after_postgres = ("monitor",)

    @classmethod
    def check_scenario(cls, values: Mapping[str, Any], durability: str,
                       settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        owned = [k for k in settings if k in PGAF_OWNS]
        if owned:
            return [(f"settings.{owned[0]}", f"pg_auto_failover sets {owned[0]} itself; remove it")]
        return []

    @classmethod
    def missing(cls, values: Mapping[str, Any], pg_bindir: Any = None) -> str | None:
        gone = super().missing(values, pg_bindir)
        if gone:
            return gone
        if pg_bindir is not None:
            ext = pg_bindir.parent / "lib" / "pgautofailover.so"
            if not ext.exists():
                return ("manager kind 'pg_auto_failover' needs the pgautofailover extension of this "
                        f"PostgreSQL ({pg_bindir.parent.name}): install the Debian package "
                        f"postgresql-{pg_bindir.parent.name}-auto-failover")
        return None

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.monitor_dir = self.dir / "monitor"
        self.monitor_port = 0
        self.monitor_host = "127.0.0.1"
        self.hostname: dict[str, str] = {}
        self._reservations: list[Any] = []

    # ------------------------------------------------------------ commands
    def _autoctl(self, *args: str, what: str, log: str, check: bool = True, timeout: float = 120,
                 member: str | None = None) -> str:
        argv = [self.program("pg_autoctl"), *args]
        env = {**self.sup.env, **(self.paths.source_env(member) if member else {})}
        proc = self.runas.run(argv, what=what, log=self.dir / log, env=env,
                              timeout=timeout * self.env.timeout_mult, check=check)
        return proc.stdout.decode(errors="replace")

    def _monitor_uri(self, host: str, port: int) -> str:
        return f"postgres://autoctl_node@{host}:{port}/pg_auto_failover?sslmode=disable"

    # ----------------------------------------------------------- provision
    def provision(self) -> None:
        self.program("pg_autoctl")
        self.sup.env["PATH"] = f"{self.cluster.pg.bindir}:/usr/bin:/bin"
        # pg_autoctl runs initdb with the locale's encoding: UTF8, not SQL_ASCII.
        self.sup.env["LC_ALL"] = self.sup.env["LANG"] = "C.UTF-8"
        res = self.cluster.ports.reserve()
        self._reservations.append(res)
        self.monitor_port = res.port
        self.monitor_host = self.paths.member("monitor", "monitor")
        self.touch(self.dir / "monitor-create.log")
        self._autoctl("create", "monitor", "--pgdata", str(self.monitor_dir), "--pgport", str(self.monitor_port),
                      "--hostname", self.monitor_host, "--no-ssl", "--skip-pg-hba",
                      "--pgctl", str(self.cluster.pg.path("pg_ctl")),
                      what="pg_autoctl create monitor", log="monitor-create.log")
        for key, value in (("postgresql.listen_addresses", self.monitor_host), ("postgresql.host", str(self.dir))):
            self._autoctl("config", "set", "--pgdata", str(self.monitor_dir), key, value,
                          what=f"monitor: pg_autoctl config set {key}", log="monitor-create.log")
        self._append(self.monitor_dir, {"shared_buffers": "32MB", "max_connections": 60,
                                        "unix_socket_directories": str(self.dir), "fsync": False})
        self._hba(self.monitor_dir)
        self.touch(self.dir / "monitor.log")
        self.sup.start("monitor", None, [self.program("pg_autoctl"), "run", "--pgdata", str(self.monitor_dir)],
                       self.dir / "monitor.log", cwd=self.dir, env=self.paths.source_env("monitor"))
        wait_until(self._monitor_ready, what="the pg_auto_failover monitor to accept connections",
                   timeout=60, tolerate=(psycopg.Error,), logs=[self.dir / "monitor.log"],
                   interval=0.2)
        gucs = dict(MONITOR_DEFAULTS)
        gucs.update(self.values.get("monitor_settings") or {})
        with self._monitor_conn() as conn:
            for k, v in gucs.items():
                conn.execute(f"ALTER SYSTEM SET pgautofailover.{k} = {format_value(v)}")
            conn.execute("SELECT pg_reload_conf()")
        for i, decl in enumerate(self.env.nodes, start=1):
            node = self.new_node(decl)
            # pg_auto_failover publishes (hostname, port) and peers connect there: the
            # node's link listens at the same port on an address of its own.
            link = self.paths.link(f"{decl.name}-pg", (node.host, node.port), proto="pg", path="pg",
                                   owner=None, target=decl.name, same_port=True)
            self.hostname[decl.name] = link[0]
            self.client_path(node)

    def _monitor_conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.monitor_host, port=self.monitor_port, user=self.cluster.superuser,
                               dbname="pg_auto_failover", autocommit=True, connect_timeout=2)

    def _monitor_ready(self) -> bool:
        self.check_alive()
        with self._monitor_conn() as conn:
            conn.execute("SELECT 1 FROM pgautofailover.node LIMIT 1")
        return True

    def _append(self, pgdata: Any, settings: Mapping[str, object]) -> None:
        text = "\n# walsim: settings of the pg_auto_failover cluster (after its include: these win)\n"
        text += "".join(f"{k} = {format_value(v)}\n" for k, v in settings.items())
        path = pgdata / "postgresql.conf"
        with open(path, "a") as f:
            f.write(text)
        self.runas.chown(path)

    def _hba(self, pgdata: Any) -> None:
        lines = ["local all all trust", "local replication all trust"]
        for a in dict.fromkeys(["127.0.0.1"] + self.paths.hosts()):
            lines += [f"host all all {a}/32 trust", f"host replication all {a}/32 trust"]
        self.runas.write_file(pgdata / "pg_hba.conf", "\n".join(lines) + "\n", 0o600)

    # --------------------------------------------------------------- start
    def start(self) -> None:
        order = [self.env.primary] + [d.name for d in self.env.nodes if d.name != self.env.primary]
        decls = {d.name: d for d in self.env.nodes}
        for i, name in enumerate(order):
            self._create(decls[name])
            self.sup.start("manager", name, [self.program("pg_autoctl"), "run", "--pgdata",
                                             str(self.cluster.node(name).data_dir)],
                           self.dir / f"{name}.log", cwd=self.cluster.node(name).base_dir,
                           env=self.paths.source_env(name))
            want = ("single",) if i == 0 else ("secondary",)
            wait_until(lambda: (self.check_alive(), self._state(name))[1],
                       what=f"pg_auto_failover: {name} to reach state {'/'.join(want)}",
                       done=lambda st: st in want, timeout=self.values["ready_timeout"],
                       tolerate=(ManagerError,), logs=[self.dir / f"{name}.log"], interval=0.3)

    def _create(self, decl: NodeDecl) -> None:
        node = self.cluster.node(decl.name)
        mon = self.paths.link(f"{decl.name}-monitor", (self.monitor_host, self.monitor_port), proto="pg",
                              path="monitor", owner=decl.name, target="monitor")
        log = f"{decl.name}-create.log"
        self.touch(self.dir / log)
        self.touch(self.dir / f"{decl.name}.log")
        self._autoctl("create", "postgres", "--pgdata", str(node.data_dir), "--pgport", str(node.port),
                      "--listen", node.host, "--hostname", self.hostname[decl.name], "--name", decl.name,
                      "--monitor", self._monitor_uri(*mon), "--no-ssl", "--skip-pg-hba",
                      "--pgctl", str(self.cluster.pg.path("pg_ctl")), "--dbname", "postgres",
                      what=f"pg_autoctl create postgres ({decl.name})", log=log, timeout=300, member=decl.name)
        settings = {k: v for k, v in self.node_settings(decl, node).items() if k not in PGAF_OWNS}
        self._append(node.data_dir, settings)
        self._hba(node.data_dir)
        sets = {"timeout.network_partition_timeout": self.values["network_partition_timeout"],
                "postgresql.host": str(node.base_dir)}
        sets.update(self.values.get("config") or {})
        for key, value in sets.items():
            self._autoctl("config", "set", "--pgdata", str(node.data_dir), key, str(value),
                          what=f"pg_autoctl config set {key} ({decl.name})", log=log)

    # ------------------------------------------------------------- the view
    def _show(self) -> list[dict[str, Any]]:
        argv = [self.program("pg_autoctl"), "show", "state", "--json", "--pgdata", str(self.monitor_dir)]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=10,
                                  env=self.runas.environment(self.sup.env),
                                  **self.runas.popen_kwargs())  # type: ignore[call-overload]
        except subprocess.TimeoutExpired:
            raise ManagerError("pg_autoctl show state did not answer within 10 s") from None
        try:
            data = json.loads(proc.stdout.decode(errors="replace") or "null")
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise ManagerError(f"pg_autoctl show state failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
        return data

    def _state(self, name: str) -> str | None:
        for row in self._show():
            if row.get("nodename") == name:
                return str(row.get("current_group_state"))
        return None

    def members(self) -> list[Member]:
        rows = {r.get("nodename"): r for r in self._show()}
        out = []
        for d in self.env.nodes:
            r = rows.get(d.name)
            if r is None:
                out.append(Member(d.name, "down", "not registered", False, {}))
                continue
            cur, assigned = str(r.get("current_group_state")), str(r.get("assigned_group_state"))
            health = int(r.get("health", 0))
            # The monitor's view is its decision, the assigned state: a dead primary keeps
            # "primary" as its last reported state while the monitor has demoted it.
            role = ("primary" if assigned in PRIMARY_STATES else
                    "down" if assigned in DOWN_STATES or (health != 1 and assigned in STANDBY_STATES) else
                    "standby" if assigned in STANDBY_STATES else "unknown")
            healthy = health == 1 and cur == assigned and cur in ("single", "primary", "secondary")
            out.append(Member(d.name, role, f"{cur} (assigned {assigned}, health {r.get('health')})",
                              healthy, r))
        return out

    def sync_standby(self) -> str | None:
        """pg_auto_failover names standbys ``pgautofailover_standby_<node id>`` in
        synchronous_standby_names and application_name: mapped back to node names."""
        prim = self.primary()
        if prim is None:
            return None
        ids = {f"pgautofailover_standby_{r.get('node_id')}": r.get("nodename") for r in self._show()}
        rows = self.cluster.node(prim).query(
            "SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') "
            "ORDER BY sync_priority, application_name")
        names = [ids.get(r[0]) for r in rows if ids.get(r[0]) in self.cluster.nodes]
        return names[0] if names else None

    # --------------------------------------------------------------- actions
    def switchover(self, to: str | None) -> dict[str, Any]:
        leader = self.primary()
        args = ["perform", "switchover" if to is None else "promote", "--pgdata",
                str(self.monitor_dir), "--formation", "default"]
        if to is not None:
            args = ["perform", "promote", "--pgdata", str(self.cluster.node(to).data_dir)]
        out = self._autoctl(*args, what="pg_autoctl perform switchover", log="actions.log", timeout=180)
        return {"from": leader, "to": to, "output": out.strip().splitlines()[-3:]}

    def stop(self) -> list[str]:
        problems = super().stop()
        for res in self._reservations:
            res.release()
        return problems


def _gucs(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise s.Invalid(f"expected a table of pgautofailover settings, got {s._type_name(v)}")
    for k, x in v.items():
        if not isinstance(x, (int, float, str, bool)):
            raise s.Invalid(f"[{k}]: expected a number, string or boolean")
    return dict(v)
