"""The corruption verdict: damaged WAL is detected, never applied, and the node recovers.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord, lsns_in
from walsim.judge.series import final_primary
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s

#: what PostgreSQL 15 logs when WAL it reads is damaged (xlogreader.c, xlogrecovery.c)
CORRUPTION_LOG_RE = (
    r"incorrect resource manager data checksum|invalid record length|invalid magic number|"
    r"incorrect prev-link|invalid contrecord length|unexpected pageaddr|invalid info bits|"
    r"invalid resource manager ID|record with incorrect prev-link|out-of-sequence timeline ID|"
    r"there is no contrecord flag|missing contrecord|invalid xl_tot_len|"
    r"record length .* at .* too long|invalid record offset"
)


@verdict("corruption_detected_not_applied", {
    "node": s.node_ref(required=True, help="the standby receiving the corrupted WAL"),
    "fault": s.fault_ref(required=True, help="the corrupt fault step"),
    "log_regex": s.regex(default=CORRUPTION_LOG_RE, help="what counts as detection in the node's log"),
}, "corrupted WAL is detected (the log says so), never replayed past while corrupt, and the node converges",
    settle=lambda v, sc: ([v["node"]], 0.0))
def corruption_detected_not_applied(record: RunRecord, values: Mapping[str, Any], durability: str):
    node, fid = values["node"], values["fault"]
    fired = [r for r in record.trace("netd") if _trace_rule(r) == fid and _trace_fired(r)]
    if not fired:
        raise MissingData(f"the fault trace has no firing of {fid!r}: the corruption never happened")
    corrupt_lsns = sorted({int(r["lsn"]) for r in fired if r.get("lsn") is not None})
    if not corrupt_lsns:
        raise MissingData(f"the trace of {fid!r} records no LSN for the corrupted bytes")
    clsn = corrupt_lsns[0]
    t_fired = min(float(r.get("t", r.get("run_t", 0.0))) for r in fired) if fired else 0.0
    windows = [w for w in record.fault_windows() if w["id"] == fid]
    if not windows:
        raise MissingData(f"events.jsonl has no fault window for {fid!r}")
    w_start, w_end = windows[0]["start"], windows[0]["end"]
    evidence: dict[str, Any] = {"corrupt_lsn": format_lsn(clsn), "firings": len(fired),
                                "window": [w_start, w_end]}
    problems = []
    # detection
    text = record.node_log_text(node)
    rx = re.compile(values.get("log_regex") or CORRUPTION_LOG_RE)
    hits = [ln for ln in text.splitlines() if rx.search(ln)]
    evidence["detections"] = hits[:5]
    if not hits:
        problems.append(f"{node}'s log never reports the corruption (no line matches the detection pattern)")
    else:
        mentioned = [x for h in hits for x in lsns_in(h)]
        evidence["detected_at"] = [format_lsn(x) for x in mentioned[:5]]
    # not applied: replay never passed the corrupt byte while the fault was on
    replays = [(smp["t"], int(smp["replay_lsn"])) for smp in record.node_samples(node)
               if smp.get("up") and smp.get("replay_lsn") is not None and w_start <= smp["t"] < w_end]
    if not replays:
        raise MissingData(f"no replay sample of {node} inside the fault window")
    passed = [(t, x) for t, x in replays if x > clsn]
    evidence["max_replay_in_window"] = format_lsn(max(x for _, x in replays))
    if passed:
        t, x = passed[0]
        problems.append(f"{node} replayed up to {format_lsn(x)}, past the corrupted LSN "
                        f"{format_lsn(clsn)}, at t={t:.2f} s while the fault was on")
    # converged after heal
    final = record.final
    pname, pnode = final_primary(record)
    info = final.get("nodes", {}).get(node) or {}
    caught = ((final.get("settle") or {}).get("caught_up") or {}).get(node)
    if caught is None:
        problems.append(f"{node} did not catch up with {pname} after the heal")
    elif info.get("checksums") != pnode.get("checksums"):
        problems.append(f"{node}'s table checksums differ from {pname}'s after the heal")
    evidence["caught_up_t"] = caught
    del t_fired
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, (f"corruption at {format_lsn(clsn)} detected by {node} ({len(hits)} log line(s)), "
                  f"replay stayed at or below it while corrupt, converged after heal"), evidence


def _trace_rule(rec: Mapping[str, Any]) -> str | None:
    return rec.get("rule") or rec.get("fault") or rec.get("id")


def _trace_fired(rec: Mapping[str, Any]) -> bool:
    ev = rec.get("event", rec.get("type", "fire"))
    return ev in ("fire", "fired", "fault", "corrupt")


KINDS = [corruption_detected_not_applied]
