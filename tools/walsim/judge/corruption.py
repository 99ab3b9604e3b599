"""The corruption verdict: damaged WAL is detected, never applied, and the node recovers.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord
from walsim.judge.series import final_primary
from walsim.judge.verdict import FAIL, INFO, PASS, verdict
from walsim.scenario import schema as s

#: what PostgreSQL 15 logs when WAL it reads is damaged (xlogreader.c, xlogrecovery.c)
CORRUPTION_LOG_RE = (
    r"incorrect resource manager data checksum|invalid record length|invalid magic number|"
    r"incorrect prev-link|invalid contrecord length|unexpected pageaddr|invalid info bits|"
    r"invalid resource manager ID|record with incorrect prev-link|out-of-sequence timeline ID|"
    r"there is no contrecord flag|missing contrecord|invalid xl_tot_len|"
    r"record length .* at .* too long|invalid record offset"
)


#: PostgreSQL's end-of-WAL message when it reads zeroes past the last record: routine
#: after any restart, never a detection
BENIGN_RE = re.compile(r"invalid record length at [0-9A-F]+/[0-9A-F]+: wanted \d+, got 0\b")
#: "... at X/Y": the position of the record PostgreSQL rejected
AT_LSN_RE = re.compile(r"\bat ([0-9A-F]{1,8})/([0-9A-F]{1,8})\b")
#: "... in log segment NAME, offset N": a page PostgreSQL rejected (PostgreSQL 15's page messages)
SEGMENT_RE = re.compile(r"segment ([0-9A-F]{24}), (?:LSN [0-9A-F]+/[0-9A-F]+, )?offset (\d+)")
#: %m of walsim's log_line_prefix, with log_timezone = UTC
LOG_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC ")
WAL_PAGE = 8192
WAL_SEGMENT = 16 * 1024 * 1024


def named_position(line: str) -> int | None:
    """The WAL position a detection line names: the record "at X/Y", else the page
    "in log segment S, offset N"."""
    m = AT_LSN_RE.search(line)
    if m:
        return (int(m.group(1), 16) << 32) | int(m.group(2), 16)
    m = SEGMENT_RE.search(line)
    if m:
        name, off = m.group(1), int(m.group(2))
        segno = (int(name[8:16], 16) * (0x100000000 // WAL_SEGMENT)) + int(name[16:24], 16)
        return segno * WAL_SEGMENT + off
    return None


def unchecked_bytes(lsn: int) -> str | None:
    """Why PostgreSQL never looks at the byte at ``lsn``, when the WAL layout alone says
    so (8 kB pages): bytes 20-23 of every page, the alignment padding after the fields
    of XLogPageHeaderData (magic, info, timeline, page address, remaining length: 20
    bytes, MAXALIGNed to 24; the long header of a segment's first page embeds it and
    goes on with the system identifier at byte 24)."""
    in_page = lsn % WAL_PAGE
    if 20 <= in_page < 24:
        which = "long page header" if lsn % WAL_SEGMENT < WAL_PAGE else "page header"
        return f"byte {in_page} of the {which} at {format_lsn(lsn - in_page)}: its alignment padding"
    return None


def _log_times(text: str, wall_to_t: float | None) -> list[tuple[float | None, str]]:
    """Each log line with its time on the run's clock (a line without a timestamp takes
    the previous one's; None before the first, or when the run has no wall clock)."""
    out: list[tuple[float | None, str]] = []
    last: float | None = None
    for ln in text.splitlines():
        m = LOG_TIME_RE.match(ln)
        if m and wall_to_t is not None:
            try:
                stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f" if "." in m.group(1)
                                          else "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
                last = stamp.timestamp() - wall_to_t
            except ValueError:
                pass
        out.append((last, ln))
    return out


