"""Verdicts: judged after the run, from recorded data only (Jepsen style).

Each verdict kind declares its fields (checked by the scenario loader) and an
``evaluate(record, values, durability)`` function returning a
:class:`Verdict`: PASS, FAIL, INFO (a measurement that promises nothing) or
ERROR (the recorded data does not allow a judgement: never a PASS).  The
meaning, inputs and limits of every kind are documented in ``docs/verdicts.md``.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from walsim import schema as s
from walsim.record import MissingData, RunRecord, lsns_in
from walsim.schema import format_lsn

PASS, FAIL, INFO, ERROR = "PASS", "FAIL", "INFO", "ERROR"
#: synchronous_commit levels at which a commit waits for a synchronous standby
SYNC_LEVELS = ("on", "remote_apply", "remote_write")

#: what PostgreSQL 15 logs when WAL it reads is damaged (xlogreader.c, xlogrecovery.c)
CORRUPTION_LOG_RE = (
    r"incorrect resource manager data checksum|invalid record length|invalid magic number|"
    r"incorrect prev-link|invalid contrecord length|unexpected pageaddr|invalid info bits|"
    r"invalid resource manager ID|record with incorrect prev-link|out-of-sequence timeline ID|"
    r"there is no contrecord flag|missing contrecord|invalid xl_tot_len|"
    r"record length .* at .* too long|invalid record offset"
)


@dataclass
class Verdict:
    name: str
    check: str
    result: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Evaluate = Callable[[RunRecord, Mapping[str, Any], str], tuple[str, str, dict[str, Any]]]


@dataclass
class VerdictKind:
    name: str
    fields: dict[str, s.Field]
    doc: str
    evaluate: Evaluate


VERDICTS: dict[str, VerdictKind] = {}


def verdict(name: str, fields: Mapping[str, s.Field], doc: str) -> Callable[[Evaluate], Evaluate]:
    def deco(fn: Evaluate) -> Evaluate:
        VERDICTS[name] = VerdictKind(name, dict(fields), doc, fn)
        return fn
    return deco


def evaluate_all(record: RunRecord) -> list[Verdict]:
    """Every verdict of the record's scenario; exceptions become ERROR."""
    out = []
    scenario = record.scenario
    for spec in scenario.verdicts:
        kind = VERDICTS[spec.check]
        try:
            result, summary, evidence = kind.evaluate(record, spec.values, scenario.durability)
        except MissingData as exc:
            result, summary, evidence = ERROR, f"cannot be evaluated: {exc}", {}
        except Exception as exc:  # a bug or malformed record must not read as PASS
            result, summary = ERROR, f"evaluation failed: {type(exc).__name__}: {exc}"
            evidence = {"traceback": traceback.format_exc(limit=4)}
        out.append(Verdict(spec.name, spec.check, result, summary, evidence))
    return out


def overall(verdicts: list[Verdict], step_failure: bool = False) -> int:
    """Exit status: 1 if any FAIL, else 2 if any ERROR, else 0."""
    results = {v.result for v in verdicts}
    if FAIL in results:
        return 1
    if ERROR in results:
        return 2
    return 0


# ------------------------------------------------------------------ helpers

def _ledger_writes(record: RunRecord, workload: str | None) -> list[dict[str, Any]]:
    rows = [r for r in record.ledger if r.get("op") == "write"
            and (workload is None or r.get("workload") == workload)]
    return rows


def _final_primary(record: RunRecord) -> tuple[str, dict[str, Any]]:
    final = record.final
    name = final.get("primary")
    nodes = final.get("nodes", {})
    if not name or name not in nodes:
        raise MissingData("final.json names no primary reachable at the end of the run")
    return name, nodes[name]


def _primary_lsn_series(record: RunRecord) -> list[tuple[float, int]]:
    """(t, current WAL insert LSN) of whichever node was primary at each sample."""
    out = []
    for smp in record.samples:
        if smp.get("up") and smp.get("role") == "primary" and smp.get("insert_lsn") is not None:
            out.append((smp["t"], int(smp["insert_lsn"])))
    out.sort()
    return out


def _lag_series(record: RunRecord, node: str, kind: str) -> list[tuple[float, int, float | None]]:
    """(t, lag in bytes, lag in seconds or None) of ``node`` at each of its samples.

    Bytes: the primary's insert LSN at the latest primary sample not after t
    minus the node's ``kind`` LSN (receive for write/flush, replay for replay).
    Seconds: the matching ``*_lag`` column of the node's pg_stat_replication
    row on its upstream, when an upstream sample holds it.
    """
    prim = _primary_lsn_series(record)
    if not prim:
        raise MissingData("no sample of a primary's WAL position")
    key = "replay_lsn" if kind == "replay" else "receive_lsn"
    seconds_by_t = _stat_lag_seconds(record, node, kind)
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
        out.append((t, lag, _nearest(seconds_by_t, t)))
    return out


