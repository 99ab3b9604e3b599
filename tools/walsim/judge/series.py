"""Measures computed from a run record, shared by the verdicts and the report.

Time series (each node's lag behind the primary, the primary's WAL position),
windows between steps, the ledger's writes, the final primary, and the
bounds and units verdicts quote.  Everything raises
:class:`~walsim.core.errors.MissingData` when the record lacks what it needs.
"""

from __future__ import annotations

from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RunRecord


def ledger_writes(record: RunRecord, workload: str | None) -> list[dict[str, Any]]:
    rows = [r for r in record.ledger if r.get("op") == "write"
            and (workload is None or r.get("workload") == workload)]
    return rows


def final_primary(record: RunRecord) -> tuple[str, dict[str, Any]]:
    final = record.final
    name = final.get("primary")
    nodes = final.get("nodes", {})
    if not name or name not in nodes:
        raise MissingData("final.json names no primary reachable at the end of the run")
    return name, nodes[name]


def primary_lsn_series(record: RunRecord) -> list[tuple[float, int]]:
    """(t, current WAL insert LSN) of whichever node was primary at each sample."""
    out = []
    for smp in record.samples:
        if smp.get("up") and smp.get("role") == "primary" and smp.get("insert_lsn") is not None:
            out.append((smp["t"], int(smp["insert_lsn"])))
    out.sort()
    return out


def lag_series(record: RunRecord, node: str, kind: str) -> list[tuple[float, int, float | None]]:
    """(t, lag in bytes, lag in seconds or None) of ``node`` at each of its samples.

    Bytes: the primary's insert LSN at the latest primary sample not after t
    minus the node's ``kind`` LSN (receive for write/flush, replay for replay).
    Seconds: the matching ``*_lag`` column of the node's pg_stat_replication
    row on its upstream, when an upstream sample holds it.
    """
    prim = primary_lsn_series(record)
    if not prim:
        raise MissingData("no sample of a primary's WAL position")
    key = "replay_lsn" if kind == "replay" else "receive_lsn"
    seconds_by_t = stat_lag_seconds(record, node, kind)
    out = []
    j = 0
    for smp in record.node_samples(node):
        if not smp.get("up") or smp.get(key) is None:
            continue
        t = smp["t"]
        while j + 1 < len(prim) and prim[j + 1][0] <= t:
            j += 1
        if prim[j][0] > t:
            continue
        lag = max(0, prim[j][1] - int(smp[key]))
        out.append((t, lag, nearest(seconds_by_t, t)))
    return out


def stat_lag_seconds(record: RunRecord, node: str, kind: str) -> list[tuple[float, float | None]]:
    col = f"{kind}_lag"
    out = []
    for smp in record.samples:
        for row in smp.get("replication") or ():
            if row.get("application_name") == node:
                out.append((smp["t"], row.get(col)))
    return out


def nearest(series: list[tuple[float, float | None]], t: float, within: float = 0.5) -> float | None:
    best = None
    for ts, v in series:
        if abs(ts - t) <= within and (best is None or abs(ts - t) < abs(best[0] - t)):
            best = (ts, v)
    return best[1] if best else None


def window(record: RunRecord, values: Mapping[str, Any]) -> tuple[float, float]:
    start = record.step_time(values["from"], "start") if values.get("from") else ready_time(record)
    end = record.step_time(values["until"], "end") if values.get("until") else float("inf")
    return start, end


def ready_time(record: RunRecord) -> float:
    ev = record.first_event("cluster_ready")
    if ev is None:
        raise MissingData("events.jsonl has no cluster_ready event (the cluster never came up)")
    return float(ev["t"])


def scaled_bound(record: RunRecord, seconds: float) -> float:
    """A wall-clock bound of a verdict, scaled like every deadline by the
    WALSIM_TIMEOUT_MULT the run had (recorded in run.json)."""
    try:
        mult = float(record.run.get("timeout_mult") or 1.0)
    except (TypeError, ValueError):
        mult = 1.0
    return float(seconds) * mult


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover
