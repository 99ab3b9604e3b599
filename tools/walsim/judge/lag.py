"""Verdicts on replication lag: within a bound, reaching a bound, recovering after a heal.

Lag in bytes is the primary's WAL insert position at the latest primary sample
minus the standby's position; lag in seconds is ``pg_stat_replication``'s
``*_lag`` (see :func:`walsim.judge.series.lag_series`).
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord
from walsim.judge.series import scaled_bound, human_bytes, lag_series, window
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s


_LAG_FIELDS = {
    "node": s.node_ref(required=True),
    "kind": s.choice(("write", "flush", "replay"), default="replay"),
    "max_bytes": s.size(help="bound on the lag in bytes behind the primary's WAL insert position"),
    "max_seconds": s.duration(help="bound on pg_stat_replication's *_lag"),
    "from": s.step_ref(help="window starts when this step starts (default: cluster ready)"),
    "until": s.step_ref(help="window ends when this step ends (default: end of run)"),
}


def _need_bound(values: Mapping[str, Any], a: str, b: str) -> None:
    if values.get(a) is None and values.get(b) is None:
        raise MissingData(f"neither {a} nor {b} is set: nothing to compare with")


@verdict("lag_within", _LAG_FIELDS, "observed lag stays within a bound during a window")
def lag_within(record: RunRecord, values: Mapping[str, Any], durability: str):
    _need_bound(values, "max_bytes", "max_seconds")
    start, end = window(record, values)
    series = [x for x in lag_series(record, values["node"], values["kind"]) if start <= x[0] <= end]
    if not series:
        raise MissingData(f"no lag sample of {values['node']} in the window")
    worst_b = max(series, key=lambda x: x[1])
    secs = [x for x in series if x[2] is not None]
    worst_s = max(secs, key=lambda x: x[2]) if secs else None
    evidence = {"samples": len(series), "max_bytes_seen": worst_b[1], "max_bytes_t": worst_b[0],
                "max_seconds_seen": worst_s[2] if worst_s else None, "window": [start, min(end, series[-1][0])]}
    problems = []
    if values.get("max_bytes") is not None and worst_b[1] > values["max_bytes"]:
        problems.append(f"{values['kind']} lag reached {human_bytes(worst_b[1])} at t={worst_b[0]:.2f} s "
                        f"(bound {human_bytes(values['max_bytes'])})")
    if values.get("max_seconds") is not None:
        if worst_s is None:
            raise MissingData("pg_stat_replication never reported a lag in seconds for this node")
        if worst_s[2] > values["max_seconds"]:
            problems.append(f"{values['kind']}_lag reached {worst_s[2]:.2f} s at t={worst_s[0]:.2f} s "
                            f"(bound {values['max_seconds']:g} s)")
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, (f"max {values['kind']} lag of {values['node']}: {human_bytes(worst_b[1])}"
                  + (f", {worst_s[2]:.2f} s" if worst_s else "") + f" over {len(series)} samples"), evidence


@verdict("lag_exceeds", {k: v for k, v in _LAG_FIELDS.items() if k not in ("max_bytes", "max_seconds")} | {
    "min_bytes": s.size(help="the lag in bytes must reach at least this"),
    "min_seconds": s.duration(help="pg_stat_replication's *_lag must reach at least this"),
}, "the fault had a visible effect: lag reached at least a bound during a window")
def lag_exceeds(record: RunRecord, values: Mapping[str, Any], durability: str):
    _need_bound(values, "min_bytes", "min_seconds")
    start, end = window(record, values)
    series = [x for x in lag_series(record, values["node"], values["kind"]) if start <= x[0] <= end]
    if not series:
        raise MissingData(f"no lag sample of {values['node']} in the window")
    worst_b = max(series, key=lambda x: x[1])
    secs = [x for x in series if x[2] is not None]
    worst_s = max(secs, key=lambda x: x[2]) if secs else None
    evidence = {"samples": len(series), "max_bytes_seen": worst_b[1], "max_bytes_t": worst_b[0],
                "max_seconds_seen": worst_s[2] if worst_s else None}
    ok = []
    problems = []
    if values.get("min_bytes") is not None:
        if worst_b[1] >= values["min_bytes"]:
            ok.append(f"{human_bytes(worst_b[1])} at t={worst_b[0]:.2f} s")
        else:
            problems.append(f"lag peaked at {human_bytes(worst_b[1])}, below {human_bytes(values['min_bytes'])}")
    if values.get("min_seconds") is not None:
        if worst_s is not None and worst_s[2] >= values["min_seconds"]:
            ok.append(f"{worst_s[2]:.2f} s at t={worst_s[0]:.2f} s")
        else:
            problems.append(f"{values['kind']}_lag peaked at "
                            f"{worst_s[2] if worst_s else 0:.2f} s, below {values['min_seconds']:g} s")
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, f"{values['kind']} lag of {values['node']} reached " + ", ".join(ok), evidence


@verdict("lag_recovers", {
    "node": s.node_ref(required=True),
    "kind": s.choice(("write", "flush", "replay"), default="replay"),
    "after": s.step_ref(required=True, help="usually the heal step"),
    "within": s.duration(required=True, help="how long after that step the lag must be back under the bound"),
    "max_bytes": s.size(default=0, help="the bound (default 0: fully caught up)"),
}, "after a heal the lag comes back under a bound within a deadline",
    settle=lambda v, sc: ([], float(v["within"])))
def lag_recovers(record: RunRecord, values: Mapping[str, Any], durability: str):
    t0 = record.step_time(values["after"], "end")
    full = lag_series(record, values["node"], values["kind"])
    series = [x for x in full if x[0] >= t0]
    if not series:
        raise MissingData(f"no lag sample of {values['node']} after step {values['after']!r}")
    bound = int(values.get("max_bytes") or 0)
    hit = next((x for x in series if x[1] <= bound), None)
    within = scaled_bound(record, values["within"])
    # the lag at the heal: the last sample taken before the step ended (the first one
    # after it may already show the standby caught up)
    at_heal = next((x for x in reversed(full) if x[0] <= t0), series[0])
    peak = max(x[1] for x in full if x[0] <= t0) if at_heal is not series[0] else series[0][1]
    evidence = {"heal_t": t0, "bound_bytes": bound, "within_s": within,
                "lag_at_heal": at_heal[1], "lag_at_heal_t": at_heal[0], "max_lag_before_heal": peak,
                "samples": len(series)}
    quote = f"lag at the heal {human_bytes(at_heal[1])} (t={at_heal[0]:.2f} s)"
    if hit is None:
        return FAIL, (f"{values['node']}'s {values['kind']} lag never came back under "
                      f"{human_bytes(bound)} after {values['after']} ({quote}, last "
                      f"{human_bytes(series[-1][1])})"), evidence
    took = hit[0] - t0
    evidence["recovered_after_s"] = took
    if took > within:
        return FAIL, (f"{values['node']} back under {human_bytes(bound)} {took:.2f} s after {values['after']}, "
                      f"more than {within:g} s ({quote})"), evidence
    return PASS, (f"{values['node']} back under {human_bytes(bound)} {took:.2f} s after "
                  f"{values['after']} ({quote})"), evidence


KINDS = [lag_within, lag_exceeds, lag_recovers]
