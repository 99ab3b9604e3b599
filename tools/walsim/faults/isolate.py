"""Which walsim-netd rules cut a node off from a set of members: ``fault = "isolate"``.

A pure function of what the network layer knows: the members (every node,
and the DCS, monitor or witness an HA manager adds, each of a *kind*), the
links (*paths*: the member each leads to, what it carries) and walsim-netd's
source nodes (every connection is named by the member that opened it; a
connection from an address that is no member's is a *client*, ``-`` in
netd's words).  See docs/scenarios.md, ``fault = "isolate"``.

For a node X and the groups in ``from``:

=================  ==========================================================
``peers``          the other members of kind ``node``
``dcs``,           the members of that kind
``monitor``,
``witness``
=================  ==========================================================

every link leading to X gets a rule for connections opened by those members,
and every link leading to one of them a rule for connections opened by X.
``clients``: every link leading to X, for connections opened by no member.
``replication``: every link of role ``replication`` leading to X (all of its
connections), and X's own connections on replication links leading elsewhere.
Rules of several groups on one link merge into one (their sources joined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from walsim.scenario.model import LINK_ROLES as ROLES

#: the groups ``from`` accepts
GROUPS = ("peers", "replication", "clients", "dcs", "monitor", "witness")
#: member kinds: a scenario's nodes, and what an HA manager adds
MEMBER_KINDS = ("node", "dcs", "monitor", "witness")
#: walsim-netd's name for "opened by an address that is no member's"
NO_MEMBER = "-"


@dataclass(frozen=True)
class PathInfo:
    """A link as isolation sees it: the member it leads to and what it carries."""

    target: str
    role: str = "replication"
    proto: str = "pg"


@dataclass
class CutRule:
    """One walsim-netd rule: partition ``link`` for connections opened by ``src``
    (None: every connection), and the groups that asked for it."""

    link: str
    src: list[str] | None
    groups: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"link": self.link, "src": self.src, "groups": self.groups}


class NothingToCut(Exception):
    """A group of ``from`` finds no path through walsim-netd (the message says why)."""


def _add(rules: dict[str, CutRule], link: str, src: list[str] | None, group: str) -> None:
    rule = rules.get(link)
    if rule is None:
        rules[link] = CutRule(link, None if src is None else sorted(set(src)), [group])
        return
    if group not in rule.groups:
        rule.groups.append(group)
    if rule.src is None or src is None:
        rule.src = None
    else:
        rule.src = sorted(set(rule.src) | set(src))


def isolate_rules(node: str, groups: list[str], members: dict[str, str],
                  paths: dict[str, PathInfo]) -> list[CutRule]:
    """The rules that cut ``node`` off from ``groups``, in link order.

    ``members``: member name -> kind; ``paths``: link -> :class:`PathInfo`.
    Raises :class:`NothingToCut` naming the first group that finds nothing:
    an isolation that silently cuts nothing would make a scenario pass for
    the wrong reason.
    """
    rules: dict[str, CutRule] = {}
    for group in dict.fromkeys(groups):
        found = False
        if group == "clients":
            for link, p in paths.items():
                if p.target == node:
                    _add(rules, link, [NO_MEMBER], group)
                    found = True
            if not found:
                raise NothingToCut(f"clients: no walsim-netd link leads to {node} (clients that "
                                   "connect to it directly cannot be cut; give them a link with "
                                   "role = \"client\")")
        elif group == "replication":
            for link, p in paths.items():
                if p.role != "replication":
                    continue
                if p.target == node:
                    _add(rules, link, None, group)
                    found = True
                elif p.target in members:
                    _add(rules, link, [node], group)
                    found = True
            if not found:
                raise NothingToCut(f"replication: no walsim-netd link has role = \"replication\" "
                                   f"(standbys that stream from {node} directly cannot be cut)")
        else:
            kind = "node" if group == "peers" else group
            others = sorted(m for m, k in members.items() if k == kind and m != node)
            if not others:
                raise NothingToCut(f"{group}: this run has no " +
                                   ("other node" if kind == "node" else f"member of kind {kind}"))
            for link, p in paths.items():
                if p.target == node:
                    _add(rules, link, others, group)
                    found = True
                elif p.target in others:
                    _add(rules, link, [node], group)
                    found = True
            if not found:
                raise NothingToCut(f"{group}: no walsim-netd link leads to {node} or from it to "
                                   f"{', '.join(others)}")
    return [rules[k] for k in paths if k in rules]


__all__ = ["GROUPS", "MEMBER_KINDS", "ROLES", "NO_MEMBER", "PathInfo", "CutRule", "NothingToCut",
           "isolate_rules"]
