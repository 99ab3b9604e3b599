"""The scenario loader: complete validation against a vocabulary.

A scenario is a TOML file (read with :mod:`tomllib`) declaring the cluster to
build, the load to run, the steps (actions, faults, heals, waits) and the
verdicts.  :func:`load_scenario` checks everything before anything starts and
raises :class:`~walsim.core.errors.ScenarioError` listing every problem, each
with the file, the key path (``steps[4].node``) and what was expected.  Step
and verdict kinds, and the node keys of fault layers, come from the
:class:`~walsim.scenario.registry.Vocabulary` it is given
(:func:`walsim.api.load_scenario` passes walsim's own).  The format is
documented in ``docs/scenarios.md``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from walsim.core.errors import ScenarioError
from walsim.core.pgmajors import SUPPORTED
from walsim.scenario import schema as s
from walsim.scenario.explore import load_explore
from walsim.scenario.model import (DURABILITIES, LINK_PROTOS, LINK_ROLES, ROLES, LinkSpec, ManagerSpec, NodeSpec,
                                   Scenario, Step, VerdictSpec, WorkloadSpec)
from walsim.scenario.registry import CATEGORIES, COMMON_FIELDS, VERDICT_COMMON, Vocabulary
from walsim.scenario.schema import Issue, Names

NAME_RE = r"[a-z][a-z0-9_]*"


# ------------------------------------------------------------------ schemas

TOP_FIELDS = {
    "name": s.string(required=True, pattern=r"[a-z0-9][a-z0-9_.-]*",
                     help="short identifier, lower case"),
    "description": s.string(required=True, help="one paragraph: what the scenario demonstrates"),
    "seed": s.integer(default=1, lo=0, hi=(1 << 64) - 1, help="root seed of every fault decision"),
    "durability": s.choice(DURABILITIES, required=True,
                           help="what the configuration promises for acknowledged commits"),
    "settings": s.settings(help="postgresql.conf settings for every node"),
    "observe_interval": s.duration(default=0.1, help="the observer's tick: every node is sampled once "
                                   "per tick (at least 10ms)"),
    "snapshot": s.boolean(default=False, help="copy the nodes from a cached snapshot image (built the "
                          "operator's way once) instead of initdb and pg_basebackup"),
}
TOP_TABLES = ("nodes", "links", "workloads", "steps", "verdicts", "manager", "explore", "cluster")


def _pg_major(v: Any, _names: Names) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v not in SUPPORTED:
        raise s.Invalid(f"expected a PostgreSQL major version ({', '.join(map(str, SUPPORTED))}), got {v!r}")
    return v


CLUSTER_FIELDS = {
    "version": s.Field(_pg_major, False, None,
                       "the PostgreSQL major version of every node (default: WALSIM_PG, else the "
                       "installation found, Debian's 15); `walsim-cli run --pg N` overrides it",
                       "13 to 18"),
}

NODE_FIELDS = {
    "role": s.choice(ROLES, required=True),
    "upstream": s.string(help="the node this standby streams from"),
    "via": s.string(help="a link (see [links]) through which it streams"),
    "slot": s.Field(lambda v, _n: _slot(v), False, None, "true or a slot name", "true or slot name"),
    "settings": s.settings(help="postgresql.conf settings for this node"),
    "hba_method": s.choice(("scram-sha-256", "md5"), default="scram-sha-256",
                           help="pg_hba.conf method of the replication line"),
}

LINK_FIELDS = {
    "to": s.string(required=True, help="the node whose server port this link forwards to"),
    "role": s.choice(LINK_ROLES, default="replication",
                     help="what the link carries (read by isolate and the report)"),
    "proto": s.choice(LINK_PROTOS, default="pg",
                      help="pg: walsim-netd follows the PostgreSQL protocol; raw: opaque bytes, "
                           "byte-level faults only"),
}

_HOST_PORT_RE = re.compile(r"[A-Za-z0-9_.:-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")


def _endpoint(v: Any, names: Names) -> str:
    """A ledger endpoint: a node name, a link name or ``"host:port"``."""
    if not isinstance(v, str):
        raise s.Invalid(f"expected a node name, a link name or \"host:port\", got {s._type_name(v)}")
    if v in names.nodes or v in names.links:
        return v
    if _HOST_PORT_RE.fullmatch(v) and 0 < int(v.rsplit(":", 1)[1]) < 65536:
        return v
    raise s.Invalid(f"expected a node name ({', '.join(sorted(names.nodes)) or 'none declared'}), a link "
                    f"name ({', '.join(sorted(names.links)) or 'none declared'}) or \"host:port\", got {v!r}")


WORKLOAD_FIELDS: dict[str, dict[str, s.Field]] = {
    "ledger": {
        "kind": s.choice(("ledger",), required=True),
        "node": s.node_ref(help="the node the clients write to (required unless endpoints is given; "
                           "with endpoints: the one tried first)"),
        "endpoints": s.list_of(s.Field(_endpoint, False, None, "", "node, link or \"host:port\""),
                               min_len=1,
                               help="where the clients look for the writable node themselves: node "
                                    "names, link names (through walsim-netd) or \"host:port\"; "
                                    "each client tries each in turn and writes to the first that "
                                    "takes writes"),
        "clients": s.integer(default=2, lo=1, hi=64),
        "rate": s.number(default=50.0, lo=0.0,
                         help="commits per second, all clients together (0 = as fast as possible); "
                              "a client held up past 0.1 s (a frozen server) goes on at the rate, it "
                              "does not send its backlog in a burst"),
        "accounts": s.integer(default=16, lo=1, help="rows are spread over this many accounts"),
        "autostart": s.boolean(default=True, help="start before the first step"),
        "connect_timeout": s.duration(default=2.0, help="libpq connect_timeout (at least 2 s); "
                                      "scaled by WALSIM_TIMEOUT_MULT"),
        "statement_timeout": s.duration(default=5.0, help="a commit not answered within this is "
                                        "cut off by the client (indeterminate) and the client "
                                        "reconnects; scaled by WALSIM_TIMEOUT_MULT"),
        "tcp_user_timeout": s.duration(default=5.0, help="libpq tcp_user_timeout; scaled by "
                                       "WALSIM_TIMEOUT_MULT"),
    },
    "reader": {
        "kind": s.choice(("reader",), required=True),
        "nodes": s.list_of(s.node_ref(), required=True, min_len=1,
                           help="standbys to read from (round-robin)"),
        "clients": s.integer(default=1, lo=1, hi=64),
        "rate": s.number(default=20.0, lo=0.0),
        "autostart": s.boolean(default=True),
        "connect_timeout": s.duration(default=2.0),
    },
    "pgbench": {
        "kind": s.choice(("pgbench",), required=True),
        "node": s.node_ref(required=True),
        "clients": s.integer(default=2, lo=1, hi=64),
        "rate": s.number(default=0.0, lo=0.0, help="pgbench --rate (0 = unthrottled)"),
        "scale": s.integer(default=1, lo=1, hi=100),
        "autostart": s.boolean(default=True),
    },
}


def _slot(v: Any) -> str | None:
    if v is True:
        return ""  # a slot named after the node
    if v is False:
        return None
    if isinstance(v, str) and re.fullmatch(NAME_RE, v):
        return v
    raise s.Invalid(f"expected true, false or a slot name ([a-z][a-z0-9_]*), got {v!r}")


# ------------------------------------------------------------------- loader

def load_scenario(path: str | Path, vocabulary: Vocabulary) -> Scenario:
    """Read and validate a scenario file; raises :class:`ScenarioError`."""
    p = Path(path)
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Issue(file, "(file)", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ScenarioError([Issue(file, "(file)", "not UTF-8 text")]) from None
    return parse_scenario(text, vocabulary, file)


def parse_scenario(text: str, vocabulary: Vocabulary, file: str = "<string>") -> Scenario:
    """Validate scenario text; ``file`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([Issue(file, "(syntax)", f"not valid TOML: {exc}")]) from None
    issues: list[Issue] = []
    names = Names()

    top = s.validate_table(doc, TOP_FIELDS, names, file, "", issues, ignore=TOP_TABLES)
    # paths of top-level keys carry a leading dot from validate_table; strip it
    issues[:] = [Issue(i.file, i.path.lstrip("."), i.message) for i in issues]
    if isinstance(top.get("observe_interval"), float) and top["observe_interval"] < 0.01:
        issues.append(Issue(file, "observe_interval", f"{top['observe_interval'] * 1000:g}ms is below the "
                            "observer's shortest tick, 10ms"))

    cluster = _cluster(doc, names, file, issues)
    raw_nodes = _table(doc, "nodes", file, issues, required=True)
    raw_links = _table(doc, "links", file, issues)
    raw_workloads = _table(doc, "workloads", file, issues)
    raw_steps = _array(doc, "steps", file, issues)
    raw_verdicts = _array(doc, "verdicts", file, issues)

    # pass 1: the names everything else may reference
    for kind, raw, target in (("node", raw_nodes, names.nodes), ("link", raw_links, names.links),
                              ("workload", raw_workloads, names.workloads)):
        for key in raw:
            if not re.fullmatch(NAME_RE, key):
                issues.append(Issue(file, f"{kind}s.{key}",
                                    f"{kind} names must match {NAME_RE} (they become file and "
                                    "application names)"))
            target.add(key)
    _collect_step_names(raw_steps, names, file, issues)

    nodes = _load_nodes(raw_nodes, vocabulary, names, file, issues)
    links = _load_links(raw_links, names, file, issues)
    _check_topology(nodes, links, names.nodes, file, issues, names.links)
    settings = top.get("settings") or {}
    durability = top.get("durability")
    manager = _load_manager(doc.get("manager"), vocabulary, names, file, issues)
    if manager is not None:
        _check_managed(manager, vocabulary, durability, settings, nodes, links, file, issues)
    elif durability and nodes:
        _check_durability(durability, settings, nodes, file, issues)
    names.references = True  # steps and workloads may name nodes by role (@primary)
    workloads = _load_workloads(raw_workloads, names, file, issues)
    steps = _load_steps(raw_steps, vocabulary, names, nodes, workloads, file, issues,
                        managed=manager is not None)
    names.references = False
    warnings: list[Issue] = []
    _check_own_standby_names(settings, nodes, steps, file, warnings)
    verdicts = _load_verdicts(raw_verdicts, vocabulary, names, nodes, steps, file, issues)
    explore = load_explore(doc.get("explore"), vocabulary, names, nodes, file, issues)

    if issues:
        raise ScenarioError(issues)
    return Scenario(path=Path(file), text=text, name=top["name"], description=top["description"],
                    seed=top["seed"], observe_interval=top["observe_interval"], durability=durability,
                    settings=settings, nodes=nodes,
                    links=links, workloads=workloads, steps=steps, verdicts=verdicts, names=names,
                    vocabulary=vocabulary, warnings=warnings, manager=manager,
                    snapshot=bool(top.get("snapshot")), explore=explore,
                    pg_version=cluster.get("version"))


def _cluster(doc: dict, names: Names, file: str, issues: list[Issue]) -> dict[str, Any]:
    """The [cluster] table (PostgreSQL version)."""
    raw = doc.get("cluster")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        issues.append(Issue(file, "cluster", f"expected a table ([cluster]), got {s._type_name(raw)}"))
        return {}
    return s.validate_table(raw, CLUSTER_FIELDS, names, file, "cluster", issues)


def _load_manager(raw: Any, vocabulary: Vocabulary, names: Names, file: str,
                  issues: list[Issue]) -> ManagerSpec | None:
    """``[manager] kind = "..."`` and the kind's keys."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        issues.append(Issue(file, "manager", f"expected a table ([manager]), got {s._type_name(raw)}"))
        return None
    kind = raw.get("kind")
    adapter = vocabulary.managers.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        known = ", ".join(sorted(vocabulary.managers)) or "none registered"
        issues.append(Issue(file, "manager.kind", f"unknown manager kind {kind!r} (expected one of: {known})"))
        return None
    fields = {"kind": s.string(required=True)}
    fields.update(adapter.all_fields())
    v = s.validate_table(raw, fields, names, file, "manager", issues)
    v.pop("kind", None)
    return ManagerSpec(kind, v)


def _check_managed(manager: ManagerSpec, vocabulary: Vocabulary, durability: str | None,
                   settings: dict, nodes: dict[str, NodeSpec], links: dict[str, LinkSpec], file: str,
                   issues: list[Issue]) -> None:
    """A managed cluster: the manager routes every path, so nodes name no link; what the
    durability promises is the manager's configuration to say."""
    for n in nodes.values():
        for key in ("via", "slot"):
            if getattr(n, key):
                issues.append(Issue(file, f"nodes.{n.name}.{key}", f"the {manager.kind} manager "
                                    f"decides how nodes replicate: remove {key}"))
    if links:
        issues.append(Issue(file, "links", f"the {manager.kind} manager routes every path through "
                            "walsim-netd itself: remove [links] (faults name a node, e.g. fault = \"isolate\")"))
    adapter = vocabulary.managers[manager.kind]
    primary = next((n for n in nodes.values() if n.role == "primary"), None)
    eff = dict(settings)
    if primary is not None:
        eff.update(primary.settings)
    for key, msg in adapter.check_scenario(manager.values, durability or "async", eff):
        issues.append(Issue(file, key, msg))


def _table(doc: dict, key: str, file: str, issues: list[Issue], required: bool = False) -> dict:
    v = doc.get(key)
    if v is None:
        if required:
            issues.append(Issue(file, key, f"missing required table [{key}.NAME]"))
        return {}
    if not isinstance(v, dict):
        issues.append(Issue(file, key, f"expected a table ([{key}.NAME] sections), got {s._type_name(v)}"))
        return {}
    return v


def _array(doc: dict, key: str, file: str, issues: list[Issue]) -> list:
    v = doc.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        issues.append(Issue(file, key, f"expected an array of tables ([[{key}]]), got {s._type_name(v)}"))
        return []
    return v


def _collect_step_names(raw_steps: list, names: Names, file: str, issues: list[Issue]) -> None:
    for i, st in enumerate(raw_steps):
        if not isinstance(st, dict):
            continue
        sid = st.get("id")
        if isinstance(sid, str):
            if sid in names.steps:
                issues.append(Issue(file, f"steps[{i}].id", f"duplicate step id {sid!r}"))
            names.steps.add(sid)
            if "fault" in st:
                names.faults.add(sid)


def _load_nodes(raw: dict, vocabulary: Vocabulary, names: Names, file: str,
                issues: list[Issue]) -> dict[str, NodeSpec]:
    nodes: dict[str, NodeSpec] = {}
    fields = dict(NODE_FIELDS)
    fields.update(vocabulary.node_fields)
    for name, table in raw.items():
        v = s.validate_table(table, fields, names, file, f"nodes.{name}", issues)
        if not v.get("role"):
            continue
        slot = v.get("slot")
        if slot == "":
            slot = f"{name}_slot"
        nodes[name] = NodeSpec(name, v["role"], v.get("upstream"), v.get("via"), slot,
                               v.get("settings") or {}, v.get("hba_method") or "scram-sha-256",
                               {k: v.get(k) for k in vocabulary.node_fields})
    return nodes


def _load_links(raw: dict, names: Names, file: str, issues: list[Issue]) -> dict[str, LinkSpec]:
    out = {}
    for name, table in raw.items():
        v = s.validate_table(table, LINK_FIELDS, names, file, f"links.{name}", issues)
        to = v.get("to")
        if to is None:
            continue
        if to not in names.nodes:
            issues.append(Issue(file, f"links.{name}.to",
                                f"unknown node {to!r} (declared: {', '.join(sorted(names.nodes))})"))
            continue
        out[name] = LinkSpec(name, to, v.get("role") or "replication", v.get("proto") or "pg")
    return out


def _check_topology(nodes: dict[str, NodeSpec], links: dict[str, LinkSpec], declared: set[str],
                    file: str, issues: list[Issue], names_links: set[str] = frozenset()) -> None:
    # A node whose own table is invalid (no role, say) is already reported and missing from
    # `nodes`; it is still declared, so naming it as an upstream is no second error, and the
    # primary count is only judged when every node has a valid role.
    primaries = [n.name for n in nodes.values() if n.role == "primary"]
    if nodes and len(nodes) == len(declared) and len(primaries) != 1:
        issues.append(Issue(file, "nodes", "expected exactly one node with role = \"primary\", found "
                            f"{len(primaries)} ({', '.join(primaries) or 'none'})"))
    for n in nodes.values():
        base = f"nodes.{n.name}"
        if n.role == "primary":
            for key in ("upstream", "via"):
                if getattr(n, key):
                    issues.append(Issue(file, f"{base}.{key}", "a primary streams from nobody: "
                                        f"remove {key} or make the node a standby"))
            if n.slot:
                issues.append(Issue(file, f"{base}.slot", "a primary has no upstream to hold a slot on"))
            continue
        if not n.upstream:
            issues.append(Issue(file, f"{base}.upstream", "missing required key: a standby needs "
                                "the name of the node it streams from"))
            continue
        if n.upstream not in declared:
            issues.append(Issue(file, f"{base}.upstream", f"unknown node {n.upstream!r} "
                                f"(declared: {', '.join(sorted(declared))})"))
            continue
        if n.upstream == n.name:
            issues.append(Issue(file, f"{base}.upstream", "a node cannot stream from itself"))
            continue
        if n.via is not None:
            if n.via not in links and n.via in names_links:
                continue  # declared, but its own table is invalid: already reported there
            if n.via not in links:
                issues.append(Issue(file, f"{base}.via", f"undefined link {n.via!r} "
                                    f"(declared links: {', '.join(sorted(links)) or 'none'})"))
            elif links[n.via].to != n.upstream:
                issues.append(Issue(file, f"{base}.via", f"link {n.via!r} forwards to "
                                    f"{links[n.via].to!r}, but the upstream is {n.upstream!r}"))
            elif links[n.via].role != "replication":
                issues.append(Issue(file, f"links.{n.via}.role", f"{n.name} streams via {n.via!r}: "
                                    f"a standby's link has role = \"replication\" (it is "
                                    f"{links[n.via].role!r})"))
    # every standby must reach the primary through its chain of upstreams
    for n in nodes.values():
        seen = [n.name]
        cur = n
        while cur.role == "standby" and cur.upstream in nodes and cur.upstream != cur.name:
            if cur.upstream in seen:
                issues.append(Issue(file, f"nodes.{n.name}.upstream", "replication cycle: "
                                    + " -> ".join(seen + [cur.upstream]) + " never reaches the primary"))
                break
            seen.append(cur.upstream)
            cur = nodes[cur.upstream]


_SSN_RE = re.compile(r"^\s*(?:(FIRST|ANY)\s+(\d+)\s*\((.*)\)|(\d+)\s*\((.*)\)|(.*))\s*$", re.I)


def parse_standby_names(value: str) -> tuple[str, int, list[str]]:
    """``synchronous_standby_names`` as (method, count, names); method FIRST or ANY."""
    m = _SSN_RE.match(value)
    if not m:  # pragma: no cover - the regex matches everything
        return ("FIRST", 1, [])
    if m.group(1):
        method, num, body = m.group(1).upper(), int(m.group(2)), m.group(3)
    elif m.group(4):
        method, num, body = "FIRST", int(m.group(4)), m.group(5)
    else:
        method, num, body = "FIRST", 1, m.group(6)
    names = [x.strip().strip('"') for x in body.split(",") if x.strip()]
    return method, num, names


def _check_durability(durability: str, settings: dict, nodes: dict[str, NodeSpec], file: str,
                      issues: list[Issue]) -> None:
    primary = next((n for n in nodes.values() if n.role == "primary"), None)
    if primary is None:
        return
    eff = dict(settings)
    eff.update(primary.settings)
    ssn = str(eff.get("synchronous_standby_names", "")).strip()
    commit = str(eff.get("synchronous_commit", "on")).strip().lower()
    if durability == "async":
        return
    where = f"nodes.{primary.name}.settings" if "synchronous_standby_names" in primary.settings else "settings"
    if not ssn:
        inherited = str(settings.get("synchronous_standby_names", "")).strip()
        if "synchronous_standby_names" in primary.settings and inherited:
            issues.append(Issue(file, f"nodes.{primary.name}.settings.synchronous_standby_names",
                                f"durability = \"{durability}\" promises that an acknowledged commit "
                                f"survives the loss of the primary, but nodes.{primary.name}.settings sets "
                                f"synchronous_standby_names = \"\", emptying [settings]' {inherited!r} on "
                                f"the primary {primary.name} (remove the override or name standbys in it)"))
        else:
            issues.append(Issue(file, "durability", f"durability = \"{durability}\" promises that an "
                                "acknowledged commit survives the loss of the primary, but "
                                "synchronous_standby_names is empty (set it in [settings])"))
        return
    if commit in ("off", "local", "false", "0"):
        issues.append(Issue(file, "durability", f"durability = \"{durability}\" needs "
                            f"synchronous_commit = on, remote_write or remote_apply, not {commit!r}"))
    method, num, standby_names = parse_standby_names(ssn)
    if durability == "quorum" and method != "ANY":
        issues.append(Issue(file, f"{where}.synchronous_standby_names", "durability = \"quorum\" "
                            f"expects \"ANY k (...)\", got {ssn!r}"))
    if durability == "sync" and method == "ANY":
        issues.append(Issue(file, f"{where}.synchronous_standby_names", "durability = \"sync\" "
                            f"expects \"FIRST k (...)\" or a plain list, got {ssn!r} (use quorum)"))
    standbys = {n.name for n in nodes.values() if n.role == "standby" and n.upstream == primary.name}
    if "*" not in standby_names:
        unknown = [x for x in standby_names if x not in standbys]
        if unknown:
            issues.append(Issue(file, f"{where}.synchronous_standby_names", f"names {', '.join(unknown)} "
                                f"which {'is' if len(unknown) == 1 else 'are'} not a standby streaming "
                                f"directly from {primary.name} (expected among: "
                                f"{', '.join(sorted(standbys)) or 'none'})"))
        if num > len(standby_names):
            issues.append(Issue(file, f"{where}.synchronous_standby_names", f"asks for {num} "
                                f"synchronous standbys out of {len(standby_names)} named"))


def _promoted(steps: list[Step]) -> set[str]:
    """Nodes some step may promote."""
    out: set[str] = set()
    for st in steps:
        if st.kind == "promote" and st.values.get("node"):
            out.add(st.values["node"])
        elif st.kind == "promote_most_advanced":
            out.update(st.values.get("candidates") or ())
    return out


def _check_own_standby_names(settings: dict, nodes: dict[str, NodeSpec], steps: list[Step], file: str,
                             issues: list[Issue]) -> None:
    """A standby that is promoted with a synchronous_standby_names naming itself waits
    for itself: once it is primary, every commit blocks.  Usually inherited from
    [settings], meant for the first primary.  A warning (a step may still change the
    setting with ALTER SYSTEM after the promotion)."""
    promoted = _promoted(steps)
    for n in nodes.values():
        if n.role != "standby" or n.name not in promoted:
            continue
        own = "synchronous_standby_names" in n.settings
        ssn = str((n.settings if own else settings).get("synchronous_standby_names", "")).strip()
        if not ssn:
            continue
        method, num, names = parse_standby_names(ssn)
        if "*" in names or n.name not in names:
            continue
        others = [x for x in names if x != n.name]
        if num <= len(others):
            continue
        key = f"nodes.{n.name}.settings.synchronous_standby_names" if own else "settings.synchronous_standby_names"
        how = "" if own else (f" (inherited by {n.name}: give nodes.{n.name}.settings its own "
                              "synchronous_standby_names, e.g. the standbys that will follow it)")
        issues.append(Issue(file, key, f"{ssn!r} names {n.name} itself: once {n.name} is promoted it waits "
                            f"for {num} synchronous standby(s) among {', '.join(others) or 'none'} and every "
                            f"commit on it blocks{how}"))


def _load_workloads(raw: dict, names: Names, file: str, issues: list[Issue]) -> dict[str, WorkloadSpec]:
    out = {}
    for name, table in raw.items():
        path = f"workloads.{name}"
        if not isinstance(table, dict):
            issues.append(Issue(file, path, f"expected a table, got {s._type_name(table)}"))
            continue
        kind = table.get("kind")
        if kind not in WORKLOAD_FIELDS:
            issues.append(Issue(file, f"{path}.kind", "missing required key (expected one of "
                                f"{', '.join(WORKLOAD_FIELDS)})" if kind is None else
                                f"expected one of {', '.join(WORKLOAD_FIELDS)}, got {kind!r}"))
            continue
        before = len(issues)
        v = s.validate_table(table, WORKLOAD_FIELDS[kind], names, file, path, issues)
        if kind == "ledger" and len(issues) == before:
            eps = v.get("endpoints")
            if v.get("node") is None and not eps:
                issues.append(Issue(file, f"{path}.node", "missing required key: the node the clients "
                                    "write to (or endpoints, a list the clients search for the "
                                    "writable node)"))
            elif v.get("node") is not None and eps and v["node"] not in eps:
                issues.append(Issue(file, f"{path}.node", f"{v['node']} is not one of the endpoints "
                                    f"({', '.join(eps)}): with endpoints, node names the one tried first"))
        out[name] = WorkloadSpec(name, kind, v)
    return out


def _check_ledger_start(wl: WorkloadSpec, node: str | None, primary: str | None, where: str, file: str,
                        issues: list[Issue]) -> None:
    """A ledger without endpoints writes to its node: that node must be the primary
    when the workload starts (a standby answers every commit with 25006)."""
    if wl.kind != "ledger" or wl.values.get("endpoints") or node is None or primary is None \
            or s.is_node_reference(node):
        return
    if node != primary:
        issues.append(Issue(file, f"workloads.{wl.name}.node", f"{node} is a standby when the workload "
                            f"starts ({where}; the primary is then {primary}): every commit would fail "
                            "with 25006 (read-only); name the primary, or give endpoints to let the "
                            "clients find it"))


def _load_steps(raw: list, vocabulary: Vocabulary, names: Names, nodes: dict[str, NodeSpec],
                workloads: dict[str, WorkloadSpec], file: str, issues: list[Issue],
                managed: bool = False) -> list[Step]:
    steps: list[Step] = []
    faults_so_far: set[str] = set()
    primary = next((n.name for n in nodes.values() if n.role == "primary"), None)
    counters: dict[str, int] = {}
    started: set[str] = set()
    #: the node each workload writes to, as retargets move it
    target = {wl.name: wl.values.get("node") for wl in workloads.values()}
    for wl in workloads.values():
        if wl.values.get("autostart", True):
            _check_ledger_start(wl, target[wl.name], primary, "autostart", file, issues)
            started.add(wl.name)
    for i, table in enumerate(raw):
        path = f"steps[{i}]"
        if not isinstance(table, dict):
            issues.append(Issue(file, path, f"expected a table ([[steps]]), got {s._type_name(table)}"))
            continue
        cats = [c for c in CATEGORIES if c in table]
        if len(cats) != 1:
            what = ", ".join(cats) if cats else "none"
            issues.append(Issue(file, path, "expected exactly one of the keys "
                                f"{', '.join(CATEGORIES)} naming what the step does (found: {what})"))
            continue
        cat = cats[0]
        kind_name = table[cat]
        if cat == "heal":
            kind_name, table = _heal_form(table, path, names, faults_so_far, file, issues)
            if kind_name is None:
                continue
        if not isinstance(kind_name, str):
            issues.append(Issue(file, f"{path}.{cat}", f"expected a string, got {s._type_name(kind_name)}"))
            continue
        kind = vocabulary.step(cat, kind_name)
        if kind is None:
            known = ", ".join(k.name for k in vocabulary.step_kinds(cat))
            issues.append(Issue(file, f"{path}.{cat}", f"unknown {cat} kind {kind_name!r} (expected one of: {known})"))
            continue
        if managed and kind.drives_postgres:
            issues.append(Issue(file, f"{path}.{cat}", f"{cat} = \"{kind_name}\" would have walsim drive "
                                "PostgreSQL itself, but [manager] drives this cluster (use the manager's "
                                "steps: switchover, kill with what = ..., isolate)"))
            continue
        if not managed and kind.needs_manager:
            issues.append(Issue(file, f"{path}.{cat}", f"{cat} = \"{kind_name}\" acts on an HA manager: "
                                "it needs a [manager] table (docs/managers.md)"))
            continue
        fields = dict(COMMON_FIELDS)
        fields.update(kind.fields)
        before = len(issues)
        v = s.validate_table(table, fields, names, file, path, issues, ignore=(cat,))
        if len(issues) == before and kind.check:
            for sub, msg in kind.check(v):
                issues.append(Issue(file, f"{path}.{sub}" if sub else path, msg))
        sid = v.pop("id", None)
        if sid is None:
            counters[kind_name] = counters.get(kind_name, 0) + 1
            sid = f"{kind_name}-{i}"
        note = v.pop("note", None)
        if cat == "fault":
            faults_so_far.add(sid)
        if kind.check_nodes and len(issues) == before:
            for sub, msg in kind.check_nodes(v, nodes):
                issues.append(Issue(file, f"{path}.{sub}" if sub else path, msg))
        # a light simulation of roles, to catch promoting the node that already is primary
        if cat == "do" and kind_name == "promote" and v.get("node") and not s.is_node_reference(v["node"]):
            if primary is not None and v["node"] == primary:
                issues.append(Issue(file, f"{path}.node", f"{v['node']} is the primary at this step "
                                    "(only a standby can be promoted)"))
            primary = v["node"]
            if v.get("retarget", True):
                target = {k: (primary if workloads[k].kind in ("ledger", "pgbench") else n)
                          for k, n in target.items()}
        elif cat == "load" and kind_name == "start" and v.get("name") in workloads \
                and v["name"] not in started:
            started.add(v["name"])
            _check_ledger_start(workloads[v["name"]], target[v["name"]], primary, f"at {path}", file, issues)
        elif cat == "load" and kind_name == "retarget" and v.get("name") in target:
            target[v["name"]] = v.get("node")
        elif cat == "do" and kind_name == "promote_most_advanced":
            if primary is not None and primary in (v.get("candidates") or ()):
                issues.append(Issue(file, f"{path}.candidates", f"{primary} is the primary at this step "
                                    "(only standbys can be candidates)"))
            primary = None  # decided at run time
            if v.get("retarget", True):
                target = {k: (None if workloads[k].kind in ("ledger", "pgbench") else n)
                          for k, n in target.items()}
        steps.append(Step(i, cat, kind_name, sid, note, v))
    return steps


def _heal_form(table: dict, path: str, names: Names, faults_so_far: set[str], file: str,
               issues: list[Issue]) -> tuple[str | None, dict]:
    """``heal = "<fault id>"`` or ``heal = "all"``: normalised to the kind ``heal``."""
    target = table.get("heal")
    if not isinstance(target, str):
        issues.append(Issue(file, f"{path}.heal", "expected a fault id or \"all\", got "
                            f"{s._type_name(target)}"))
        return None, table
    if target != "all" and target not in faults_so_far:
        later = " (it is declared by a later step)" if target in names.faults else ""
        issues.append(Issue(file, f"{path}.heal", f"unknown fault {target!r}{later}: expected \"all\" or "
                            f"the id of an earlier fault step ({', '.join(sorted(faults_so_far)) or 'none'})"))
        return None, table
    out = dict(table)
    out["heal"] = "heal"
    out["target"] = target
    return "heal", out


def _load_verdicts(raw: list, vocabulary: Vocabulary, names: Names, nodes: dict[str, NodeSpec],
                   steps: list[Step], file: str, issues: list[Issue]) -> list[VerdictSpec]:
    out = []
    used: set[str] = set()
    for i, table in enumerate(raw):
        path = f"verdicts[{i}]"
        if not isinstance(table, dict):
            issues.append(Issue(file, path, f"expected a table ([[verdicts]]), got {s._type_name(table)}"))
            continue
        check = table.get("check")
        kind = vocabulary.verdict(check) if isinstance(check, str) else None
        if kind is None:
            known = ", ".join(sorted(vocabulary.verdicts))
            issues.append(Issue(file, f"{path}.check", f"missing required key: the verdict kind (one of {known})"
                                if check is None else f"expected one of {known}, got {check!r}"))
            continue
        fields = dict(VERDICT_COMMON)
        fields.update(kind.fields)
        before = len(issues)
        v = s.validate_table(table, fields, names, file, path, issues)
        if kind.check is not None and len(issues) == before:
            for sub, msg in kind.check(v, nodes, steps):
                issues.append(Issue(file, f"{path}.{sub}" if sub else path, msg))
        name = v.pop("id", None) or check
        v.pop("check", None)
        if name in used:
            name = f"{name}#{i}"
        used.add(name)
        out.append(VerdictSpec(i, check, name, v))
    return out