def _stat_lag_seconds(record: RunRecord, node: str, kind: str) -> list[tuple[float, float | None]]:
    col = f"{kind}_lag"
    out = []
    for smp in record.samples:
        for row in smp.get("replication") or ():
            if row.get("application_name") == node:
                out.append((smp["t"], row.get(col)))
    return out


def _nearest(series: list[tuple[float, float | None]], t: float, within: float = 0.5) -> float | None:
    best = None
    for ts, v in series:
        if abs(ts - t) <= within and (best is None or abs(ts - t) < abs(best[0] - t)):
            best = (ts, v)
    return best[1] if best else None


def _window(record: RunRecord, values: Mapping[str, Any]) -> tuple[float, float]:
    start = record.step_time(values["from"], "start") if values.get("from") else _ready_time(record)
    end = record.step_time(values["until"], "end") if values.get("until") else float("inf")
    return start, end


def _ready_time(record: RunRecord) -> float:
    ev = record.first_event("cluster_ready")
    if ev is None:
        raise MissingData("events.jsonl has no cluster_ready event (the cluster never came up)")
    return float(ev["t"])


def _bound(record: RunRecord, seconds: float) -> float:
    """A wall-clock bound of a verdict, scaled like every deadline by the
    WALSIM_TIMEOUT_MULT the run had (recorded in run.json)."""
    try:
        mult = float(record.run.get("timeout_mult") or 1.0)
    except (TypeError, ValueError):
        mult = 1.0
    return float(seconds) * mult


def _human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


# ------------------------------------------------------------- no_acked_loss

@verdict("no_acked_loss", {
    "workload": s.workload_ref(help="the ledger workload to judge (default: all)"),
    "promised": s.boolean(help="whether a loss is a FAIL (default: durability is sync or quorum); "
                          "true for a promise the durability field does not express, e.g. a "
                          "single node's fsync"),
}, "every commit a client saw acknowledged is present on the final primary")
def no_acked_loss(record: RunRecord, values: Mapping[str, Any], durability: str):
    writes = _ledger_writes(record, values.get("workload"))
    acked = [r for r in writes if r.get("outcome") == "acked"]
    indeterminate = [r for r in writes if r.get("outcome") == "indeterminate"]
    failed = [r for r in writes if r.get("outcome") == "failed"]
    if not acked:
        raise MissingData("the ledger holds no acknowledged commit, so there is nothing to judge")
    pname, pnode = _final_primary(record)
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
              f"{_human_bytes(evidence['loss_window_bytes'])} of WAL")
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


def _loss_window(record: RunRecord, lost: list[dict[str, Any]], final_primary: str) -> dict[str, Any]:
    lsns = [int(r["lsn"]) for r in lost if r.get("lsn") is not None]
    times = [float(r["t"]) for r in lost if r.get("t") is not None]
    fork = None
    for e in record.events:
        if e.get("type") == "promoted" and e.get("node") == final_primary and e.get("lsn_before") is not None:
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


# ------------------------------------------------------------------ converge

@verdict("converge", {
    "nodes": s.list_of(s.node_ref(), help="nodes that must converge (default: every node up at the end)"),
    "within": s.duration(default=30.0, help="deadline after the last heal (or `after`)"),
    "after": s.step_ref(help="measure from the end of this step (default: the last heal or fault end)"),
}, "after healing every standby reaches the primary's LSN within a deadline and table checksums match")
def converge(record: RunRecord, values: Mapping[str, Any], durability: str):
    final = record.final
    nodes_final = final.get("nodes", {})
    pname, pnode = _final_primary(record)
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
    within = _bound(record, float(values.get("within") or 30.0))
    evidence: dict[str, Any] = {"primary": pname, "target_lsn": format_lsn(int(target)),
                                "reference_t": ref_t, "within_s": within, "nodes": {}}
    problems = []
    ref_sums = pnode.get("checksums")
    if ref_sums is None:
        raise MissingData(f"final.json has no table checksums for the primary {pname}")
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
        if sums is None:
            problems.append(f"{n}: no table checksums recorded")
        else:
            diff = [t for t in ref_sums if sums.get(t) != ref_sums[t]]
            if diff:
                problems.append(f"{n}: checksums differ from {pname} for {', '.join(diff)}")
            ev["checksums_equal"] = not diff
        evidence["nodes"][n] = ev
    if problems:
        return FAIL, "; ".join(problems), evidence
    others = [n for n in wanted if n != pname]
    return PASS, (f"{', '.join(others) or 'no standby'} replayed up to {format_lsn(int(target))} and "
                  f"match {pname} ({len(ref_sums)} table checksum(s))"), evidence


