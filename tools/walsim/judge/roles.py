"""Verdicts on where each node ends: its ``timeline`` and its ``role``.
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s


@verdict("timeline", {
    "expect": s.node_map(s.integer(lo=1), required=True, help="node = expected timeline at the end"),
}, "each node ends on the expected timeline")
def timeline(record: RunRecord, values: Mapping[str, Any], durability: str):
    nodes = record.final.get("nodes", {})
    got: dict[str, Any] = {}
    problems = []
    for n, want in values["expect"].items():
        tl = (nodes.get(n) or {}).get("timeline")
        if tl is None:
            tl = next((smp.get("timeline") for smp in reversed(record.node_samples(n))
                       if smp.get("timeline") is not None), None)
        if tl is None:
            raise MissingData(f"no timeline recorded for {n}")
        got[n] = tl
        if int(tl) != int(want):
            problems.append(f"{n} is on timeline {tl}, expected {want}")
    evidence = {"expected": dict(values["expect"]), "observed": got}
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, ", ".join(f"{n} on timeline {t}" for n, t in got.items()), evidence




@verdict("role", {
    "expect": s.node_map(s.choice(("primary", "standby", "down")), required=True),
}, "each node ends in the expected role")
def role(record: RunRecord, values: Mapping[str, Any], durability: str):
    nodes = record.final.get("nodes", {})
    got, problems = {}, []
    for n, want in values["expect"].items():
        info = nodes.get(n)
        if info is None:
            raise MissingData(f"final.json has no entry for {n}")
        r = info.get("role") if info.get("up") else "down"
        got[n] = r
        if r != want:
            problems.append(f"{n} is {r}, expected {want}")
    if problems:
        return FAIL, "; ".join(problems), {"observed": got}
    return PASS, ", ".join(f"{n} {r}" for n, r in got.items()), {"observed": got}


KINDS = [timeline, role]
