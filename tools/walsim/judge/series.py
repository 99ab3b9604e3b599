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


# ---------------------------------------------------------------- acknowledgements

class Ack:
    """An acknowledged commit: the node that acknowledged it and when.  Its commit
    happened somewhere in ``[sent, t]`` (sent by the client, answer received)."""

    __slots__ = ("node", "sent", "t", "rec")

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self.rec = rec
        self.node = str(rec.get("node"))
        self.t = float(rec["t"])
        sent = rec.get("sent_t")
        self.sent = float(sent) if sent is not None else self.t

    def __repr__(self) -> str:
        return f"<Ack {self.node} {self.sent:.3f}..{self.t:.3f}>"


def acks(record: RunRecord, workload: str | None = None) -> list[Ack]:
    """Every acknowledged commit that names its node, by time of acknowledgement."""
    out = [Ack(r) for r in ledger_writes(record, workload) if r.get("outcome") == "acked" and r.get("node")]
    out.sort(key=lambda a: (a.t, a.sent))
    return out


#: observer samples further apart than this mean the node did not answer in between
SAMPLE_GAP = 1.0


def quiet_intervals(record: RunRecord) -> dict[str, list[tuple[float, float, str]]]:
    """Per node, the times it is known to have accepted nothing, with why: frozen by a
    ``pause`` step until its ``resume``; down (observer samples say so); not
    answering the observer (no sample for more than ``SAMPLE_GAP`` seconds, scaled
    by the run's ``WALSIM_TIMEOUT_MULT``: the observer's query to it was blocked)."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    try:
        events = record.events
    except MissingData:
        events = []
    end_t = max((float(e["t"]) for e in events), default=float("inf"))
    paused: dict[str, float] = {}
    writable = {e.get("id") for e in events if e.get("type") == "step_end"
                and (e.get("detail") or {}).get("accepts_writes")}
    for e in events:
        if e.get("type") != "step_start" or not e.get("node") or e.get("id") in writable:
            continue  # a pause of the walsender (say) leaves the node taking commits
        n = str(e["node"])
        if e.get("kind") == "pause" and n not in paused:
            paused[n] = float(e["t"])
        elif e.get("kind") == "resume" and n in paused:
            out.setdefault(n, []).append((paused.pop(n), float(e["t"]), "frozen"))
    for n, t0 in paused.items():
        out.setdefault(n, []).append((t0, end_t, "frozen"))
    try:
        samples = record.samples
    except MissingData:
        samples = []
    gap = scaled_bound(record, SAMPLE_GAP)
    by_node: dict[str, list[dict[str, Any]]] = {}
    for smp in samples:
        if smp.get("node"):
            by_node.setdefault(smp["node"], []).append(smp)
    for n, smps in by_node.items():
        smps.sort(key=lambda x: x["t"])
        down_since: float | None = None
        prev: float | None = None
        for smp in smps:
            t = float(smp["t"])
            if prev is not None and t - prev > gap:
                out.setdefault(n, []).append((prev, t, "not answering"))
            if not smp.get("up"):
                down_since = t if down_since is None else down_since
            elif down_since is not None:
                out.setdefault(n, []).append((down_since, t, "down"))
                down_since = None
            prev = t
        if down_since is not None:
            out.setdefault(n, []).append((down_since, max(end_t, down_since), "down"))
    for v in out.values():
        v.sort()
    return out


def unrefuted(node_acks: list[Ack], quiet: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The quiet times of a node that none of its acknowledgements contradicts: an
    acknowledgement is a fact, so a quiet time during which the node acknowledged a
    commit (sent and answered inside it) is dropped (the observer was wrong)."""
    return [q for q in quiet if not any(q[0] < a.sent and a.t < q[1] for a in node_acks)]