# ------------------------------------------------------------------ corruption

@verdict("corruption_detected_not_applied", {
    "node": s.node_ref(required=True, help="the standby receiving the corrupted WAL"),
    "fault": s.fault_ref(required=True, help="the corrupt fault step"),
    "log_regex": s.regex(default=CORRUPTION_LOG_RE, help="what counts as detection in the node's log"),
}, "corrupted WAL is detected (the log says so), never replayed past while corrupt, and the node converges")
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
    pname, pnode = _final_primary(record)
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


# ------------------------------------------------------------------ timeline

@verdict("timeline", {
    "expect": s.node_map(s.integer(lo=1), required=True, help="node = expected timeline at the end"),
}, "each node ends on the expected timeline")
def timeline(record: RunRecord, values: Mapping[str, Any], durability: str):
    nodes = record.final.get("nodes", {})
    got: dict[str, Any] = {}
    problems = []
    for n, want in values["expect"].items():
        tl = (nodes.get(n) or {}).get("timeline")
        if tl is None:
            tl = next((smp.get("timeline") for smp in reversed(record.node_samples(n))
                       if smp.get("timeline") is not None), None)
        if tl is None:
            raise MissingData(f"no timeline recorded for {n}")
        got[n] = tl
        if int(tl) != int(want):
            problems.append(f"{n} is on timeline {tl}, expected {want}")
    evidence = {"expected": dict(values["expect"]), "observed": got}
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, ", ".join(f"{n} on timeline {t}" for n, t in got.items()), evidence


# ------------------------------------------------------------- single_writer

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


# ---------------------------------------------------------------------- lag

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
    start, end = _window(record, values)
    series = [x for x in _lag_series(record, values["node"], values["kind"]) if start <= x[0] <= end]
    if not series:
        raise MissingData(f"no lag sample of {values['node']} in the window")
    worst_b = max(series, key=lambda x: x[1])
    secs = [x for x in series if x[2] is not None]
    worst_s = max(secs, key=lambda x: x[2]) if secs else None
    evidence = {"samples": len(series), "max_bytes_seen": worst_b[1], "max_bytes_t": worst_b[0],
                "max_seconds_seen": worst_s[2] if worst_s else None, "window": [start, min(end, series[-1][0])]}
    problems = []
    if values.get("max_bytes") is not None and worst_b[1] > values["max_bytes"]:
        problems.append(f"{values['kind']} lag reached {_human_bytes(worst_b[1])} at t={worst_b[0]:.2f} s "
                        f"(bound {_human_bytes(values['max_bytes'])})")
    if values.get("max_seconds") is not None:
        if worst_s is None:
            raise MissingData("pg_stat_replication never reported a lag in seconds for this node")
        if worst_s[2] > values["max_seconds"]:
            problems.append(f"{values['kind']}_lag reached {worst_s[2]:.2f} s at t={worst_s[0]:.2f} s "
                            f"(bound {values['max_seconds']:g} s)")
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, (f"max {values['kind']} lag of {values['node']}: {_human_bytes(worst_b[1])}"
                  + (f", {worst_s[2]:.2f} s" if worst_s else "") + f" over {len(series)} samples"), evidence


