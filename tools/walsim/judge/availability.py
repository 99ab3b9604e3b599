"""The availability verdict: how long writes were impossible after a failure.
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord
from walsim.judge.series import scaled_bound, ledger_writes
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s


@verdict("failover_time_under", {
    "max": s.duration(required=True, help="bound on the time from the fault to the first write acknowledged by another node"),
    "from": s.step_ref(help="the step that fails the primary (default: the first kill or stop step)"),
    "workload": s.workload_ref(help="ledger workload whose acks count (default: all)"),
}, "time from the primary's failure to the first acknowledged write on the new primary")
def failover_time_under(record: RunRecord, values: Mapping[str, Any], durability: str):
    if values.get("from"):
        start_ev, _ = record.step_events(values["from"])
        if start_ev is None:
            raise MissingData(f"step {values['from']!r} never started")
    else:
        start_ev = next((e for e in record.events if e.get("type") == "step_start"
                         and e.get("kind") in ("kill", "stop")), None)
        if start_ev is None:
            raise MissingData("no kill or stop step ran: there was no failure to time")
    t0 = float(start_ev["t"])
    victim = start_ev.get("node")
    writes = ledger_writes(record, values.get("workload"))
    after = sorted((float(r["t"]), r.get("node")) for r in writes
                   if r.get("outcome") == "acked" and float(r["t"]) >= t0 and r.get("node") != victim)
    if not after:
        raise MissingData(f"no write was acknowledged by a node other than {victim} after t={t0:.2f} s")
    t1, node = after[0]
    took = t1 - t0
    evidence = {"failure_t": t0, "failed_node": victim, "first_ack_t": t1, "new_primary": node,
                "failover_s": took, "max_s": scaled_bound(record, values["max"])}
    if took > evidence["max_s"]:
        return FAIL, (f"first write acknowledged by {node} {took:.2f} s after the failure "
                      f"(bound {evidence['max_s']:g} s)"), evidence
    return PASS, f"{took:.2f} s from the failure of {victim} to the first write acknowledged by {node}", evidence


KINDS = [failover_time_under]
