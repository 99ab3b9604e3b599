"""The network fault layer: walsim-netd between nodes, and its ``fault = "..."`` kinds.

A scenario declares links in ``[links]`` (``to`` a node, a ``role``, a
``proto``) and streams a standby ``via`` a link; the layer starts walsim-netd
when the scenario has links, tells it every member's address (each node has
its own, see :mod:`walsim.pg.addresses`) so that it names the node that
opened each connection, creates each link once its ``to`` node is built, and
turns ``fault = "<kind>"`` steps with ``link``, ``dir`` (``down`` = server to
client, the WAL direction; ``up`` = client to server, the status updates;
``both``), ``src`` (the nodes whose connections it acts on), an optional
trigger and an optional duration into netd rules.  The fault's step id is its
netd id, so ``heal = "<id>"`` removes it and the trace names it.
``fault = "isolate"`` expands into one partition per link that carries
traffic between a node and the members named in ``from``
(:mod:`walsim.faults.isolate`), healed as one fault.

Other layers (an HA manager's) route their traffic through the same daemon
with :meth:`NetLayer.add_path` and :meth:`NetLayer.declare_member`, so that
``isolate`` covers their links too.  At the end the daemon's trace becomes
``faults/netd.jsonl``, each line with ``t`` on the run's clock and
``lsn``/``lsn_text`` where it names one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from walsim.core.errors import HarnessError, NetdError
from walsim.core.lsn import format_lsn, parse_lsn
from walsim.core.paths import find_program, not_found, program_candidates
from walsim.faults.base import FaultLayer, apply_step
from walsim.faults.isolate import GROUPS, MEMBER_KINDS, NO_MEMBER, NothingToCut, PathInfo, isolate_rules
from walsim.scenario import schema as s
from walsim.scenario.model import LINK_PROTOS, LINK_ROLES
from walsim.scenario.registry import StepKind, step_kind
from walsim.sim.netd import Netd

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import NodeSpec, Scenario, Step

LAYER = "netd"
MESSAGES = ("k", "r", "h")
#: ``src = "clients"``: connections opened by an address that is no member's
CLIENTS = "clients"


# ------------------------------------------------------------------ kinds

def _lsn_or_relative(v: Any, _n: s.Names) -> int | tuple[str, int]:
    """``"X/Y"`` (an LSN) or ``"+64kB"`` (relative: resolved when the fault is
    installed, against the current primary's WAL insert position)."""
    if isinstance(v, str) and v.strip().startswith("+"):
        return ("+", s.parse_size(v.strip()[1:]))
    return s.parse_lsn(v)


def _src(v: Any, names: s.Names) -> list[str]:
    """A node name, ``"clients"``, or an array of them."""
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        raise s.Invalid(f"expected a node name, \"{CLIENTS}\" or a non-empty array of them, "
                        f"got {s._type_name(v)}")
    out = []
    for i, item in enumerate(items):
        where = "" if isinstance(v, str) else f"element [{i}]: "
        if not isinstance(item, str):
            raise s.Invalid(f"{where}expected a node name or \"{CLIENTS}\", got {s._type_name(item)}")
        if item != CLIENTS and item not in names.nodes:
            raise s.Invalid(f"{where}unknown node {item!r} (declared: {', '.join(sorted(names.nodes))}; "
                            f"or \"{CLIENTS}\")")
        out.append(item)
    return list(dict.fromkeys(out))


def _common(dir_default: str = "down") -> dict[str, s.Field]:
    return {
        "link": s.link_ref(required=True),
        "dir": s.choice(("up", "down", "both"), default=dir_default,
                        help="down: upstream to standby (WAL); up: standby to upstream (replies)"),
        "app": s.string(help="only connections whose application_name is this"),
        "src": s.Field(_src, False, None, "only connections opened by these nodes (\"clients\": by an "
                       "address that is no member's)", "node name, \"clients\", or an array of them"),
        "at_lsn": s.Field(_lsn_or_relative, False, None,
                          "trigger (corrupt: position): an LSN \"X/Y\", or \"+SIZE\" past the "
                          "primary's insert LSN when the fault is installed", "LSN or +size"),
        "after_bytes": s.size(help="trigger: after this many bytes in the direction"),
        "after_messages": s.integer(lo=0, help="trigger: after this many XLogData messages"),
        "duration": s.duration(help="remove the fault by itself after this long (default: until healed)"),
    }


def _one_trigger(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = [k for k in ("at_lsn", "after_bytes", "after_messages") if v.get(k) is not None]
    if len(given) > 1:
        return [(given[1], f"give at most one trigger (found {', '.join(given)})")]
    return []


def _net(name: str, fields: Mapping[str, s.Field], doc: str,
         check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None,
         dir_default: str = "down") -> StepKind:
    merged = _common(dir_default)
    merged.update(fields)

    def full_check(v: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = _one_trigger(v)
        if check:
            out += check(v)
        return out
    return step_kind("fault", name, merged, doc, check=full_check, layer=LAYER, run=apply_step,
                     target="link")


def _check_corrupt(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    where = [k for k in ("at_lsn", "offset", "nth_message") if v.get(k) is not None]
    if len(where) != 1:
        return [("at_lsn", "corrupt needs exactly one of at_lsn, offset or nth_message")]
    if v.get("dir") == "both":
        return [("dir", "corrupt applies to one direction: down (WAL) or up")]
    return []


KINDS = [
    _net("delay", {"delay": s.duration(required=True), "jitter": s.duration(default=0.0)},
         "add latency (plus seeded jitter) to every chunk, order preserved"),
    _net("bandwidth", {"rate": s.size(required=True, help="bytes per second, e.g. \"256kB\"")},
         "limit throughput with a token bucket",
         check=lambda v: [("rate", "a bandwidth of 0 is a stall: use fault = \"stall\"")]
         if v.get("rate") == 0 else []),
    _net("stall", {"discard": s.boolean(default=False, help="drop held bytes instead of releasing them on heal")},
         "blackhole: the connection stays open and nothing moves"),
    _net("partition", {}, "stall plus refusing new connections", dir_default="both"),
    _net("refuse", {}, "close new connections at once"),
    _net("reset", {}, "reset (RST) the link's connections when the fault fires"),
    _net("close", {}, "close (FIN) the link's connections when the fault fires"),
    _net("cut_after", {"bytes": s.size(required=True)}, "close a connection after N bytes"),
    _net("corrupt", {
        "offset": s.size(help="byte offset in the direction's stream"),
        "nth_message": s.integer(lo=1, help="the Nth XLogData message"),
        "bits": s.integer(default=1, lo=1, hi=8, help="how many bits of the byte to flip (chosen by the seed)"),
    }, "flip bits inside XLogData at an LSN (or at a stream offset / in the Nth message)",
        check=_check_corrupt),
    _net("drop", {"messages": s.list_of(s.choice(MESSAGES), required=True, min_len=1,
                                        help="k keepalive, r status update, h hot standby feedback")},
         "drop whole replication messages of the given types (framing stays valid)", dir_default="up"),
    _net("delay_messages", {"messages": s.list_of(s.choice(MESSAGES), required=True, min_len=1),
                            "delay": s.duration(required=True)},
         "delay replication messages of the given types", dir_default="up"),
    step_kind("fault", "isolate", {
        "node": s.node_ref(required=True, help="the node to isolate"),
        "from": s.list_of(s.choice(GROUPS), default=["peers"], min_len=1,
                          help="what it is cut from: peers (the other nodes: replication, pg_rewind, "
                               "a manager's REST calls and health checks), replication (only that), "
                               "clients (addresses that are no member's), dcs, monitor, witness"),
        "duration": s.duration(help="heal by itself after this long (default: until healed)"),
    }, "cut a node off from its peers, its clients, the DCS, the monitor or the witness: every "
       "connection between them through walsim-netd is partitioned, on any link (netd matches "
       "connections by the node that opened them)", layer=LAYER, run=apply_step, target="node"),
]


# ------------------------------------------------------------------ rules

def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def netd_rules(fid: str, kind: str, v: Mapping[str, Any]) -> list[tuple[str, str, dict[str, object]]]:
    """The walsim-netd rules ``(rule id, netd kind, parameters)`` of one validated fault step
    (``at_lsn`` already absolute)."""
    common: dict[str, object] = {"dir": v.get("dir"), "app": v.get("app")}
    if v.get("src"):
        common["src"] = [NO_MEMBER if x == CLIENTS else x for x in v["src"]]
    if v.get("at_lsn") is not None and kind != "corrupt":
        common["after_lsn"] = format_lsn(int(v["at_lsn"]))
    if v.get("after_bytes") is not None:
        common["after_bytes"] = int(v["after_bytes"])
    if v.get("after_messages") is not None:
        common["after_msgs"] = int(v["after_messages"])
        common["count_msg"] = "w"
    if v.get("duration") is not None:
        common["duration"] = _ms(float(v["duration"]))
    if kind == "delay":
        return [(fid, "delay", {**common, "delay": _ms(float(v["delay"])),
                                "jitter": _ms(float(v.get("jitter") or 0))})]
    if kind == "bandwidth":
        return [(fid, "bandwidth", {**common, "rate": int(v["rate"])})]
    if kind == "stall":
        return [(fid, "stall", {**common, "discard": bool(v.get("discard"))})]
    if kind == "cut_after":
        return [(fid, "cut_after", {**common, "bytes": int(v["bytes"])})]
    if kind in ("partition", "refuse", "reset", "close"):
        return [(fid, kind, common)]
    if kind == "corrupt":
        p = dict(common, bits=int(v.get("bits") or 1))
        if v.get("at_lsn") is not None:
            p["at_lsn"] = format_lsn(int(v["at_lsn"]))
        elif v.get("offset") is not None:
            p["at_offset"] = int(v["offset"])
        else:
            p["nth"] = int(v["nth_message"])
        return [(fid, "corrupt", p)]
    if kind in ("drop", "delay_messages"):
        out = []
        for i, m in enumerate(v["messages"]):
            rid = fid if i == 0 else f"{fid}.{m}"
            p = dict(common, msg=m)
            if kind == "drop":
                out.append((rid, "drop", p))
            else:
                out.append((rid, "delay", dict(p, delay=_ms(float(v["delay"])))))
        return out
    raise NetdError(f"fault kind {kind!r} is not a walsim-netd fault")


# ------------------------------------------------------------------ layer

class NetLayer(FaultLayer):
    """walsim-netd for the scenario's ``[links]``, other layers' paths, and network faults."""

    name = LAYER
    facility = "netd"
    kinds = KINDS

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.netd: Netd | None = None
        self.workdir: Path | None = None
        self.links: dict[str, tuple[str, int]] = {}
        self._rule_ids: dict[str, list[str]] = {}
        #: link -> {"to", "target", "role", "proto", "listen"}: every link this run made
        self._paths: dict[str, dict[str, Any]] = {}
        #: member -> kind ("node", "dcs", "monitor", "witness")
        self.members: dict[str, str] = {}
        #: (member, address) pairs netd knows
        self._told: set[tuple[str, str]] = set()

    @classmethod
    def used_by(cls, scenario: "Scenario") -> bool:
        return bool(scenario.links) or super().used_by(scenario)

    @classmethod
    def unavailable(cls) -> str | None:
        if find_program("walsim-netd") is not None:
            return None
        return not_found("walsim-netd", program_candidates("walsim-netd"))

    def setup(self) -> None:
        # The control socket's path must fit in sun_path (108 bytes): the daemon
        # works in a short temporary directory; its log and trace are copied into
        # the run directory by collect().
        self.workdir = Path(tempfile.mkdtemp(prefix="walsim-netd-"))
        self.netd = Netd.start(self.workdir, seed=int(self.ctx.seed))
        for name in self.ctx.scenario.nodes:
            self.members[name] = "node"
            if self.ctx.cluster is not None:
                # addresses now, in the scenario's order: netd names a node's very
                # first connection (its base backup) already
                self.ctx.cluster.address(name)
        self.sync_members()

    def _running(self) -> Netd:
        if self.netd is None:
            raise HarnessError("walsim-netd is not running")
        return self.netd

    # ------------------------------------------------------------ members
    def sync_members(self) -> None:
        """Tell walsim-netd every member's address it does not know yet (``node add``),
        so that it names the member that opened each connection."""
        cluster = getattr(self.ctx, "cluster", None)
        if self.netd is None or cluster is None or not getattr(cluster, "node_addresses", False):
            return
        for name, addr in cluster.addresses().items():
            if (name, addr) not in self._told:
                self.netd.add_node(name, addr)
                self._told.add((name, addr))

    def declare_member(self, name: str, kind: str) -> None:
        """A member beside the nodes (an HA manager's DCS, monitor, witness): isolate's
        ``from = ["dcs"]`` and the like cut the node off from the members of that kind.
        Its address comes from ``cluster.address(name)``."""
        if kind not in MEMBER_KINDS:
            raise HarnessError(f"member {name}: kind {kind!r} is not one of {', '.join(MEMBER_KINDS)}")
        self.members[name] = kind
        self.sync_members()

    # -------------------------------------------------------------- paths
    def add_path(self, name: str, to: tuple[str, int], *, target: str, role: str, proto: str = "pg",
                 listen: tuple[str, int] | None = None) -> tuple[str, int]:
        """A walsim-netd link forwarding to ``to`` (``host, port``), which leads to member
        ``target`` and carries ``role`` traffic; returns the address to connect to.
        ``listen``: where it listens (default 127.0.0.1, a port netd picks)."""
        if role not in LINK_ROLES:
            raise HarnessError(f"link {name}: role {role!r} is not one of {', '.join(LINK_ROLES)}")
        if proto not in LINK_PROTOS:
            raise HarnessError(f"link {name}: proto {proto!r} is not one of {', '.join(LINK_PROTOS)}")
        if name in self._paths:
            raise HarnessError(f"link {name} exists already")
        netd = self._running()
        self.sync_members()
        lhost, lport = listen if listen is not None else ("127.0.0.1", 0)
        addr = netd.add_link(name, to[0], int(to[1]), listen_host=lhost, listen_port=int(lport),
                             proto=proto if proto != "pg" else None)
        self._paths[name] = {"to": f"{to[0]}:{to[1]}", "target": target, "role": role, "proto": proto,
                             "listen": f"{addr[0]}:{addr[1]}"}
        self.links[name] = addr
        self.ctx.events.event("link", name=name, **self._paths[name])
        return addr

    def paths(self) -> dict[str, dict[str, Any]]:
        """``{link: {"to", "target", "role", "proto", "listen"}}`` of every link made so far."""
        return {k: dict(v) for k, v in self._paths.items()}

    def _scenario_link(self, link: str) -> tuple[str, int]:
        spec = self.ctx.scenario.links[link]
        if link not in self.links:
            node = self.ctx.node(spec.to)
            self.add_path(link, (node.host, int(node.port)), target=spec.to, role=spec.role,
                          proto=spec.proto)
        return self.links[link]

    # -------------------------------------------------------------- hooks
    def prepare_node(self, spec: "NodeSpec") -> bool:
        """A node is built: netd learns its address, and the links leading to it exist."""
        if self.netd is None:
            return False
        self.sync_members()
        for name, link in self.ctx.scenario.links.items():
            if link.to == spec.name:
                self._scenario_link(name)
        return False

    def route(self, link: str, upstream: str) -> tuple[str, int] | None:
        spec = self.ctx.scenario.links.get(link)
        if spec is None:
            return None
        if spec.to != upstream:
            raise HarnessError(f"link {link} forwards to {spec.to}, not to {upstream}")
        if self.netd is None:
            raise HarnessError(f"link {link} needs walsim-netd, which is not running")
        return self._scenario_link(link)

    def observe(self) -> dict[str, tuple[Callable[[], Any], float]]:
        netd = self.netd
        return {} if netd is None else {"netd": (netd.stats, 0.5)}

    def apply(self, step: "Step") -> dict[str, Any]:
        if self.netd is None:
            raise HarnessError("this scenario uses network faults but walsim-netd is not running "
                               "(declare the link in [links] and stream through it with via)")
        self.sync_members()
        if step.kind == "isolate":
            return self._isolate(step)
        values = dict(step.values)
        at = values.get("at_lsn")
        warning = None
        if isinstance(at, tuple):  # "+SIZE": past the primary's insert position, now
            values["at_lsn"] = int(self.ctx.node(self.ctx.primary).lsn("insert")) + at[1]
        elif at is not None:
            now = int(self.ctx.node(self.ctx.primary).lsn("insert"))
            if int(at) <= now:
                what = (f"{step.path}.at_lsn: {format_lsn(int(at))} is already behind {self.ctx.primary}'s WAL "
                        f"insert position {format_lsn(now)} when the fault is installed")
                if step.kind == "corrupt":
                    raise HarnessError(f"{what}: the corruption would never fire (give a later LSN, or "
                                       "\"+SIZE\": that far past the insert position)")
                warning = f"{what}: the fault fires at once"
                self.ctx.events.event("warning", id=step.id, message=warning)
        installed: list[str] = []
        details = []
        try:
            for rid, nkind, params in netd_rules(step.id, step.kind, values):
                details.append(self.netd.add_fault(rid, link=values["link"], kind=nkind, **params))
                installed.append(rid)
        except BaseException:
            for rid in installed:
                self.netd.del_fault(rid)
            raise
        self._rule_ids[step.id] = installed
        detail: dict[str, Any] = {"netd": details}
        if values.get("at_lsn") is not None:
            detail["at_lsn"] = format_lsn(int(values["at_lsn"]))
        if warning:
            detail["warning"] = warning
        return detail

    def _direct_streams(self, node: str) -> list[str]:
        """Standbys that stream from ``node`` (or that ``node`` streams from) without a
        walsim-netd link in between: nothing netd does can cut them."""
        out = []
        for n in self.ctx.cluster.nodes.values():
            up = n.upstream
            if up is None or n.upstream_address is not None:
                continue
            if node in (n.name, up.name):
                out.append(f"{n.name} streams from {up.name}")
        return out

    def _isolate(self, step: "Step") -> dict[str, Any]:
        v = step.values
        node, groups = v["node"], list(v["from"])
        netd = self._running()
        if not getattr(self.ctx.cluster, "source_binding", False):
            raise HarnessError(f"{step.path} (isolate {node}): needs every node to connect from its "
                               "own address (node addresses and libwalsim-bind.so: run make)")
        if "replication" in groups or "peers" in groups:
            direct = self._direct_streams(node)
            if direct:
                raise HarnessError(f"{step.path} (isolate {node}): {'; '.join(direct)} directly, not "
                                   "through walsim-netd: isolate cannot cut that (stream it via a link "
                                   "with role = \"replication\")")
        paths = {k: PathInfo(m["target"], m["role"], m["proto"]) for k, m in self._paths.items()}
        try:
            rules = isolate_rules(node, groups, dict(self.members), paths)
        except NothingToCut as exc:
            raise HarnessError(f"{step.path} (isolate {node} from {', '.join(groups)}): nothing to cut "
                               f"for {exc}") from None
        installed: list[str] = []
        duration = _ms(float(v["duration"])) if v.get("duration") is not None else None
        try:
            for rule in rules:
                rid = f"{step.id}.{rule.link}"
                netd.add_fault(rid, link=rule.link, kind="partition", dir="both", src=rule.src,
                               duration=duration)
                installed.append(rid)
        except BaseException:
            for rid in installed:
                netd.del_fault(rid)
            raise
        self._rule_ids[step.id] = installed
        return {"node": node, "from": groups, "rules": [r.to_json() for r in rules]}

    def heal(self, fault_id: str) -> None:
        if self.netd is None:
            return
        for rid in self._rule_ids.pop(fault_id, [fault_id]):
            try:
                self.netd.del_fault(rid)
            except NetdError:
                pass  # expired by its duration and already gone is fine

    def teardown(self) -> None:
        if self.netd is not None:
            self.netd.stop()

    def collect(self, faults_dir: Path) -> None:
        """``faults/netd.jsonl`` (each line gains ``t`` on the run clock and, where it
        names an LSN, ``lsn`` as an integer with the text in ``lsn_text``), plus the
        daemon's raw trace and log."""
        if self.workdir is None:
            return
        faults_dir.mkdir(parents=True, exist_ok=True)
        if self.netd is not None:
            start_mono = self.ctx.clock.start_mono
            with open(faults_dir / "netd.jsonl", "w") as out:
                for rec in self.netd.trace():
                    if "t_ns" in rec:
                        rec["t"] = round(rec["t_ns"] / 1e9 - start_mono, 4)
                    text = rec.get("at_lsn") or rec.get("lsn")
                    if isinstance(text, str) and "/" in text:
                        rec["lsn_text"] = text
                        rec["lsn"] = parse_lsn(text)
                    out.write(json.dumps(rec) + "\n")
        for name, dest in (("netd.log", "netd.log"), ("netd-trace.jsonl", "netd-raw-trace.jsonl")):
            src = self.workdir / name
            if src.exists():
                shutil.copy(src, faults_dir / dest)
        shutil.rmtree(self.workdir, ignore_errors=True)
