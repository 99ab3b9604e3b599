"""repmgr 5.3 with repmgrd on every node, optionally a witness.

repmgr does not create a primary: the adapter does what its documentation
tells an operator to do.  The primary is initialised (walsim's initdb
template), started with ``pg_ctl`` and registered (``repmgr primary
register``); each standby is cloned (``repmgr standby clone
--fast-checkpoint``), started and registered; the witness (``witness =
true``) is its own PostgreSQL instance registered with ``repmgr witness
register``; then ``repmgrd`` runs in the foreground on every node under the
supervisor.  From then on only repmgr acts: promotion, following, rejoin
are its ``promote_command``/``follow_command`` and service commands.

Every per-node setting (port, socket directory, log) is on the ``pg_ctl
-o`` command line of the service commands, because a clone or a rewind
copies the source's configuration files (ha-managers notes).  Each node's
``conninfo`` names its ``NODE-pg`` link, so every repmgr and repmgrd
connection to a node (health checks, cloning, following) goes through
walsim-netd; clients use ``NODE-client``.

Test timings by default (``[manager]`` keys): ``reconnect_attempts = 2``,
``reconnect_interval = 1``, ``monitor_interval_secs = 1``;
``primary_visibility_consensus`` and ``location`` (the witness shares the
primary's location) map to repmgr's; ``config`` adds or overrides any
``repmgr.conf`` parameter.
"""

from __future__ import annotations

import csv
import io
import subprocess
from typing import Any, Mapping

from walsim.core.errors import ManagerError, ManagerUnsupported
from walsim.core.timeouts import wait_until
from walsim.managers.base import Manager, Member, NodeDecl
from walsim.pg.node import Node, format_value
from walsim.pg.template import copy_template, ensure_template, run_initdb
from walsim.scenario import schema as s

WITNESS = "witness"