@verdict("lag_exceeds", {k: v for k, v in _LAG_FIELDS.items() if k not in ("max_bytes", "max_seconds")} | {
    "min_bytes": s.size(help="the lag in bytes must reach at least this"),
    "min_seconds": s.duration(help="pg_stat_replication's *_lag must reach at least this"),
}, "the fault had a visible effect: lag reached at least a bound during a window")
def lag_exceeds(record: RunRecord, values: Mapping[str, Any], durability: str):
    _need_bound(values, "min_bytes", "min_seconds")
    start, end = _window(record, values)
    series = [x for x in _lag_series(record, values["node"], values["kind"]) if start <= x[0] <= end]
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
            ok.append(f"{_human_bytes(worst_b[1])} at t={worst_b[0]:.2f} s")
        else:
            problems.append(f"lag peaked at {_human_bytes(worst_b[1])}, below {_human_bytes(values['min_bytes'])}")
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
}, "after a heal the lag comes back under a bound within a deadline")
def lag_recovers(record: RunRecord, values: Mapping[str, Any], durability: str):
    t0 = record.step_time(values["after"], "end")
    series = [x for x in _lag_series(record, values["node"], values["kind"]) if x[0] >= t0]
    if not series:
        raise MissingData(f"no lag sample of {values['node']} after step {values['after']!r}")
    bound = int(values.get("max_bytes") or 0)
    hit = next((x for x in series if x[1] <= bound), None)
    within = _bound(record, values["within"])
    evidence = {"heal_t": t0, "bound_bytes": bound, "within_s": within,
                "lag_at_heal": series[0][1], "samples": len(series)}
    if hit is None:
        return FAIL, (f"{values['node']}'s {values['kind']} lag never came back under "
                      f"{_human_bytes(bound)} (last {_human_bytes(series[-1][1])})"), evidence
    took = hit[0] - t0
    evidence["recovered_after_s"] = took
    if took > within:
        return FAIL, f"recovered after {took:.2f} s, more than {within:g} s", evidence
    return PASS, (f"{values['node']} back under {_human_bytes(bound)} {took:.2f} s after "
                  f"{values['after']} (from {_human_bytes(series[0][1])})"), evidence


# ------------------------------------------------------------- failover time

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
    writes = _ledger_writes(record, values.get("workload"))
    after = sorted((float(r["t"]), r.get("node")) for r in writes
                   if r.get("outcome") == "acked" and float(r["t"]) >= t0 and r.get("node") != victim)
    if not after:
        raise MissingData(f"no write was acknowledged by a node other than {victim} after t={t0:.2f} s")
    t1, node = after[0]
    took = t1 - t0
    evidence = {"failure_t": t0, "failed_node": victim, "first_ack_t": t1, "new_primary": node,
                "failover_s": took, "max_s": _bound(record, values["max"])}
    if took > evidence["max_s"]:
        return FAIL, (f"first write acknowledged by {node} {took:.2f} s after the failure "
                      f"(bound {evidence['max_s']:g} s)"), evidence
    return PASS, f"{took:.2f} s from the failure of {victim} to the first write acknowledged by {node}", evidence


# ------------------------------------------------------------------ streaming

@verdict("streaming", {
    "node": s.node_ref(required=True, help="the standby"),
    "upstream": s.node_ref(help="the node it must stream from (default: any)"),
    "after": s.step_ref(help="only count samples after this step ended"),
}, "the standby was seen streaming (state streaming in its upstream's pg_stat_replication)")
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


# ------------------------------------------------------------------ log

@verdict("log_contains", {
    "node": s.node_ref(required=True),
    "regex": s.regex(required=True),
    "expect": s.boolean(default=True, help="false: the pattern must never appear"),
}, "a node's log contains (or never contains) a pattern")
def log_contains(record: RunRecord, values: Mapping[str, Any], durability: str):
    text = record.node_log_text(values["node"])
    rx = re.compile(values["regex"])
    hits = [ln for ln in text.splitlines() if rx.search(ln)]
    evidence = {"matches": len(hits), "lines": hits[:5]}
    if values.get("expect", True):
        if hits:
            return PASS, f"{values['node']} logged: {hits[0].strip()[:200]}", evidence
        return FAIL, f"{values['node']}'s log has no line matching {values['regex']!r}", evidence
    if hits:
        return FAIL, f"{values['node']} logged what must not appear: {hits[0].strip()[:200]}", evidence
    return PASS, f"{values['node']}'s log never matches {values['regex']!r}", evidence


# ------------------------------------------------------------------ role

@verdict("role", {
    "expect": s.node_map(s.choice(("primary", "standby", "down")), required=True),
}, "each node ends in the expected role")
def role(record: RunRecord, values: Mapping[str, Any], durability: str):
    nodes = record.final.get("nodes", {})
    got, problems = {}, []
    for n, want in values["expect"].items():
        info = nodes.get(n)
        if info is None:
            raise MissingData(f"final.json has no entry for {n}")
        r = info.get("role") if info.get("up") else "down"
        got[n] = r
        if r != want:
            problems.append(f"{n} is {r}, expected {want}")
    if problems:
        return FAIL, "; ".join(problems), {"observed": got}
    return PASS, ", ".join(f"{n} {r}" for n, r in got.items()), {"observed": got}
