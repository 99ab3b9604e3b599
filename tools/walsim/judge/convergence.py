"""Verdicts on standbys catching up: ``converge`` after healing, ``streaming`` at all.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord
from walsim.judge.series import scaled_bound, final_primary
from walsim.judge.verdict import ERROR, FAIL, PASS, verdict
from walsim.scenario import schema as s


@verdict("converge", {
    "nodes": s.list_of(s.node_ref(), help="nodes that must converge (default: every node up at the end)"),
    "within": s.duration(default=30.0, help="deadline after the last heal (or `after`)"),
    "after": s.step_ref(help="measure from the end of this step (default: the last heal or fault end)"),
}, "after healing every standby reaches the primary's LSN within a deadline and table checksums match",
    settle=lambda v, sc: (list(v.get("nodes") or sc.nodes), float(v.get("within") or 30.0)))
def converge(record: RunRecord, values: Mapping[str, Any], durability: str):
    final = record.final
    nodes_final = final.get("nodes", {})
    pname, pnode = final_primary(record)
    settle = final.get("settle") or {}
    target = settle.get("target_lsn")
    if target is None:
        raise MissingData("final.json has no settle target LSN (the settle phase did not run)")
    wanted = values.get("nodes") or [n for n, v in nodes_final.items() if v.get("up")]
    if values.get("after"):
        ref_t = record.step_time(values["after"], "end")
    else:
        offs = [e["t"] for e in record.events if e.get("type") in ("fault_off", "heal")]
        ref_t = max(offs) if offs else float(settle.get("start_t", 0.0))
    within = scaled_bound(record, float(values.get("within") or 30.0))
    evidence: dict[str, Any] = {"primary": pname, "target_lsn": format_lsn(int(target)),
                                "reference_t": ref_t, "within_s": within, "nodes": {}}
    problems = []
    unreadable: list[str] = []
    ref_sums = pnode.get("checksums")
    no_sums = final.get("checksums_skipped")
    if no_sums:
        ref_sums = {}
        evidence["checksums_skipped"] = no_sums
    if ref_sums is None:
        raise MissingData(f"final.json has no table checksums for the primary {pname}")
    skipped = final.get("skipped_tables") or {}
    evidence["compared"] = sorted(ref_sums)
    evidence["skipped"] = skipped
    for t, err in (pnode.get("checksum_errors") or {}).items():
        unreadable.append(f"{t} on {pname}: {err}")
    for n in wanted:
        info = nodes_final.get(n)
        if info is None or not info.get("up"):
            problems.append(f"{n} is not running at the end")
            evidence["nodes"][n] = {"up": False}
            continue
        if n == pname:
            continue
        caught = (settle.get("caught_up") or {}).get(n)
        ev = {"replay_lsn": format_lsn(int(info["replay_lsn"])) if info.get("replay_lsn") is not None else None,
              "caught_up_t": caught}
        if caught is None:
            problems.append(f"{n} never replayed up to {format_lsn(int(target))}")
        elif caught - ref_t > within:
            problems.append(f"{n} caught up {caught - ref_t:.1f} s after the reference, more than {within:g} s")
        sums = info.get("checksums")
        errors = info.get("checksum_errors") or {}
        if no_sums:
            pass
        elif sums is None:
            problems.append(f"{n}: no table checksums recorded")
        else:
            diff = [t for t in ref_sums if t not in errors and sums.get(t) != ref_sums[t]]
            if diff:
                problems.append(f"{n}: checksums differ from {pname} for {', '.join(diff)}")
            ev["checksums_equal"] = not diff
            unreadable += [f"{t} on {n}: {errors[t]}" for t in ref_sums if t in errors]
            if errors:
                ev["not_compared"] = errors
        evidence["nodes"][n] = ev
    if unreadable:
        evidence["unreadable"] = unreadable
    if problems:
        return FAIL, "; ".join(problems + [f"could not compare {u}" for u in unreadable]), evidence
    if unreadable:
        return ERROR, ("every other table matches, but could not compare " + "; ".join(unreadable)), evidence
    others = [n for n in wanted if n != pname]
    listing = ", ".join(sorted(ref_sums)) or "none"
    skip = (f"; skipped: {', '.join(f'{t} ({why})' for t, why in sorted(skipped.items()))}" if skipped else "")
    if no_sums:
        return PASS, (f"{', '.join(others) or 'no standby'} replayed up to {format_lsn(int(target))} "
                      f"(table checksums not compared: {no_sums})"), evidence
    return PASS, (f"{', '.join(others) or 'no standby'} replayed up to {format_lsn(int(target))} and "
                  f"match {pname} ({len(ref_sums)} table(s) compared: {listing}{skip})"), evidence




def _check_streaming(v: Mapping[str, Any], nodes: Mapping[str, Any], steps: Sequence[Any]) -> list[tuple[str, str]]:
    """A primary streams from nobody: the node must be a standby at some point (it is
    one from the start, or a rewind makes it one)."""
    node = v.get("node")
    spec = nodes.get(node)
    if spec is None or spec.role != "primary":
        if node is not None and node == v.get("upstream"):
            return [("upstream", "a node cannot stream from itself")]
        return []
    if any(st.kind == "rewind" and st.values.get("node") == node for st in steps):
        return []
    return [("node", f"{node} is the primary and no step makes it a standby (do = \"rewind\"): a primary "
                     "streams from nobody; name a standby")]


@verdict("streaming", {
    "node": s.node_ref(required=True, help="the standby"),
    "upstream": s.node_ref(help="the node it must stream from (default: any)"),
    "after": s.step_ref(help="only count samples after this step ended"),
}, "the standby was seen streaming (state streaming in its upstream's pg_stat_replication)",
    check=_check_streaming)
def streaming(record: RunRecord, values: Mapping[str, Any], durability: str):
    node, up = values["node"], values.get("upstream")
    t0 = record.step_time(values["after"], "end") if values.get("after") else 0.0
    seen = []
    for smp in record.samples:
        if smp["t"] < t0 or (up and smp.get("node") != up):
            continue
        for row in smp.get("replication") or ():
            if row.get("application_name") == node and row.get("state") == "streaming":
                seen.append((smp["t"], smp.get("node")))
    if not record.samples:
        raise MissingData("no observer samples")
    evidence = {"streaming_samples": len(seen), "first": seen[0] if seen else None}
    if not seen:
        return FAIL, f"{node} was never seen streaming{' from ' + up if up else ''}", evidence
    return PASS, f"{node} streaming from {seen[0][1]} (first seen at t={seen[0][0]:.2f} s, {len(seen)} samples)", evidence


KINDS = [converge, streaming]
