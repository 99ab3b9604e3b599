"""Verdicts on acknowledged writes: none lost, and one writer at a time.

``no_acked_loss`` compares every commit a client saw acknowledged with the
final primary's ledger (indeterminate outcomes are never "lost"), judged
against the durability the scenario declares; ``single_writer`` checks that
no two nodes accepted writes at the same time.
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord
from walsim.judge.series import final_primary, human_bytes, ledger_writes
from walsim.judge.verdict import FAIL, INFO, PASS, verdict
from walsim.scenario import schema as s

#: synchronous_commit levels at which a commit waits for a synchronous standby
SYNC_LEVELS = ("on", "remote_apply", "remote_write")


@verdict("no_acked_loss", {
    "workload": s.workload_ref(help="the ledger workload to judge (default: all)"),
    "promised": s.boolean(help="whether a loss is a FAIL (default: durability is sync or quorum); "
                          "true for a promise the durability field does not express, e.g. a "
                          "single node's fsync"),
}, "every commit a client saw acknowledged is present on the final primary")
def no_acked_loss(record: RunRecord, values: Mapping[str, Any], durability: str):
    writes = ledger_writes(record, values.get("workload"))
    acked = [r for r in writes if r.get("outcome") == "acked"]
    indeterminate = [r for r in writes if r.get("outcome") == "indeterminate"]
    failed = [r for r in writes if r.get("outcome") == "failed"]
    if not acked:
        raise MissingData("the ledger holds no acknowledged commit, so there is nothing to judge")
    pname, pnode = final_primary(record)
    present_ids = pnode.get("ledger_ids")
    if present_ids is None:
        raise MissingData(f"final.json has no ledger contents for the final primary {pname}")
    present = set(int(x) for x in present_ids)
    lost = [r for r in acked if int(r["id"]) not in present]
    ind_present = sum(1 for r in indeterminate if int(r["id"]) in present)
    explicit = values.get("promised")
    promised = durability in ("sync", "quorum") if explicit is None else bool(explicit)
    if explicit:
        lost_promised = list(lost)  # the scenario promised it, whatever the session settings
    else:
        lost_promised = [r for r in lost if str(r.get("synchronous_commit", "on")) in SYNC_LEVELS]
    evidence: dict[str, Any] = {
        "final_primary": pname, "durability": durability, "acked": len(acked), "failed": len(failed),
        "indeterminate": len(indeterminate), "indeterminate_present": ind_present,
        "lost": len(lost), "lost_ids": [r["id"] for r in lost[:50]],
    }
    if lost:
        evidence.update(_loss_window(record, lost, pname))
    counts = (f"{len(acked)} acknowledged, {len(indeterminate)} indeterminate "
              f"({ind_present} of them present), {len(failed)} failed")
    if not lost:
        result = PASS if promised else INFO
        return result, f"no acknowledged commit lost on {pname}: {counts}", evidence
    window = (f"{len(lost)} acknowledged commit(s) lost: {evidence['loss_window_s']:.2f} s of acks, "
              f"{human_bytes(evidence['loss_window_bytes'])} of WAL")
    if promised and lost_promised:
        evidence["lost_under_sync"] = len(lost_promised)
        why = "the scenario promised none" if explicit else f"durability = {durability} promised none"
        return FAIL, f"{window}, although {why} ({counts})", evidence
    if promised:
        return INFO, (f"{window}; all were committed with synchronous_commit local/off, which "
                      f"durability = {durability} does not cover ({counts})"), evidence
    if explicit is False:
        return INFO, f"{window} (not promised by this scenario; {counts})", evidence
    return INFO, f"{window} (durability = async promises none; {counts})", evidence


def _loss_window(record: RunRecord, lost: list[dict[str, Any]], primary_name: str) -> dict[str, Any]:
    lsns = [int(r["lsn"]) for r in lost if r.get("lsn") is not None]
    times = [float(r["t"]) for r in lost if r.get("t") is not None]
    fork = None
    for e in record.events:
        if e.get("type") == "promoted" and e.get("node") == primary_name and e.get("lsn_before") is not None:
            fork = int(e["lsn_before"])
    start = fork if fork is not None else (min(lsns) if lsns else 0)
    out = {
        "loss_window_s": (max(times) - min(times)) if times else 0.0,
        "loss_window_bytes": max(0, (max(lsns) - start)) if lsns else 0,
        "first_lost_lsn": format_lsn(min(lsns)) if lsns else None,
        "last_lost_lsn": format_lsn(max(lsns)) if lsns else None,
        "first_lost_t": min(times) if times else None,
        "last_lost_t": max(times) if times else None,
    }
    if fork is not None:
        out["fork_lsn"] = format_lsn(fork)
    return out




@verdict("single_writer", {}, "at no time did two nodes accept writes")
def single_writer(record: RunRecord, values: Mapping[str, Any], durability: str):
    by_node: dict[str, list[dict]] = {}
    for smp in record.samples:
        if smp.get("node"):
            by_node.setdefault(smp["node"], []).append(smp)
    if not by_node or sum(len(v) for v in by_node.values()) < 2:
        raise MissingData("too few observer samples to judge")
    # A node is known to be primary only at its samples: its primary intervals
    # are the runs of consecutive primary samples, from the first to the last
    # of each run (what happened between a primary sample and the next
    # non-primary one is unknown, so it proves nothing either way).
    intervals: dict[str, list[tuple[float, float]]] = {}
    for n, smps in by_node.items():
        smps.sort(key=lambda x: x["t"])
        run: list[float] = []
        for smp in smps + [None]:
            if smp is not None and smp.get("up") and smp.get("role") == "primary":
                run.append(smp["t"])
            elif run:
                intervals.setdefault(n, []).append((run[0], run[-1]))
                run = []
    overlaps = []
    names = sorted(intervals)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            for a0, a1 in intervals[x]:
                for b0, b1 in intervals[y]:
                    if max(a0, b0) <= min(a1, b1):
                        overlaps.append((x, y, max(a0, b0), min(a1, b1)))
    # the ledger: acknowledgements from two nodes interleaved in time
    acks = sorted((float(r["t"]), r.get("node")) for r in _safe_ledger(record)
                  if r.get("op") == "write" and r.get("outcome") == "acked" and r.get("node"))
    switches = [(a, b) for a, b in zip(acks, acks[1:]) if a[1] != b[1]]
    writers_back = []
    seen_after: set[str] = set()
    for prev, cur in switches:
        if cur[1] in seen_after:
            writers_back.append({"node": cur[1], "t": cur[0], "after": prev[1]})
        seen_after.add(prev[1])
    evidence = {"primary_intervals": {n: [list(iv) for iv in v[:20]] for n, v in intervals.items()},
                "overlaps": [list(o) for o in overlaps[:10]], "ack_returns": writers_back[:10]}
    if overlaps:
        x, y, t0, t1 = overlaps[0]
        return FAIL, f"{x} and {y} both accepted writes between t={t0:.2f} and t={t1:.2f} s", evidence
    if writers_back:
        w = writers_back[0]
        return FAIL, (f"{w['node']} acknowledged a write at t={w['t']:.2f} s after {w['after']} "
                      "had taken over writes"), evidence
    owners = " then ".join(dict.fromkeys(n for _, n in acks)) or ", ".join(names)
    return PASS, f"one writer at a time ({owners})", evidence


def _safe_ledger(record: RunRecord) -> list[dict]:
    try:
        return record.ledger
    except MissingData:
        return []


KINDS = [no_acked_loss, single_writer]
