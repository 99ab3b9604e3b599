"""Patroni (Debian's 3.0.2) with a single-member etcd (3.4) as its DCS.

Layout under the cluster's ``manager/`` directory: ``etcd/`` (data and
``etcd.log``), ``NODE.yml`` (Patroni's configuration, JSON, which YAML
reads), ``NODE.log`` (Patroni's output).  PostgreSQL's data directory is
the node's usual ``NODE/data``; its log is ``NODE/postgresql.log``
(logging collector), its socket directory ``NODE/``.

Paths: each node reaches etcd through its own link (``NODE-dcs``: cutting
it cuts that node alone from the DCS), publishes its PostgreSQL and REST API
through links (``NODE-pg``, ``NODE-api``: what peers, replicas and
pg_rewind use, since Patroni puts ``connect_address`` in the DCS), and
clients reach it through ``NODE-client``.  ``use_proxies`` keeps Patroni's
etcd3 client on the configured address instead of the members etcd
advertises (which would bypass the link).

Test timings by default (``[manager]`` keys, in seconds): ``ttl = 10``,
``loop_wait = 2``, ``retry_timeout = 3``; ``synchronous_mode`` and
``synchronous_mode_strict`` map to Patroni's; ``config`` is merged into every
node's configuration (deep merge), e.g. ``config.bootstrap.dcs.maximum_lag_on_failover``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Mapping

from walsim.core.errors import ManagerError
from walsim.core.timeouts import wait_until
from walsim.managers.base import Manager, Member, NodeDecl
from walsim.scenario import schema as s

SCOPE = "walsim"


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def http_json(url: str, *, method: str = "GET", body: Any = None, timeout: float = 3.0) -> tuple[int, Any]:
    """One HTTP request to a manager's REST API; (status, decoded JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read().decode(errors="replace")
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode(errors="replace")
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


