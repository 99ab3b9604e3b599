"""A user's own HA scripts as a manager: ``[manager] kind = "command"``.

The scenario gives argument vectors (never shell strings); ``{node}`` in an
argument is replaced by a node's name:

- ``setup`` (optional): run once, before anything starts: build the cluster
  (initdb, base backups, configuration) where walsim says;
- ``start``: run once per node, kept running under the supervisor: the
  node's manager (it starts that node's PostgreSQL and keeps it; when it
  exits, walsim reports it with the end of its log);
- ``members``: run whenever walsim asks the manager's view; prints one line
  per node, ``NAME ROLE [healthy|unhealthy]`` (ROLE: primary, standby, down),
  or a JSON array of ``{"name", "role", "healthy"}``;
- ``switchover`` (optional): run for ``do = "switchover"`` with ``{node}`` the
  candidate (empty when the step names none);
- ``stop`` (optional): run once per node at teardown before its ``start``
  process is signalled.

Every command runs as the PostgreSQL user with the environment describing
the cluster: ``WALSIM_NODES`` (the node names), and for each node ``N``:
``WALSIM_N_HOST`` and ``WALSIM_N_PORT`` (the node's own loopback address and
the port its PostgreSQL must listen on: listen on both that address and
127.0.0.1),
``WALSIM_N_DATA`` (its data directory), ``WALSIM_N_DIR`` (its directory: put
the socket there), ``WALSIM_N_LOG`` (where its server log must go),
``WALSIM_N_PEER`` (``host:port`` through which peers must reach it: replicate
from there), ``WALSIM_N_ROLE`` (its initial role); and ``WALSIM_PRIMARY``,
``WALSIM_BINDIR``, ``WALSIM_PASSFILE`` (passwords of ``postgres`` and of the
replication role ``replicator``: ``WALSIM_SUPERUSER_PASSWORD`` and
``WALSIM_REPLICATION_PASSWORD`` hold them), ``WALSIM_MANAGER_DIR``, and
``WALSIM_HBA_ADDRESSES`` (every address pg_hba.conf must admit: connections
reach a node from its peers' own addresses, through walsim-netd too).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Mapping

from walsim.core.errors import ManagerError
from walsim.managers.base import Manager, Member
from walsim.scenario import schema as s


def _argv(v: Any, _n: Any) -> list[str]:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise s.Invalid("expected an argument vector: a non-empty array of strings, e.g. "
                        "[\"./my-ha\", \"start\", \"{node}\"] (never a shell string)")
    return list(v)


def argv_field(required: bool, help: str) -> s.Field:
    return s.Field(_argv, required, None, help, "array of strings")


class CommandManager(Manager):
    kind = "command"
    doc = "your own HA scripts: commands to set up, start a node's manager, list members, switch over"
    programs: Mapping[str, str] = {}
    fields = {
        "setup": argv_field(False, "run once before the nodes start: build the cluster"),
        "start": argv_field(True, "the manager of node {node}: kept running"),
        "members": argv_field(True, "prints the manager's view: NAME ROLE [healthy|unhealthy] per line, "
                                    "or a JSON array"),
        "switchover": argv_field(False, "planned switchover to {node}"),
        "stop": argv_field(False, "run for each node at teardown, before its start process is signalled"),
        "command_timeout": s.duration(default=60.0, help="deadline of setup, members, switchover, stop"),
    }
    stop_order = ("manager",)
    after_postgres = ()

    @classmethod
    def missing(cls, values: Mapping[str, Any], pg_bindir: Any = None) -> str | None:
        import shutil
        from pathlib import Path
        for key in ("setup", "start", "members", "switchover", "stop"):
            argv = values.get(key)
            if not argv:
                continue
            prog = argv[0]
            if "/" in prog:
                if not Path(prog).exists():
                    return f"[manager] {key}: {prog} does not exist"
            elif shutil.which(prog) is None:
                return f"[manager] {key}: {prog} is not on PATH"
        return None

    def _subst(self, argv: list[str], node: str = "") -> list[str]:
        return [a.replace("{node}", node) for a in argv]

    def _environment(self) -> dict[str, str]:
        env = dict(self.sup.env)
        env.update({
            "WALSIM_NODES": " ".join(d.name for d in self.env.nodes),
            "WALSIM_PRIMARY": self.env.primary,
            "WALSIM_BINDIR": str(self.cluster.pg.bindir),
            "WALSIM_PASSFILE": str(self.cluster.passfile),
            "WALSIM_SUPERUSER_PASSWORD": self.superuser_password,
            "WALSIM_REPLICATION_PASSWORD": self.cluster.replication_password,
            "WALSIM_MANAGER_DIR": str(self.dir),
            "WALSIM_HBA_ADDRESSES": " ".join(dict.fromkeys(["127.0.0.1"] + self.paths.hosts())),
        })
        for d in self.env.nodes:
            n = self.cluster.node(d.name)
            peer = self.peer[d.name]
            env.update({f"WALSIM_{d.name}_HOST": self.paths.host(d.name), f"WALSIM_{d.name}_PORT": str(n.port), f"WALSIM_{d.name}_DATA": str(n.data_dir),
                        f"WALSIM_{d.name}_DIR": str(n.base_dir), f"WALSIM_{d.name}_LOG": str(n.log_file),
                        f"WALSIM_{d.name}_PEER": f"{peer[0]}:{peer[1]}", f"WALSIM_{d.name}_ROLE": d.role})
        return env

    def _run(self, argv: list[str], what: str) -> str:
        self.touch(self.dir / "commands.log")
        proc = self.runas.run(argv, what=what, log=self.dir / "commands.log", env=self._environment(),
                              timeout=self.values["command_timeout"] * self.env.timeout_mult, check=True)
        return proc.stdout.decode(errors="replace")

    def provision(self) -> None:
        self.peer: dict[str, tuple[str, int]] = {}
        for d in self.env.nodes:
            node = self.new_node(d)
            self.peer[d.name] = self.paths.link(f"{d.name}-pg", (node.host, node.port), proto="pg", path="pg",
                                                owner=None, target=d.name)
            self.client_path(node)
        self.cluster.set_superuser_password(self.superuser_password)
        if self.values.get("setup"):
            self._run(self._subst(self.values["setup"]), "[manager] setup")

    def start(self) -> None:
        env = self._environment()
        for d in self.env.nodes:
            log = self.touch(self.dir / f"{d.name}.log")
            self.sup.start("manager", d.name, self._subst(self.values["start"], d.name), log,
                           env={**env, **self.paths.source_env(d.name)}, cwd=self.cluster.node(d.name).base_dir)

    def members(self) -> list[Member]:
        argv = self._subst(self.values["members"])
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=10, env=self.runas.environment(self._environment()),
                                  **self.runas.popen_kwargs())  # type: ignore[call-overload]
        except subprocess.TimeoutExpired:
            raise ManagerError("[manager] members did not answer within 10 s") from None
        except OSError as exc:
            raise ManagerError(f"[manager] members: {exc}") from None
        text = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise ManagerError(f"[manager] members exited with status {proc.returncode}: "
                               f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
        return self.parse_members(text)

    def parse_members(self, text: str) -> list[Member]:
        rows: list[dict[str, Any]] = []
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                rows = [dict(r) for r in json.loads(stripped)]
            except (ValueError, TypeError) as exc:
                raise ManagerError(f"[manager] members printed invalid JSON: {exc}") from None
        else:
            for line in stripped.splitlines():
                parts = line.split()
                if len(parts) < 2:
                    raise ManagerError(f"[manager] members: expected NAME ROLE [healthy|unhealthy], got {line!r}")
                rows.append({"name": parts[0], "role": parts[1],
                             "healthy": (parts[2] != "unhealthy") if len(parts) > 2 else parts[1] != "down"})
        out = {}
        for r in rows:
            role = str(r.get("role"))
            if role not in ("primary", "standby", "down"):
                raise ManagerError(f"[manager] members: role {role!r} of {r.get('name')!r} is not primary, "
                                   "standby or down")
            out[str(r.get("name"))] = Member(str(r.get("name")), role, role, bool(r.get("healthy", True)), r)
        return [out.get(d.name) or Member(d.name, "down", "not listed", False, {}) for d in self.env.nodes]

    def switchover(self, to: str | None) -> dict[str, Any]:
        if not self.values.get("switchover"):
            raise ManagerError("[manager] has no switchover command")
        leader = self.primary()
        out = self._run(self._subst(self.values["switchover"], to or ""), "[manager] switchover")
        return {"from": leader, "to": to, "output": out.strip().splitlines()[-3:]}

    def stop(self) -> list[str]:
        problems = []
        if self.values.get("stop"):
            for d in self.env.nodes:
                try:
                    self._run(self._subst(self.values["stop"], d.name), f"[manager] stop {d.name}")
                except Exception as exc:  # noqa: BLE001 - teardown goes on
                    problems.append(f"[manager] stop {d.name}: {exc}")
        return problems + super().stop()