def writer_periods(node_acks: list[Ack], quiet: list[tuple[float, float, str]]) -> list[list[Ack]]:
    """A node's acknowledgements split into periods: a new period begins after a time
    the node accepted nothing (``quiet``), so a frozen or restarted node is not
    counted as writing through it.  A commit in flight across such a time (sent
    before it ended, answered after it began) belongs to no period: it may have
    committed before the freeze or after it.  A quiet time during which the node
    acknowledged a commit is ignored: the acknowledgement is a fact, the observer's
    view of the node is not."""
    quiet = unrefuted(node_acks, quiet)
    periods: list[list[Ack]] = []
    for a in node_acks:
        if any(q0 < a.t and a.sent < q1 for q0, q1, _ in quiet):
            continue  # in flight across a quiet time: it may have committed on either side
        if periods:
            prev = periods[-1][-1]
            if not any(q0 < a.t and q1 > prev.t for q0, q1, _ in quiet):
                periods[-1].append(a)
                continue
        periods.append([a])
    return periods


def inside(a: Ack, first_t: float, last_sent: float) -> bool:
    """Whether ``a``'s commit certainly happened while another node was writing: that
    node acknowledged a commit (at ``first_t``) before ``a`` was sent and sent one (at
    ``last_sent``) after ``a`` was acknowledged, in one of its writer periods."""
    return first_t < a.sent and last_sent > a.t


def overlaps(by_node: dict[str, list[list[Ack]]]) -> list[dict[str, Any]]:
    """Every pair of writer periods of two nodes with a commit of one certainly inside
    the other's: the nodes, the window (first to last such commit) and the counts."""
    out = []
    names = sorted(by_node)
    span = {id(p): (p[0].t, max(a.sent for a in p)) for ps in by_node.values() for p in ps}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            for px in by_node[x]:
                for py in by_node[y]:
                    wx = [a for a in px if inside(a, *span[id(py)])]
                    wy = [a for a in py if inside(a, *span[id(px)])]
                    if not wx and not wy:
                        continue
                    both = wx + wy
                    out.append({"nodes": [x, y], "start": min(a.sent for a in both),
                                "end": max(a.t for a in both), "commits": {x: len(wx), y: len(wy)},
                                "periods": {x: [px[0].t, px[-1].t], y: [py[0].t, py[-1].t]}})
    out.sort(key=lambda o: o["start"])
    return out


def running_intervals(record: RunRecord, workload: str | None = None) -> list[tuple[float, float]] | None:
    """When at least one ledger workload (or the named one) was running, from the
    ``workload_start``/``workload_stop`` events; None when the run recorded none."""
    ledgers = {n for n, w in record.scenario.workloads.items() if w.kind == "ledger"}
    if workload is not None:
        ledgers &= {workload}
    try:
        events = record.events
    except MissingData:
        return None
    running: dict[str, float] = {}
    spans: list[tuple[float, float]] = []
    seen = False
    end_t = max((float(e["t"]) for e in events), default=0.0)
    for e in events:
        if e.get("name") not in ledgers:
            continue
        if e.get("type") == "workload_start":
            seen = True
            running.setdefault(e["name"], float(e["t"]))
        elif e.get("type") == "workload_stop" and e["name"] in running:
            spans.append((running.pop(e["name"]), float(e["t"])))
    spans += [(t0, end_t) for t0 in running.values()]
    if not seen:
        return None
    spans.sort()
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def ack_gaps(times: list[float], start: float, end: float,
             running: list[tuple[float, float]] | None) -> list[tuple[float, float]]:
    """The intervals of ``[start, end]`` without an acknowledgement (``times``, sorted),
    counting only time when a workload was running, longest first."""
    pts = [start] + [t for t in times if start < t < end] + [end]
    gaps = []
    for a, b in zip(pts, pts[1:]):
        if running is None:
            gaps.append((a, b))
            continue
        for r0, r1 in running:
            lo, hi = max(a, r0), min(b, r1)
            if hi > lo:
                gaps.append((lo, hi))
    gaps.sort(key=lambda g: g[0] - g[1])
    return gaps


def fmt_window(a: float, b: float) -> str:
    return f"t={a:.2f}–{b:.2f} s"