class PatroniManager(Manager):
    kind = "patroni"
    doc = ("Patroni with a single-member etcd as DCS; every node's DCS, REST API and "
           "PostgreSQL traffic goes through its own path")
    programs = {"patroni": "patroni", "etcd": "etcd-server", "etcdctl": "etcd-client"}
    fields = {
        "ttl": s.integer(default=10, lo=5, help="Patroni's leader key TTL, seconds"),
        "loop_wait": s.integer(default=2, lo=1, help="seconds between Patroni's HA loops"),
        "retry_timeout": s.integer(default=3, lo=1, help="DCS and PostgreSQL retry deadline, seconds"),
        "synchronous_mode": s.boolean(default=False, help="Patroni's synchronous_mode"),
        "synchronous_mode_strict": s.boolean(default=False,
                                             help="Patroni's synchronous_mode_strict (no writes without "
                                                  "a synchronous standby)"),
    }
    stop_order = ("manager",)
    after_postgres = ("dcs",)

    @classmethod
    def check_scenario(cls, values: Mapping[str, Any], durability: str,
                       settings: Mapping[str, Any]) -> list[tuple[str, str]]:
        if durability in ("sync", "quorum") and not values.get("synchronous_mode"):
            return [("durability", f"durability = \"{durability}\" needs Patroni's synchronous_mode "
                     "(set synchronous_mode = true in [manager]); Patroni owns synchronous_standby_names")]
        if settings.get("synchronous_standby_names"):
            return [("settings.synchronous_standby_names", "Patroni sets synchronous_standby_names itself "
                     "(synchronous_mode in [manager]); remove it from the settings")]
        return []

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.api: dict[str, tuple[str, int]] = {}       # REST API, as peers reach it
        self.api_direct: dict[str, tuple[str, int]] = {}
        self.pg_link: dict[str, tuple[str, int]] = {}
        self.dcs_direct: tuple[str, int] | None = None
        self._reservations: list[Any] = []

    def _port(self) -> int:
        res = self.cluster.ports.reserve()
        self._reservations.append(res)
        return res.port

    # ------------------------------------------------------------ provision
    def provision(self) -> None:
        for prog in self.programs:
            self.program(prog)
        self.cluster.set_superuser_password(self.superuser_password)
        self._start_etcd()
        for decl in self.env.nodes:
            self._configure(decl)

    def _start_etcd(self) -> None:
        d = self.runas.makedirs(self.dir / "etcd", 0o700)
        host = self.paths.member("etcd", "dcs")
        client, peer = self._port(), self._port()
        self.dcs_direct = (host, client)
        argv = [self.program("etcd"), "--name", "dcs", "--data-dir", str(d / "data"),
                "--listen-client-urls", f"http://{host}:{client}",
                "--advertise-client-urls", f"http://{host}:{client}",
                "--listen-peer-urls", f"http://{host}:{peer}",
                "--initial-advertise-peer-urls", f"http://{host}:{peer}",
                "--initial-cluster", f"dcs=http://{host}:{peer}",
                "--initial-cluster-state", "new", "--enable-v2=true"]
        self.sup.start("dcs", None, argv, self.dir / "etcd.log", cwd=d)

        def healthy() -> bool:
            self.check_alive()
            st, body = http_json(f"http://{host}:{client}/health", timeout=1)
            return st == 200 and isinstance(body, dict) and str(body.get("health")) == "true"
        wait_until(healthy, what="etcd to answer /health", timeout=60,
                   tolerate=(OSError,), logs=[self.dir / "etcd.log"], interval=0.1)

    def _configure(self, decl: NodeDecl) -> None:
        node = self.new_node(decl)
        name = node.name
        host = self.paths.host(name)
        api_port = self._port()
        self.api_direct[name] = (host, api_port)
        self.api[name] = self.paths.link(f"{name}-api", (host, api_port), proto="raw", path="api",
                                         owner=None, target=name)
        self.pg_link[name] = self.paths.link(f"{name}-pg", (host, node.port), proto="pg", path="pg",
                                             owner=None, target=name)
        self.client_path(node)
        assert self.dcs_direct is not None
        dcs = self.paths.link(f"{name}-dcs", self.dcs_direct, proto="raw", path="dcs", owner=name,
                              target="etcd")
        v = self.values
        settings = self.node_settings(decl, node)
        params = {k: _pgval(x) for k, x in settings.items()}
        cfg: dict[str, Any] = {
            "scope": SCOPE,
            "namespace": "/walsim/",
            "name": name,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {"listen": f"{host}:{api_port}", "connect_address": f"{self.api[name][0]}:{self.api[name][1]}"},
            "etcd3": {"hosts": [f"{dcs[0]}:{dcs[1]}"], "use_proxies": True, "protocol": "http"},
            "bootstrap": {
                "dcs": {
                    "ttl": v["ttl"], "loop_wait": v["loop_wait"], "retry_timeout": v["retry_timeout"],
                    "maximum_lag_on_failover": 1 << 30,
                    "synchronous_mode": v["synchronous_mode"],
                    "synchronous_mode_strict": v["synchronous_mode_strict"],
                    "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                   "parameters": {k: params[k] for k in
                                                  ("wal_level", "hot_standby", "wal_log_hints",
                                                   "max_wal_senders", "max_replication_slots",
                                                   "wal_keep_size", "max_connections")}},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{host}:{node.port}",
                "connect_address": f"{self.pg_link[name][0]}:{self.pg_link[name][1]}",
                "data_dir": str(node.data_dir),
                "bin_dir": str(self.cluster.pg.bindir),
                "pgpass": str(node.base_dir / "patroni.pgpass"),
                "authentication": {
                    "superuser": {"username": self.cluster.superuser, "password": self.superuser_password},
                    "replication": {"username": self.cluster.replication_user,
                                    "password": self.cluster.replication_password},
                    "rewind": {"username": self.cluster.superuser, "password": self.superuser_password},
                },
                "parameters": params,
                "pg_hba": self.hba_lines(),
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }
        cfg = deep_merge(cfg, v.get("config") or {})
        self.runas.write_file(self.dir / f"{name}.yml", json.dumps(cfg, indent=1) + "\n", 0o600)

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        # The scenario's primary starts first and takes the leader key at bootstrap;
        # the others clone from it once it is up.
        order = [self.env.primary] + [d.name for d in self.env.nodes if d.name != self.env.primary]
        self._start_one(order[0])
        wait_until(lambda: (self.check_alive(), self._leader_from(order[0]))[1],
                   what=f"patroni: {order[0]} to bootstrap and take the leader key",
                   timeout=self.values["ready_timeout"],
                   tolerate=(OSError,), logs=self.logs(), interval=0.2, max_interval=1.0)
        for name in order[1:]:
            self._start_one(name)

    def _start_one(self, name: str) -> None:
        self.sup.start("manager", name, [self.program("patroni"), str(self.dir / f"{name}.yml")],
                       self.dir / f"{name}.log", cwd=self.cluster.node(name).base_dir,
                       env=self.paths.source_env(name))

    def _leader_from(self, name: str) -> bool:
        try:
            st, body = http_json(self._url(name, "/cluster"), timeout=1)
        except OSError:
            return False
        return st == 200 and any(m.get("role") == "leader" and m.get("state") == "running"
                                 for m in (body or {}).get("members", []))

    def _url(self, name: str, path: str) -> str:
        host, port = self.api_direct[name]
        return f"http://{host}:{port}{path}"

    # ------------------------------------------------------------- the view
    def members(self) -> list[Member]:
        """Patroni's ``/cluster``, asked of each node's REST API in turn until one answers."""
        last: Exception | None = None
        for name in self.api_direct:
            try:
                st, body = http_json(self._url(name, "/cluster"), timeout=2)
            except OSError as exc:
                last = exc
                continue
            if st != 200 or not isinstance(body, dict):
                last = ManagerError(f"/cluster on {name} answered {st}: {str(body)[:200]}")
                continue
            out = []
            seen = set()
            for m in body.get("members", []):
                role = m.get("role", "")
                state = m.get("state", "")
                norm = ("primary" if role in ("leader", "master", "standby_leader") else
                        "standby" if role in ("replica", "sync_standby") else "unknown")
                if state not in ("running", "streaming"):
                    norm = "down" if state in ("stopped", "crashed", "start failed") else norm
                healthy = (state == "running" and norm == "primary") or \
                          (norm == "standby" and state in ("running", "streaming") and m.get("lag") != "unknown")
                out.append(Member(m.get("name", "?"), norm, f"{role} {state}".strip(), healthy, m))
                seen.add(m.get("name"))
            for d in self.env.nodes:
                if d.name not in seen:
                    out.append(Member(d.name, "down", "not a member", False, {}))
            return out
        raise ManagerError(f"patroni: no REST API answered /cluster ({last})")

    def sync_standby(self) -> str | None:
        for m in self.members():
            if m.raw.get("role") == "sync_standby":
                return m.name
        return super().sync_standby()

    # --------------------------------------------------------------- actions
    def _ask_any(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        last: Any = None
        for name in self.api_direct:
            try:
                return http_json(self._url(name, path), method=method, body=body, timeout=30)
            except OSError as exc:
                last = exc
        raise ManagerError(f"patroni: no REST API answered {method} {path} ({last})")

    def switchover(self, to: str | None) -> dict[str, Any]:
        leader = self.primary()
        if leader is None:
            raise ManagerError("patroni: no leader to switch over from")
        body: dict[str, Any] = {"leader": leader}
        if to:
            body["candidate"] = to
        st, resp = self._ask_any("POST", "/switchover", body)
        if st != 200:
            raise ManagerError(f"patroni: switchover from {leader} refused ({st}): {resp}")
        return {"from": leader, "to": to, "answer": resp}

    def pause(self) -> None:
        st, resp = self._ask_any("PATCH", "/config", {"pause": True})
        if st != 200:
            raise ManagerError(f"patroni: pause refused ({st}): {resp}")

    def resume(self) -> None:
        st, resp = self._ask_any("PATCH", "/config", {"pause": False})
        if st != 200:
            raise ManagerError(f"patroni: resume refused ({st}): {resp}")

    def stop(self) -> list[str]:
        problems = super().stop()
        for res in self._reservations:
            res.release()
        return problems


def _pgval(v: object) -> object:
    if isinstance(v, bool):
        return "on" if v else "off"
    return v
