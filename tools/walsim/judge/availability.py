"""Verdicts on availability, judged from the commits clients saw acknowledged:
``failover_time_under`` (from a fault to the first acknowledgement by another
node, with the window during which the old primary still acknowledged) and
``availability_gap`` (the longest time without any acknowledged write).

Neither assumes walsim chose the primary: "the old primary" is whichever node
acknowledged the last commit before the fault, "the new one" the first other
node to acknowledge one after it.
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord
from walsim.judge.series import Ack, ack_gaps, acks, fmt_window, running_intervals, scaled_bound
from walsim.judge.verdict import FAIL, INFO, PASS, verdict
from walsim.scenario import schema as s

#: step kinds that fail a node: the default start of a failover
FAILING_KINDS = ("kill", "stop", "pause", "power_cut")


def _fault_start(record: RunRecord, step_id: str | None) -> dict[str, Any]:
    if step_id:
        start_ev, _ = record.step_events(step_id)
        if start_ev is None:
            raise MissingData(f"step {step_id!r} never started")
        return start_ev
    ev = next((e for e in record.events if e.get("type") == "step_start"
               and e.get("kind") in FAILING_KINDS), None)
    if ev is None:
        raise MissingData(f"no {', '.join(FAILING_KINDS)} step ran: there was no failure to time "
                          "(name the fault step with from)")
    return ev


@verdict("failover_time_under", {
    "max": s.duration(required=True, help="bound on the time from the fault to the first write acknowledged by another node"),
    "from": s.step_ref(help="the fault step (default: the first kill, stop, pause or power_cut step)"),
    "workload": s.workload_ref(help="ledger workload whose acks count (default: all)"),
}, "time from a fault to the first write acknowledged by a node other than the one that "
   "acknowledged the last write before it; reports how long the old node still acknowledged")
def failover_time_under(record: RunRecord, values: Mapping[str, Any], durability: str):
    start_ev = _fault_start(record, values.get("from"))
    t0 = float(start_ev["t"])
    all_acks = acks(record, values.get("workload"))
    before = [a for a in all_acks if a.t <= t0]
    old = before[-1].node if before else start_ev.get("node")
    if old is None:
        raise MissingData(f"no write was acknowledged before the fault at t={t0:.2f} s: no node to fail over from")
    after = [a for a in all_acks if a.t >= t0 and a.node != old]
    if not after:
        raise MissingData(f"no write was acknowledged by a node other than {old} after t={t0:.2f} s")
    first = after[0]
    took = first.t - t0
    still = [a for a in all_acks if a.t > t0 and a.node == old]
    evidence: dict[str, Any] = {"failure_t": t0, "failure_step": start_ev.get("id"), "failed_node": old,
                                "first_ack_t": first.t, "new_primary": first.node, "failover_s": took,
                                "max_s": scaled_bound(record, values["max"]),
                                "old_acks_after_fault": len(still),
                                "old_acks_sent_after_fault": sum(1 for a in still if a.sent > t0)}
    if still:
        evidence["old_last_ack_t"] = still[-1].t
        evidence["old_ack_window_s"] = still[-1].t - t0
    # writes unavailable: from the last acknowledgement before the fault to the first by another node
    since = before[-1].t if before else t0
    gaps = ack_gaps([a.t for a in all_acks], since, first.t, running_intervals(record, values.get("workload")))
    if gaps:
        evidence["availability_gap_s"] = gaps[0][1] - gaps[0][0]
        evidence["availability_gap"] = [gaps[0][0], gaps[0][1]]
    step = f" ({start_ev.get('id')})" if start_ev.get("id") else ""
    tail = (f"; {old} still acknowledged {len(still)} write(s) for {still[-1].t - t0:.2f} s after it "
            f"({evidence['old_acks_sent_after_fault']} of them sent after it)" if still
            else f"; {old} acknowledged no write after it")
    if gaps:
        tail += f"; no write acknowledged for {gaps[0][1] - gaps[0][0]:.2f} s ({fmt_window(*gaps[0])})"
    if took > evidence["max_s"]:
        return FAIL, (f"first write acknowledged by {first.node} {took:.2f} s after the fault at t={t0:.2f} s"
                      f"{step} (bound {evidence['max_s']:g} s){tail}"), evidence
    return PASS, (f"{took:.2f} s from the failure of {old}{step} to the first write acknowledged by "
                  f"{first.node}{tail}"), evidence


@verdict("availability_gap", {
    "max": s.duration(help="bound on the longest time without an acknowledged write (default: none, "
                      "the gap is reported as INFO)"),
    "from": s.step_ref(help="window starts when this step starts (default: the first acknowledged write)"),
    "until": s.step_ref(help="window ends when this step ends (default: the last acknowledged write)"),
    "workload": s.workload_ref(help="ledger workload whose acks count (default: all)"),
}, "the longest time without any acknowledged write while a ledger workload ran")
def availability_gap(record: RunRecord, values: Mapping[str, Any], durability: str):
    all_acks: list[Ack] = acks(record, values.get("workload"))
    if not all_acks:
        raise MissingData("the ledger holds no acknowledged commit: writes were never available")
    start = record.step_time(values["from"], "start") if values.get("from") else all_acks[0].t
    end = record.step_time(values["until"], "end") if values.get("until") else all_acks[-1].t
    if end <= start:
        raise MissingData(f"the window {fmt_window(start, end)} is empty")
    running = running_intervals(record, values.get("workload"))
    gaps = ack_gaps([a.t for a in all_acks], start, end, running)
    if not gaps:
        raise MissingData(f"no ledger workload ran in the window {fmt_window(start, end)}")
    g0, g1 = gaps[0]
    longest = g1 - g0
    before = next((a for a in reversed(all_acks) if a.t <= g0), None)
    after = next((a for a in all_acks if a.t >= g1), None)
    around = ""
    if before is not None and after is not None:
        around = (f", between {before.node}'s acknowledgement and {after.node}'s" if before.node != after.node
                  else f", between two acknowledgements by {before.node}")
    evidence: dict[str, Any] = {"gap_s": longest, "gap": [g0, g1], "window": [start, end],
                                "longest": [[a, b, b - a] for a, b in gaps[:5]], "acked": len(all_acks)}
    text = f"longest time without an acknowledged write: {longest:.2f} s ({fmt_window(g0, g1)}{around})"
    if values.get("max") is None:
        return INFO, text, evidence
    bound = scaled_bound(record, values["max"])
    evidence["max_s"] = bound
    if longest > bound:
        return FAIL, f"{text}, more than {bound:g} s", evidence
    return PASS, f"{text}, within {bound:g} s", evidence


KINDS = [failover_time_under, availability_gap]
