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
from walsim.judge.series import (SAMPLE_GAP, Ack, acks, final_primary, fmt_window, human_bytes, ledger_writes,
                                 overlaps, quiet_intervals, sample_time, scaled_bound, unrefuted,
                                 writer_periods)
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
    by_node: dict[str, int] = {}
    for r in acked:
        by_node[str(r.get("node"))] = by_node.get(str(r.get("node")), 0) + 1
    evidence["acked_by_node"] = by_node
    if lost:
        evidence.update(_loss_window(record, lost, pname))
        lost_by: dict[str, int] = {}
        for r in lost:
            lost_by[str(r.get("node"))] = lost_by.get(str(r.get("node")), 0) + 1
        evidence["lost_by_node"] = lost_by
    counts = (f"{len(acked)} acknowledged, {len(indeterminate)} indeterminate "
              f"({ind_present} of them present), {len(failed)} failed")
    if not lost:
        result = PASS if promised else INFO
        return result, f"no acknowledged commit lost on {pname}: {counts}", evidence
    who = ", ".join(f"{n} {k}" for n, k in sorted(evidence["lost_by_node"].items(), key=lambda x: -x[1]))
    window = (f"{len(lost)} acknowledged commit(s) lost (acknowledged by {who}): "
              f"{evidence['loss_window_s']:.2f} s of acks, "
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




@verdict("single_writer", {
    "workload": s.workload_ref(help="the ledger workload whose acknowledgements count (default: all)"),
}, "at no time did two nodes acknowledge writes (judged from the commits clients saw acknowledged)")
def single_writer(record: RunRecord, values: Mapping[str, Any], durability: str):
    all_acks = acks(record, values.get("workload"))
    if not all_acks:
        raise MissingData("the ledger holds no acknowledged commit naming its node: nothing shows "
                          "which node accepted writes")
    observed = quiet_intervals(record)
    by_node: dict[str, list[list[Ack]]] = {}
    quiet: dict[str, list[tuple[float, float, str]]] = {}
    for a in all_acks:
        by_node.setdefault(a.node, [])
    for n in by_node:
        mine = [a for a in all_acks if a.node == n]
        quiet[n] = unrefuted(mine, observed.get(n, []))
        by_node[n] = writer_periods(mine, quiet[n])
    found = overlaps(by_node)
    writers = [{"node": n, "from_t": p[0].t, "until_t": p[-1].t, "commits": len(p)}
               for n, ps in by_node.items() for p in ps]
    writers.sort(key=lambda w: w["from_t"])
    excluded = {n: [[round(a, 3), round(b, 3), why] for a, b, why in q[:20]]
                for n, q in quiet.items() if n in by_node and q}
    evidence: dict[str, Any] = {"writers": writers[:50], "overlaps": found[:20],
                                "excluded": excluded, "acked": len(all_acks)}
    both_primary = _sample_overlap(record)
    if both_primary:
        evidence["both_out_of_recovery"] = both_primary[:10]
    if found:
        o = found[0]
        x, y = o["nodes"]
        more = f"; {len(found) - 1} more overlap(s) in the evidence" if len(found) > 1 else ""
        gaps = [f"{n} accepted nothing {fmt_window(a, b)} ({why})" for n in (x, y)
                for a, b, why in quiet.get(n, []) if b > all_acks[0].t and a < o["end"]]
        note = f" (excluded: {'; '.join(gaps[:3])})" if gaps else ""
        sides = [f"{a} acknowledged {o['commits'][a]} commit(s) while {b} was writing "
                 f"({b}'s acknowledgements {fmt_window(*o['periods'][b])})"
                 for a, b in ((x, y), (y, x)) if o["commits"][a]]
        return FAIL, (f"{x} and {y} both acknowledged writes {fmt_window(o['start'], o['end'])}: "
                      f"{'; '.join(sides)}{more}{note}"), evidence
    order = "; then ".join(f"{w['node']} {fmt_window(w['from_t'], w['until_t'])} ({w['commits']} commit(s))"
                           for w in writers[:6]) + ("; ..." if len(writers) > 6 else "")
    note = ""
    if both_primary:
        a, b, nodes = both_primary[0]
        note = (f" ({' and '.join(nodes)} were both out of recovery {fmt_window(a, b)} per the observer, "
                "but no commit of one was acknowledged while the other was writing)")
    return PASS, f"one writer at a time: {order}{note}", evidence


def _sample_overlap(record: RunRecord) -> list[tuple[float, float, list[str]]]:
    """Times at which the observer saw two nodes out of recovery (informative only: not
    in recovery is not "can commit" under synchronous replication, and a sample is one
    node at one moment)."""
    try:
        samples = record.samples
    except MissingData:
        return []
    runs: dict[str, list[tuple[float, float]]] = {}
    by_node: dict[str, list[dict]] = {}
    for smp in samples:
        if smp.get("node"):
            by_node.setdefault(smp["node"], []).append(smp)
    gap = scaled_bound(record, SAMPLE_GAP)
    for n, smps in by_node.items():
        smps.sort(key=sample_time)
        run: list[float] = []
        for smp in smps + [None]:  # type: ignore[list-item]
            primary = smp is not None and smp.get("up") and smp.get("role") == "primary"
            if primary and run and sample_time(smp) - run[-1] > gap:  # not answering in between: a new run
                runs.setdefault(n, []).append((run[0], run[-1]))
                run = []
            if primary:
                run.append(sample_time(smp))  # the server's time of the sample (series.sample_time)
            elif run:
                runs.setdefault(n, []).append((run[0], run[-1]))
                run = []
    out = []
    names = sorted(runs)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            for a0, a1 in runs[x]:
                for b0, b1 in runs[y]:
                    if max(a0, b0) <= min(a1, b1):
                        out.append((max(a0, b0), min(a1, b1), [x, y]))
    return sorted(out)


@verdict("no_acks_during", {
    "fault": s.fault_ref(required=True, help="the fault step whose window is judged (from the fault's "
                         "installation to its heal)"),
    "node": s.node_ref(help="only acknowledgements by this node count (default: any node)"),
    "workload": s.workload_ref(help="the ledger workload to judge (default: all)"),
}, "no commit sent while a fault was active was acknowledged before it was healed (a commit "
   "must block while the synchronous standby is cut off)")
def no_acks_during(record: RunRecord, values: Mapping[str, Any], durability: str):
    fid = values["fault"]
    windows = [w for w in record.fault_windows() if w["id"] == fid]
    if not windows:
        raise MissingData(f"events.jsonl has no fault window for {fid!r} (was it installed?)")
    w = windows[0]
    start, end = float(w["start"]), float(w["end"])
    node = values.get("node")
    writes = [r for r in ledger_writes(record, values.get("workload")) if node is None or r.get("node") == node]
    sent = [r for r in writes if r.get("sent_t") is not None and start <= float(r["sent_t"]) < end]
    # a client whose commit was in flight when the fault began sends nothing more until it
    # returns: when every client is in that state, their commits acknowledged only after the
    # heal are what shows that commits blocked
    blocked_from_before = [r for r in writes if r.get("outcome") == "acked" and r.get("sent_t") is not None
                           and float(r["sent_t"]) < start and float(r["t"]) >= end]
    if not sent and not blocked_from_before:
        raise MissingData(f"no commit{' to ' + node if node else ''} was sent while {fid} was active "
                          f"({fmt_window(start, end)}), and none in flight when it began was held until "
                          f"the heal: nothing shows whether commits blocked")
    during = [r for r in sent if r.get("outcome") == "acked" and float(r["t"]) < end]
    in_flight = sum(1 for r in writes if r.get("outcome") == "acked" and r.get("sent_t") is not None
                    and float(r["sent_t"]) < start <= float(r["t"]) < end)
    outcomes: dict[str, int] = {}
    for r in sent:
        k = "acked after the heal" if r.get("outcome") == "acked" and float(r["t"]) >= end else str(r.get("outcome"))
        outcomes[k] = outcomes.get(k, 0) + 1
    by_node: dict[str, int] = {}
    for r in during:
        by_node[str(r.get("node"))] = by_node.get(str(r.get("node")), 0) + 1
    evidence: dict[str, Any] = {"window": [start, end], "still_on_at_end": bool(w.get("open")),
                                "attempted": len(sent), "outcomes": outcomes, "acked_during_by_node": by_node,
                                "in_flight_at_start_acked": in_flight,
                                "in_flight_at_start_held": len(blocked_from_before)}
    where = f"while {fid} was active ({fmt_window(start, end)})"
    counts = ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items()))
    if during:
        first = min(during, key=lambda r: float(r["t"]))
        evidence["first"] = {"id": first.get("id"), "node": first.get("node"), "sent_t": first.get("sent_t"),
                             "t": first.get("t")}
        who = ", ".join(f"{n} {k}" for n, k in sorted(by_node.items()))
        return FAIL, (f"{len(during)} commit(s) sent {where} were acknowledged before the heal ({who}); the "
                      f"first sent at t={float(first['sent_t']):.2f} s, acknowledged at t={float(first['t']):.2f} s "
                      f"by {first.get('node')}"), evidence
    held = (f"; {len(blocked_from_before)} in flight when it began were held until the heal"
            if blocked_from_before else "")
    return PASS, (f"no commit sent {where} was acknowledged before the heal: {len(sent)} attempted"
                  f"{f' ({counts})' if counts else ''}{held}"), evidence


KINDS = [no_acked_loss, single_writer, no_acks_during]