def _wall_offset(record: RunRecord) -> float | None:
    """wall - t of the run (every record carries both)."""
    ev = next((e for e in record.events if e.get("wall") is not None and e.get("t") is not None), None)
    return float(ev["wall"]) - float(ev["t"]) if ev else None


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
    t_fired = min(float(r["t"]) for r in fired if r.get("t") is not None) \
        if any(r.get("t") is not None for r in fired) else None
    windows = [w for w in record.fault_windows() if w["id"] == fid]
    if not windows:
        raise MissingData(f"events.jsonl has no fault window for {fid!r}")
    w_start, w_end = windows[0]["start"], windows[0]["end"]
    evidence: dict[str, Any] = {"corrupt_lsn": format_lsn(clsn), "firings": len(fired),
                                "window": [w_start, w_end], "fired_t": t_fired,
                                "masks": sorted({int(r["mask"]) for r in fired if r.get("mask") is not None})}
    problems = []
    # detection: a line logged after the fault fired, naming a position at or before the
    # corrupted byte (the record or page holding it); never the routine end-of-WAL line
    lines = _log_times(record.node_log_text(node), _wall_offset(record))
    timed = any(t is not None for t, _ in lines)
    rx = re.compile(values.get("log_regex") or CORRUPTION_LOG_RE)
    hits, ignored = [], []
    # "invalid record length ... got 0" is how PostgreSQL meets the end of the WAL it has;
    # at the corrupted byte itself, once the node had received past it, it is the flip
    # that zeroed the record's length (the byte hit is the record's first)
    received = [(float(smp["t"]), int(smp["receive_lsn"])) for smp in record.node_samples(node)
                if smp.get("receive_lsn") is not None and smp.get("t") is not None]

    def received_past(t: float | None) -> bool:
        """A sample after the flip and before t shows the node had received past it."""
        since = t_fired if t_fired is not None else float("-inf")
        return t is not None and any(since <= st <= t and x > clsn for st, x in received)

    for t, ln in lines:
        if not rx.search(ln):
            continue
        pos = named_position(ln)
        why = None
        if BENIGN_RE.search(ln) and not (pos == clsn and received_past(t)):
            why = "end of WAL (zeroes), not a detection"
        elif timed and t_fired is not None and (t is None or t < t_fired - 0.05):
            why = "logged before the fault fired"
        elif pos is None:
            why = "names no WAL position"
        elif pos > clsn:
            why = f"names {format_lsn(pos)}, past the corrupted byte"
        if why:
            ignored.append({"line": ln.strip()[:300], "why": why})
        else:
            hits.append(ln)
    evidence["detections"] = [h.strip()[:300] for h in hits[:5]]
    evidence["ignored_lines"] = ignored[:5]
    evidence["log_times"] = timed
    if hits:
        evidence["detected_at"] = [format_lsn(x) for x in (named_position(h) for h in hits[:5]) if x is not None]
    # not applied: replay never passed the corrupt byte while the fault was on
    replays = [(smp["t"], int(smp["replay_lsn"])) for smp in record.node_samples(node)
               if smp.get("up") and smp.get("replay_lsn") is not None and w_start <= smp["t"] < w_end]
    if not replays:
        raise MissingData(f"no replay sample of {node} inside the fault window")
    passed = [(t, x) for t, x in replays if x > clsn]
    evidence["max_replay_in_window"] = format_lsn(max(x for _, x in replays))
    # converged after heal
    final = record.final
    pname, pnode = final_primary(record)
    info = final.get("nodes", {}).get(node) or {}
    caught = ((final.get("settle") or {}).get("caught_up") or {}).get(node)
    converged = caught is not None and info.get("checksums") == pnode.get("checksums")
    evidence["caught_up_t"] = caught
    unchecked = unchecked_bytes(clsn)
    if unchecked:
        evidence["unchecked"] = unchecked
    if not hits and unchecked and converged:
        evidence["outcome"] = "not detectable"
        return INFO, (f"not detectable: the damaged bytes are not checked by the server (corruption at "
                      f"{format_lsn(clsn)}, {unchecked}); {node} replayed "
                      f"{'past it' if passed else 'up to it'} without complaint and converged after the heal"), evidence
    if not hits:
        extra = f" ({len(ignored)} matching line(s) ignored: {ignored[0]['why']})" if ignored else ""
        problems.append(f"{node}'s log never reports the corruption at {format_lsn(clsn)}{extra}")
    if passed:
        t, x = passed[0]
        problems.append(f"{node} replayed up to {format_lsn(x)}, past the corrupted LSN "
                        f"{format_lsn(clsn)}, at t={t:.2f} s while the fault was on")
    if caught is None:
        problems.append(f"{node} did not catch up with {pname} after the heal")
    elif not converged:
        problems.append(f"{node}'s table checksums differ from {pname}'s after the heal")
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, (f"corruption at {format_lsn(clsn)} detected by {node} ({len(hits)} log line(s) after the "
                  f"fault fired, naming {', '.join(evidence['detected_at'][:2])}), replay stayed at or below "
                  f"it while corrupt, converged after heal"), evidence


def _trace_rule(rec: Mapping[str, Any]) -> str | None:
    return rec.get("rule") or rec.get("fault") or rec.get("id")


def _trace_fired(rec: Mapping[str, Any]) -> bool:
    ev = rec.get("event", rec.get("type", "fire"))
    return ev in ("fire", "fired", "fault", "corrupt")


KINDS = [corruption_detected_not_applied]
