"""Verdicts on a cluster an HA manager drives: ``manager_view``.

The manager layer samples the manager's own view of every member (its role:
primary, standby, down) every 0.5 s (``samples.jsonl``, ``source =
"manager"``); the observer samples every node (``pg_is_in_recovery()``) every
0.1 s, and the ledger records which node acknowledged each commit.  A
*disagreement* is a manager sample whose role for a node differs from what the
node was at that time: the nearest node sample within ``max_skew`` says
otherwise (the manager calls it primary while it is a standby or down, or a
standby while it is down), or the node acknowledged a commit within
``max_skew`` while the manager called it a standby or down.  A node out of
recovery that the manager calls a standby or down is not held against the
manager unless it acknowledged a commit: "not in recovery" is not "can
commit" (an isolated primary whose synchronous standby is gone commits
nothing); such samples are counted in the evidence.  Roles take time to change (a promotion,
a demotion, a sample between them), so only a disagreement that lasts longer
than ``tolerance`` (first to last disagreeing sample of a run) fails.
"""

from __future__ import annotations

import bisect
from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s


def _nearest(times: list[float], rows: list[dict[str, Any]], t: float, skew: float) -> dict[str, Any] | None:
    i = bisect.bisect_left(times, t)
    best = None
    for j in (i - 1, i):
        if 0 <= j < len(times) and abs(times[j] - t) <= skew:
            if best is None or abs(times[j] - t) < abs(best[0] - t):
                best = (times[j], rows[j])
    return best[1] if best else None


@verdict("manager_view", {
    "tolerance": s.duration(default=15.0, help="how long the manager may disagree with the nodes "
                            "(a role change in progress) before it is a FAIL"),
    "max_skew": s.duration(default=0.5, help="how far apart in time a manager sample and a node "
                           "sample or acknowledgement may be to be compared"),
}, "the manager's view of every node's role matches what was observed (role sampled on the node, "
   "commits acknowledged by it)")
def manager_view(record: RunRecord, values: Mapping[str, Any], durability: str):
    views = [smp for smp in record.samples if smp.get("source") == "manager" and "stats" in smp]
    if not views:
        errors = [smp.get("error") for smp in record.samples if smp.get("source") == "manager"]
        raise MissingData("no sample of the manager's view was recorded"
                          + (f" (the manager could not be asked: {errors[-1]})" if errors else
                             " (is there a [manager]?)"))
    tol, skew = float(values["tolerance"]), float(values["max_skew"])
    node_rows: dict[str, list[dict[str, Any]]] = {}
    for smp in record.samples:
        if smp.get("node"):
            node_rows.setdefault(smp["node"], []).append(smp)
    for rows in node_rows.values():
        rows.sort(key=lambda r: r["t"])
    node_times = {n: [r["t"] for r in rows] for n, rows in node_rows.items()}
    acks: dict[str, list[float]] = {}
    try:
        for r in record.ledger:
            if r.get("op") == "write" and r.get("outcome") == "acked" and r.get("node"):
                acks.setdefault(r["node"], []).append(float(r["t"]))
    except MissingData:
        pass
    for v in acks.values():
        v.sort()

    runs: dict[str, list[dict[str, Any]]] = {}
    soft: dict[str, int] = {}
    open_run: dict[str, dict[str, Any]] = {}
    compared = 0
    for view in sorted(views, key=lambda r: r["t"]):
        t = float(view["t"])
        for m in view["stats"].get("members", []):
            name, says = m.get("name"), m.get("role")
            if name not in node_rows or says not in ("primary", "standby", "down"):
                continue
            smp = _nearest(node_times[name], node_rows[name], t, skew)
            seen = None if smp is None else (smp.get("role") if smp.get("up") else "down")
            a = acks.get(name, [])
            i = bisect.bisect_left(a, t - skew)
            acked = i < len(a) and a[i] <= t + skew
            why = None
            if acked and says != "primary":
                why = f"acknowledged a commit while the manager called it {says}"
            elif seen == "primary" and says != "primary":
                # Out of recovery is not "can commit" (a primary whose synchronous standby is
                # gone commits nothing): without an acknowledgement it is not held against
                # the manager, only counted.
                soft[name] = soft.get(name, 0) + 1
            elif seen is not None and seen != says:
                why = f"was {seen} while the manager called it {says}"
            if seen is None and not acked:
                continue
            compared += 1
            cur = open_run.get(name)
            if why is None:
                if cur is not None:
                    runs.setdefault(name, []).append(open_run.pop(name))
                continue
            if cur is None:
                open_run[name] = {"node": name, "from_t": t, "to_t": t, "manager": says, "why": why}
            else:
                cur["to_t"] = t
    for name, cur in open_run.items():
        cur["until_end"] = True
        runs.setdefault(name, []).append(cur)
    if compared == 0:
        raise MissingData("no manager sample could be compared with a node sample or acknowledgement")
    all_runs = sorted((r for rs in runs.values() for r in rs), key=lambda r: r["from_t"])
    for r in all_runs:
        r["duration_s"] = round(r["to_t"] - r["from_t"], 2)
    bad = [r for r in all_runs if r["duration_s"] > tol]
    evidence = {"manager_samples": len(views), "compared": compared, "tolerance_s": tol,
                "disagreements": all_runs[:20], "out_of_recovery_unconfirmed": soft}
    if bad:
        r = bad[0]
        tail = " until the end of the run" if r.get("until_end") else ""
        return FAIL, (f"{r['node']} {r['why']} for {r['duration_s']:.1f} s (t={r['from_t']:.1f}-{r['to_t']:.1f} s"
                      f"{tail}; {len(bad)} disagreement(s) longer than {tol:g} s)"), evidence
    brief = f"; {len(all_runs)} shorter disagreement(s) during role changes" if all_runs else ""
    if soft:
        brief += ("; out of recovery without acknowledging anything while the manager called it "
                  "standby or down: " + ", ".join(f"{n} ({k} samples)" for n, k in sorted(soft.items())))
    return PASS, f"the manager's view matched the nodes in {compared} comparisons{brief}", evidence


KINDS = [manager_view]