def conf_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class RepmgrManager(Manager):
    kind = "repmgr"
    doc = "repmgr with repmgrd on every node and, optionally, a witness in the primary's location"
    programs = {"repmgr": "postgresql-15-repmgr", "repmgrd": "postgresql-15-repmgr"}
    fields = {
        "witness": s.boolean(default=False, help="add a witness node (its own PostgreSQL instance) in "
                             "the primary's location"),
        "primary_visibility_consensus": s.boolean(help="repmgr's primary_visibility_consensus (default: "
                                                  "true with a witness, false without)"),
        "reconnect_attempts": s.integer(default=2, lo=1),
        "reconnect_interval": s.integer(default=1, lo=1, help="seconds"),
        "monitor_interval_secs": s.integer(default=1, lo=1),
    }
    stop_order = ("manager",)
    after_postgres = ()

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.ids: dict[str, int] = {}
        self.conninfo: dict[str, str] = {}
        self.witness: Node | None = None

    # ------------------------------------------------------------ commands
    def _repmgr(self, name: str, *args: str, check: bool = True, timeout: float = 120) -> str:
        argv = [self.program("repmgr"), "-f", str(self._conf(name)), *args]
        proc = self.runas.run(argv, what=f"repmgr {' '.join(args[:2])} on {name}",
                              log=self.dir / f"{name}-commands.log",
                              env={**self._env(), **self.paths.source_env(name)},
                              timeout=timeout * self.env.timeout_mult, check=check)
        return proc.stdout.decode(errors="replace")

    def _env(self) -> dict[str, str]:
        return {"PGPASSFILE": str(self.cluster.passfile), "PGCONNECT_TIMEOUT": "2"}

    def _conf(self, name: str) -> Any:
        return self.dir / f"{name}.conf"

    def _log(self, name: str) -> Any:
        return self.dir / f"{name}.log"

    def _node_opts(self, node: Node, decl: NodeDecl) -> str:
        """``pg_ctl -o``: every per-node setting, on the command line so that a copied
        postgresql.conf (clone, rewind) never moves the node."""
        settings = self.node_settings(decl, node)
        settings.update({"port": node.port, "listen_addresses": node.host})
        out = []
        for k, v in settings.items():
            if k in PER_NODE:
                text = _flat(v)
                if any(c in text for c in " '\"\\$`"):
                    raise ManagerError(f"repmgr: {k} = {text!r} cannot go on a pg_ctl command line")
                out.append(f"-c {k}={text}")
        return " ".join(out)

    def _pg_ctl(self, node: Node, decl: NodeDecl, action: str) -> list[str]:
        pg_ctl = str(self.cluster.pg.path("pg_ctl"))
        if action == "start":
            return [pg_ctl, "-D", str(node.data_dir), "-l", str(node.base_dir / "pg_ctl.log"), "-w",
                    "-t", "60", "-o", self._node_opts(node, decl), "start"]
        if action == "restart":
            return [pg_ctl, "-D", str(node.data_dir), "-l", str(node.base_dir / "pg_ctl.log"), "-w",
                    "-t", "60", "-m", "fast", "-o", self._node_opts(node, decl), "restart"]
        return [pg_ctl, "-D", str(node.data_dir), "-w", "-t", "60", "-m", "fast", "stop"]

    # ----------------------------------------------------------- provision
    def provision(self) -> None:
        for prog in self.programs:
            self.program(prog)
        decls = list(self.env.nodes)
        if self.values.get("witness"):
            decls.append(NodeDecl(WITNESS, "witness", {}))
        for i, decl in enumerate(decls, start=1):
            if decl.name == WITNESS:
                self.paths.member(WITNESS, "witness")
            node = self.new_node(decl)
            self.ids[decl.name] = i
            link = self.paths.link(f"{decl.name}-pg", (node.host, node.port), proto="pg", path="pg",
                                   owner=None, target=decl.name)
            if decl.name != WITNESS:
                self.client_path(node)
            self.conninfo[decl.name] = (f"host={link[0]} port={link[1]} user={self.cluster.superuser} "
                                        f"dbname=postgres connect_timeout=2 passfile={self.cluster.passfile}")
            if decl.name == WITNESS:
                self.witness = node
        for decl in decls:
            self._write_conf(decl)
            self.touch(self._log(decl.name))
            self.touch(self.dir / f"{decl.name}-commands.log")
        self._decls = {d.name: d for d in decls}

    def _write_conf(self, decl: NodeDecl) -> None:
        v = self.values
        node = self.cluster.node(decl.name)
        consensus = v.get("primary_visibility_consensus")
        if consensus is None:
            consensus = bool(v.get("witness"))
        conf = self._conf(decl.name)
        start, stop, restart = (_command(self._pg_ctl(node, decl, a)) for a in ("start", "stop", "restart"))
        repmgr = self.program("repmgr")
        params: dict[str, object] = {
            "node_id": self.ids[decl.name],
            "node_name": decl.name,
            "conninfo": self.conninfo[decl.name],
            "data_directory": str(node.data_dir),
            "pg_bindir": str(self.cluster.pg.bindir),
            "replication_user": self.cluster.superuser,
            "use_replication_slots": True,
            # With a witness, it shares the primary's location and the standbys have another:
            # standbys that see neither the primary nor the witness assume a network split.
            "location": "dc1" if decl.name in (self.env.primary, WITNESS) or not v.get("witness") else "dc2",
            "failover": "automatic",
            "priority": 100,
            "promote_command": f"{repmgr} standby promote -f {conf} --log-to-file",
            "follow_command": f"{repmgr} standby follow -f {conf} --log-to-file --upstream-node-id=%n",
            "reconnect_attempts": v["reconnect_attempts"],
            "reconnect_interval": v["reconnect_interval"],
            "monitor_interval_secs": v["monitor_interval_secs"],
            "primary_visibility_consensus": consensus,
            "standby_disconnect_on_failover": False,
            "connection_check_type": "connection",
            "log_level": "INFO",
            "log_file": str(self._log(decl.name)),
            "repmgrd_pid_file": str(self.dir / f"{decl.name}-repmgrd.pid"),
            "service_start_command": start,
            "service_stop_command": stop,
            "service_restart_command": restart,
            "pg_basebackup_options": "--no-sync",
        }
        params.update(v.get("config") or {})
        text = "".join(f"{k}={conf_value(x)}\n" for k, x in params.items())
        self.runas.write_file(conf, text, 0o600)

    # --------------------------------------------------------------- start
    def start(self) -> None:
        primary = self.cluster.node(self.env.primary)
        decl = self._decls[self.env.primary]
        self._initdb(primary, decl)
        self._start_pg(primary, decl)
        self.cluster.create_replication_role(primary)
        self._repmgr(decl.name, "primary", "register")
        for d in self.env.nodes:
            if d.name == self.env.primary:
                continue
            node = self.cluster.node(d.name)
            link = self.conninfo[self.env.primary]
            host, port = _host_port(link)
            self._repmgr(d.name, "-h", host, "-p", str(port), "-U", self.cluster.superuser, "-d", "postgres",
                         "standby", "clone", "--fast-checkpoint")
            self._start_pg(node, d)
            node.wait_for_streaming(timeout=60)
            self._repmgr(d.name, "standby", "register", "--wait-sync=60")
        if self.witness is not None:
            wdecl = self._decls[WITNESS]
            self._initdb(self.witness, wdecl)
            self._start_pg(self.witness, wdecl)
            host, port = _host_port(self.conninfo[self.env.primary])
            self._repmgr(WITNESS, "-h", host, "-p", str(port), "-U", self.cluster.superuser, "-d", "postgres",
                         "witness", "register")
        self._deferred()
        for name in [*(d.name for d in self.env.nodes), *([WITNESS] if self.witness else [])]:
            self.sup.start("manager", name, [self.program("repmgrd"), "-f", str(self._conf(name)),
                                             "--daemonize=false", "--no-pid-file"],
                           self.dir / f"{name}-repmgrd.out", env={**self._env(), **self.paths.source_env(name)},
                           cwd=self.cluster.node(name).base_dir)

    def _deferred(self) -> None:
        """Settings that would block registration (a synchronous primary without standbys),
        written to every node's postgresql.conf once all of them replicate, then reloaded."""
        for d in self.env.nodes:
            later = {k: v for k, v in d.settings.items() if k in DEFERRED}
            if not later:
                continue
            node = self.cluster.node(d.name)
            node.append_conf("".join(f"{k} = {format_value(v)}\n" for k, v in later.items()))
            node.execute("SELECT pg_reload_conf()")

    def _initdb(self, node: Node, decl: NodeDecl) -> None:
        opts = ["--auth-host", "scram-sha-256", "--auth-local", "peer", "--data-checksums", "-E", "UTF8",
                "--locale", "C", "--no-sync"]
        if decl.name == WITNESS:
            # A witness is another database system: its own initdb, never a copy of the
            # template the primary came from (repmgr refuses a shared system identifier).
            run_initdb(self.cluster.pg, self.runas, node.data_dir, self.superuser_password,
                       self.cluster.superuser, opts, node.log_file, 120 * self.env.timeout_mult)
        else:
            template, password = ensure_template(self.cluster.pg, self.runas, self.cluster.superuser, opts,
                                                 node.log_file, 120 * self.env.timeout_mult)
            copy_template(self.runas, template, node.data_dir, node.log_file, 120 * self.env.timeout_mult)
            self.superuser_password = password
            self.cluster.set_superuser_password(password)
        self.runas.write_file(node.data_dir / "pg_hba.conf", "\n".join(self.hba_lines()) + "\n", 0o600)
        # Settings every node shares go in postgresql.conf (copied by clones); per-node
        # ones are on the pg_ctl command line.
        shared = {k: v for k, v in self.node_settings(decl, node).items() if k not in PER_NODE + DEFERRED}
        shared["shared_preload_libraries"] = "repmgr"
        node.append_conf("\n# walsim: settings of the repmgr cluster\n"
                         + "".join(f"{k} = {format_value(v)}\n" for k, v in shared.items()))

    def _start_pg(self, node: Node, decl: NodeDecl) -> None:
        self.runas.run(self._pg_ctl(node, decl, "start"), what=f"{node.name}: pg_ctl start",
                       log=self.dir / f"{node.name}-commands.log", env={**self._env(), **self.paths.source_env(node.name)},
                       timeout=90 * self.env.timeout_mult)

    # ------------------------------------------------------------- the view
    def members(self) -> list[Member]:
        """``repmgr cluster show --csv`` asked of each node until one answers; the view of a
        node that is a standby in its own records comes first (it carries its primary's
        records, the most recent), then the others."""
        answers: list[tuple[str, list[Member]]] = []
        last = ""
        for d in self.env.nodes:
            try:
                out = self._show(d.name)
            except ManagerError as exc:
                last = str(exc)
                continue
            ms = self._parse(out)
            answers.append((d.name, ms))
            me = next((m for m in ms if m.name == d.name), None)
            if me is not None and me.role == "standby" and me.healthy:
                return ms
        if answers:
            return answers[0][1]
        raise ManagerError(f"repmgr: no node answered cluster show ({last})")

    def _show(self, name: str) -> str:
        argv = [self.program("repmgr"), "-f", str(self._conf(name)), "cluster", "show", "--csv"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=10, env=self.runas.environment(self._env()),
                                  **self.runas.popen_kwargs())  # type: ignore[call-overload]
        except subprocess.TimeoutExpired:
            raise ManagerError(f"repmgr cluster show on {name} did not answer within 10 s") from None
        text = proc.stdout.decode(errors="replace")
        if not text.strip():
            raise ManagerError(f"repmgr cluster show on {name} failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()[:300]}")
        return text

    def _parse(self, text: str) -> list[Member]:
        # columns: node_id, connection status (0 running, -1 unreachable, -2 unknown),
        # recovery status (0 primary, 1 in recovery, -1 unknown)
        by_id = {i: n for n, i in self.ids.items()}
        out: dict[str, Member] = {}
        for row in csv.reader(io.StringIO(text)):
            if len(row) < 3 or not row[0].strip().lstrip("-").isdigit():
                continue
            nid, conn, rec = int(row[0]), int(row[1]), int(row[2])
            name = by_id.get(nid)
            if name is None or name == WITNESS:
                continue
            role = "down" if conn != 0 else "primary" if rec == 0 else "standby" if rec == 1 else "unknown"
            state = {0: "running", -1: "unreachable", -2: "unknown"}.get(conn, str(conn))
            out[name] = Member(name, role, f"{role} {state}", conn == 0 and role in ("primary", "standby"),
                               {"node_id": nid, "connection": conn, "recovery": rec})
        for d in self.env.nodes:
            out.setdefault(d.name, Member(d.name, "down", "not registered", False, {}))
        return [out[d.name] for d in self.env.nodes]

    # --------------------------------------------------------------- actions
    def switchover(self, to: str | None) -> dict[str, Any]:
        raise ManagerUnsupported("repmgr's switchover (repmgr standby switchover) runs commands on the "
                                 "old primary over SSH, which walsim does not set up on a loopback "
                                 "cluster; use kill or isolate steps instead")

    def pause(self) -> None:
        self._repmgr(self.primary() or self.env.primary, "service", "pause")

    def resume(self) -> None:
        self._repmgr(self.primary() or self.env.primary, "service", "unpause")

    def check_alive(self) -> None:
        super().check_alive()


#: settings applied once every standby replicates
DEFERRED = ("synchronous_standby_names",)
#: settings that differ per node: on the pg_ctl command line, never in a copied file
PER_NODE = ("port", "listen_addresses", "cluster_name", "unix_socket_directories", "log_directory",
            "log_filename")


def _command(argv: list[str]) -> str:
    """A shell command line for repmgr's service commands: the ``-o`` options in double
    quotes (repmgr.conf values are single-quoted), every other word plain."""
    out = []
    for a in argv:
        if " " in a:
            out.append('"' + a + '"')
        elif any(c in a for c in "'\"\\$`;&|<>"):
            raise ManagerError(f"repmgr: {a!r} cannot go on a service command line")
        else:
            out.append(a)
    return " ".join(out)


def _flat(v: object) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def _host_port(conninfo: str) -> tuple[str, int]:
    parts = dict(p.split("=", 1) for p in conninfo.split())
    return parts["host"], int(parts["port"])
