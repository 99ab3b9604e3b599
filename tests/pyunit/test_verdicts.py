"""Each verdict judged on synthetic recorded data: what must PASS, what must
FAIL, and missing data giving ERROR (never PASS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from records import base_events, base_final, base_samples, lsn, make_run, sample, write

from walsim.api import open_run
from walsim.judge.verdict import ERROR, FAIL, INFO, PASS, Verdict, evaluate_all, judge_run, overall


def judge(d: Path) -> dict[str, Verdict]:
    return {v.name: v for v in evaluate_all(open_run(d))}


def one(d: Path) -> Verdict:
    vs = evaluate_all(open_run(d))
    assert len(vs) == 1
    return vs[0]


# ----------------------------------------------------------- no_acked_loss

NAL = '[[verdicts]]\ncheck = "no_acked_loss"\n'


def test_lost_acked_commit_fails_under_sync(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 4.5, "acked"), write(3, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL, durability="sync", events=base_events(), ledger=ledger,
                     final=base_final([1, 3])))
    assert v.result == FAIL
    assert v.evidence["lost"] == 1 and v.evidence["lost_ids"] == [2]
    assert "durability = sync promised none" in v.summary


def test_indeterminate_is_not_lost(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 4.9, "indeterminate"), write(3, 4.95, "failed"),
              write(4, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL, durability="sync", events=base_events(), ledger=ledger,
                     final=base_final([1, 4])))
    assert v.result == PASS
    assert v.evidence["indeterminate"] == 1 and v.evidence["indeterminate_present"] == 0


def test_async_loss_is_info_with_window(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 4.0, "acked"), write(3, 4.5, "acked"),
              write(4, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL, events=base_events(), ledger=ledger, final=base_final([1, 4])))
    assert v.result == INFO
    assert v.evidence["lost"] == 2
    assert v.evidence["loss_window_s"] == pytest.approx(0.5)
    # bytes from the fork point (pg2's replay LSN at promotion, 0x400 here) to the last lost
    # commit (0x303): the lost commits lie before the fork, so the WAL window is clamped to 0
    # (test_loss_window_bytes_counts_from_fork has commits past the fork)
    assert v.evidence["loss_window_bytes"] == 0
    assert v.evidence["fork_lsn"] == "0/3000400"


def test_loss_window_bytes_counts_from_fork(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked", lsn=lsn(0x380)), write(2, 4.0, "acked", lsn=lsn(0x900)),
              write(3, 4.5, "acked", lsn=lsn(0xA00))]
    v = one(make_run(tmp_path, NAL, events=base_events(), ledger=ledger, final=base_final([1])))
    assert v.evidence["loss_window_bytes"] == 0xA00 - 0x400


def test_sync_loss_of_local_commits_is_not_a_failure(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked", synchronous_commit="local"), write(2, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL, durability="sync", events=base_events(), ledger=ledger,
                     final=base_final([2])))
    assert v.result == INFO and "local/off" in v.summary


def test_no_acked_commit_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, NAL, durability="sync", events=base_events(),
                     ledger=[write(1, 2.0, "failed")], final=base_final([])))
    assert v.result == ERROR and 'cannot be evaluated: the ledger holds no acknowledged commit' in v.summary


def test_missing_final_state_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, NAL, durability="sync", events=base_events(), ledger=[write(1, 2.0, "acked")]))
    assert v.result == ERROR and "final.json" in v.summary


def test_missing_ledger_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, NAL, events=base_events(), final=base_final([1])))
    assert v.result == ERROR and "ledger.jsonl" in v.summary


def test_primary_without_ledger_contents_is_error(tmp_path: Path) -> None:
    final = base_final([1])
    del final["nodes"]["pg2"]["ledger_ids"]
    v = one(make_run(tmp_path, NAL, events=base_events(), ledger=[write(1, 2.0, "acked")], final=final))
    assert v.result == ERROR and 'final.json has no ledger contents for the final primary pg2' in v.summary


def test_malformed_record_is_error_not_pass(tmp_path: Path) -> None:
    bad = {"t": 1.0, "op": "write", "outcome": "acked"}  # no id
    v = one(make_run(tmp_path, NAL, events=base_events(), ledger=[bad], final=base_final([1])))
    assert v.result == ERROR and "evaluation failed" in v.summary


# ------------------------------------------------------------------ converge

CONV = '[[verdicts]]\ncheck = "converge"\nwithin = "10s"\n'


def test_converge_pass(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CONV, events=base_events(), final=base_final([1])))
    assert v.result == PASS, v.summary


def test_converge_checksum_mismatch_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CONV, events=base_events(), final=base_final([1], sums2="zzz:9")))
    assert v.result == FAIL and "checksums differ" in v.summary


def test_converge_not_caught_up_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CONV, events=base_events(), final=base_final([1], caught={})))
    assert v.result == FAIL and "never replayed" in v.summary


def test_converge_too_late_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CONV.replace("10s", "1s"), events=base_events(),
                     final=base_final([1], caught={"pg3": 7.5})))
    assert v.result == FAIL and "more than 1 s" in v.summary


def test_converge_listed_node_down_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CONV + 'nodes = ["pg1", "pg2", "pg3"]\n', events=base_events(),
                     final=base_final([1])))
    assert v.result == FAIL and "pg1 is not running" in v.summary


def test_converge_without_settle_is_error(tmp_path: Path) -> None:
    final = base_final([1])
    del final["settle"]["target_lsn"]
    v = one(make_run(tmp_path, CONV, events=base_events(), final=final))
    assert v.result == ERROR and 'final.json has no settle target LSN' in v.summary


def test_converge_one_unreadable_relation_does_not_discard_the_others(tmp_path: Path) -> None:
    final = base_final([1])
    final["nodes"]["pg2"]["checksums"]["public.other"] = "o:1"
    final["nodes"]["pg3"]["checksums"]["public.other"] = "o:1"
    del final["nodes"]["pg3"]["checksums"]["public.walsim_ledger"]
    final["nodes"]["pg3"]["checksum_errors"] = {"public.walsim_ledger": "permission denied for table walsim_ledger"}
    final["skipped_tables"] = {"public.scratch": "unlogged: not replicated by design"}
    v = one(make_run(tmp_path, CONV, events=base_events(), final=final))
    assert v.result == ERROR
    assert v.summary == ("every other table matches, but could not compare public.walsim_ledger on pg3: "
                         "permission denied for table walsim_ledger")
    assert v.evidence["compared"] == ["public.other", "public.walsim_ledger"]
    assert v.evidence["nodes"]["pg3"]["checksums_equal"] is True
    # a mismatch elsewhere is still a FAIL, and says what could not be compared
    final["nodes"]["pg3"]["checksums"]["public.other"] = "x:2"
    (tmp_path / "b").mkdir()
    v = one(make_run(tmp_path / "b", CONV, events=base_events(), final=final))
    assert v.result == FAIL and v.summary == ("pg3: checksums differ from pg2 for public.other; could not compare "
                                              "public.walsim_ledger on pg3: permission denied for table walsim_ledger")


def test_converge_lists_compared_and_skipped_relations(tmp_path: Path) -> None:
    final = base_final([1])
    final["skipped_tables"] = {"public.scratch": "unlogged: not replicated by design"}
    v = one(make_run(tmp_path, CONV, events=base_events(), final=final))
    assert v.result == PASS
    assert v.summary.endswith("(1 table(s) compared: public.walsim_ledger; skipped: public.scratch "
                              "(unlogged: not replicated by design))")


# ------------------------------------------------------------------ corruption

CORR = '[[verdicts]]\ncheck = "corruption_detected_not_applied"\nnode = "pg2"\nfault = "c1"\n'
FIRED = [{"rule": "c1", "event": "fire", "lsn": lsn(0x100), "link": "l2", "dir": "down", "conn": 1}]
DETECTED = {"pg2": "2026-11-26 21:00:03 UTC [77] startup: LOG:  incorrect resource manager data "
                   "checksum in record at 0/30000E8\n"}


def test_corruption_pass(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CORR, events=base_events(), samples=base_samples(), trace=FIRED,
                     logs=DETECTED, final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == PASS, v.summary
    assert v.evidence["corrupt_lsn"] == "0/3000100"


def test_replay_passing_corrupt_lsn_fails(tmp_path: Path) -> None:
    # pg2 replays past 0/3000100 at t=3.0, while the fault is on (2.0 .. 4.0)
    samples = base_samples(lambda t: lsn(0x200) if t >= 3.0 else lsn(0x0F0))
    v = one(make_run(tmp_path, CORR, events=base_events(), samples=samples, trace=FIRED, logs=DETECTED,
                     final=base_final([1])))
    assert v.result == FAIL and "past the corrupted LSN 0/3000100" in v.summary


def test_corruption_not_detected_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CORR, events=base_events(), samples=base_samples(), trace=FIRED,
                     logs={"pg2": "nothing to see\n"}, final=base_final([1])))
    assert v.result == FAIL and "never reports the corruption" in v.summary


def test_corruption_that_never_fired_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CORR, events=base_events(), samples=base_samples(), trace=[],
                     logs=DETECTED, final=base_final([1])))
    assert v.result == ERROR and "never happened" in v.summary


def test_corruption_without_trace_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, CORR, events=base_events(), samples=base_samples(), logs=DETECTED,
                     final=base_final([1])))
    assert v.result == ERROR and 'faults/netd.jsonl is missing' in v.summary


WALL0 = 1_790_000_000.0  # the run's wall clock at t = 0


def logline(t: float, text: str) -> str:
    from datetime import datetime, timezone
    stamp = datetime.fromtimestamp(WALL0 + t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{stamp} UTC [77] startup: {text}\n"


def walled(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(e, wall=WALL0 + e["t"]) for e in events]


FIRED_T = [dict(FIRED[0], t=2.5, mask=16)]


def test_detection_counts_only_after_the_fault_and_at_or_before_the_byte(tmp_path: Path) -> None:
    """The routine end-of-WAL line, a line logged before the fault fired and a line naming
    a position past the corrupted byte are no detection (they were counted until issue 19)."""
    logs = {"pg2": logline(1.0, "LOG:  incorrect resource manager data checksum in record at 0/30000E8")
            + logline(3.0, "LOG:  invalid record length at 0/3000100: wanted 24, got 0")
            + logline(3.5, "LOG:  incorrect prev-link 0/3000100 at 0/3000200")}
    v = one(make_run(tmp_path, CORR, events=walled(base_events()), samples=base_samples(), trace=FIRED_T,
                     logs=logs, final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == FAIL
    assert v.summary == ("pg2's log never reports the corruption at 0/3000100 (3 matching line(s) ignored: "
                         "logged before the fault fired)")
    assert [x["why"] for x in v.evidence["ignored_lines"]] == [
        "logged before the fault fired", "end of WAL (zeroes), not a detection",
        "names 0/3000200, past the corrupted byte"]
    (tmp_path / "b").mkdir()
    logs["pg2"] += logline(2.6, "LOG:  incorrect resource manager data checksum in record at 0/30000E8")
    v = one(make_run(tmp_path / "b", CORR, events=walled(base_events()), samples=base_samples(), trace=FIRED_T,
                     logs=logs, final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == PASS, v.summary
    assert v.evidence["detected_at"] == ["0/30000E8"]


def test_a_zeroed_length_at_the_corrupted_byte_is_a_detection(tmp_path: Path) -> None:
    """The flip zeroed the first byte of the record at 0/3000100 (its length was 0x10 |
    mask): "got 0" there, after pg2 had received past it, is the corruption caught, not the
    end of WAL; the same line while pg2 had received no further stays the end of WAL."""
    samples = [dict(smp, receive_lsn=lsn(0x180)) if smp["node"] == "pg2" and 2.0 <= smp["t"] < 4.0 else smp
               for smp in base_samples()]
    logs = {"pg2": logline(3.0, "LOG:  invalid record length at 0/3000100: wanted 24, got 0")}
    v = one(make_run(tmp_path, CORR, events=walled(base_events()), samples=samples, trace=FIRED_T,
                     logs=logs, final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == PASS, v.summary
    assert v.evidence["detected_at"] == ["0/3000100"]
    (tmp_path / "b").mkdir()
    v = one(make_run(tmp_path / "b", CORR, events=walled(base_events()), samples=base_samples(), trace=FIRED_T,
                     logs=logs, final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == FAIL and v.evidence["ignored_lines"][0]["why"] == "end of WAL (zeroes), not a detection"


def test_page_segment_offset_positions_are_understood() -> None:
    from walsim.judge.corruption import named_position, unchecked_bytes
    assert named_position("invalid magic number 0000 in log segment 000000010000000000000003, offset 16384") \
        == 0x3004000
    assert named_position("unexpected pageaddr 0/2004000 in log segment 000000010000000100000003, offset 8192") \
        == (1 << 32) + 0x3002000
    assert unchecked_bytes(0x3002014) == "byte 20 of the page header at 0/3002000: its alignment padding"
    assert unchecked_bytes(0x3000016) == "byte 22 of the long page header at 0/3000000: its alignment padding"
    assert unchecked_bytes(0x3000018) is None  # xlp_sysid of the long header: checked
    assert unchecked_bytes(0x3002010) is None  # xlp_rem_len: checked on a continuation
    assert unchecked_bytes(0x3002018) is None  # the first bytes of a record


def test_a_flip_in_page_header_padding_is_info_not_detectable(tmp_path: Path) -> None:
    trace = [{"rule": "c1", "event": "fire", "lsn": lsn(0x2014), "t": 2.5, "mask": 4}]
    samples = base_samples(lambda t: lsn(int(t * 0x1000)))  # replay goes straight past it
    v = one(make_run(tmp_path, CORR, events=walled(base_events()), samples=samples, trace=trace,
                     logs={"pg2": logline(1.0, "LOG:  started streaming WAL")},
                     final=base_final([1], caught={"pg3": 7.5, "pg2": 7.0})))
    assert v.result == INFO
    assert v.summary == ("not detectable: the damaged bytes are not checked by the server (corruption at 0/3002014, "
                         "byte 20 of the page header at 0/3002000: its alignment padding); pg2 replayed past it "
                         "without complaint and converged after the heal")


# ------------------------------------------------------- timeline, role

def test_timeline(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = 2, pg3 = 2 }\n',
                     events=base_events(), final=base_final([1])))
    assert v.result == PASS


def test_timeline_mismatch_fails(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "timeline"\nexpect = { pg3 = 3 }\n',
                     events=base_events(), final=base_final([1])))
    assert v.result == FAIL and "pg3 is on timeline 2, expected 3" in v.summary


def test_timeline_unknown_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "timeline"\nexpect = { pg1 = 1 }\n',
                     events=base_events(), samples=[], final=base_final([1])))
    assert v.result == ERROR and 'no timeline recorded for pg1' in v.summary


def test_role(tmp_path: Path) -> None:
    vs = judge(make_run(tmp_path, '[[verdicts]]\nid = "ok"\ncheck = "role"\nexpect = { pg1 = "down", pg2 = "primary" }\n'
                        '[[verdicts]]\nid = "bad"\ncheck = "role"\nexpect = { pg3 = "primary" }\n',
                        events=base_events(), final=base_final([1])))
    assert vs["ok"].result == PASS and vs["bad"].result == FAIL


# ---------------------------------------------------------- single writer

SW = '[[verdicts]]\ncheck = "single_writer"\n'


def test_single_writer_pass(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=base_samples(), ledger=ledger))
    assert v.result == PASS, v.summary
    assert v.summary.startswith("one writer at a time: pg1 t=2.00–2.00 s (1 commit(s)); then pg2 t=6.50–6.50 s")


def acks_every(node: str, start: float, end: float, step: float = 0.1, first_id: int = 0,
               latency: float = 0.01) -> list[dict[str, Any]]:
    """Acknowledged commits of one node, one every ``step`` seconds, each answered after ``latency``."""
    out, t, i = [], start, first_id
    while t <= end + 1e-9:
        out.append(write(i, round(t + latency, 3), "acked", node=node, sent_t=round(t, 3)))
        t, i = round(t + step, 3), i + 1
    return out


def test_two_nodes_acknowledging_in_overlapping_time_fails_with_the_window(tmp_path: Path) -> None:
    ledger = acks_every("pg1", 2.0, 7.0) + acks_every("pg2", 6.0, 8.0, first_id=1000)
    ledger.sort(key=lambda r: r["t"])
    # samples: pg1 up as a primary throughout (it never stopped accepting writes)
    samples = [sample(t / 4, "pg1", "primary", lsn(int(t))) for t in range(4, 33)]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=samples, ledger=ledger))
    assert v.result == FAIL
    assert v.summary.startswith("pg1 and pg2 both acknowledged writes t=6.00–7.01 s: "
                                "pg1 acknowledged 10 commit(s) while pg2 was writing (pg2's acknowledgements "
                                "t=6.01–8.01 s); pg2 acknowledged 10 commit(s) while pg1 was writing (pg1's "
                                "acknowledgements t=2.01–7.01 s)"), v.summary
    o = v.evidence["overlaps"][0]
    assert o["nodes"] == ["pg1", "pg2"] and o["start"] == 6.0 and o["end"] == 7.01


def test_old_primary_acking_again_fails(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 6.5, "acked", node="pg2"), write(3, 6.6, "acked", node="pg1"),
              write(4, 6.7, "acked", node="pg2")]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=base_samples(), ledger=ledger))
    assert v.result == FAIL
    # pg1's samples say "down" from t=5: its acknowledgement at 6.6 refutes them
    assert v.summary == ("pg1 and pg2 both acknowledged writes t=6.50–6.60 s: pg1 acknowledged 1 commit(s) "
                         "while pg2 was writing (pg2's acknowledgements t=6.50–6.70 s); pg2 acknowledged 1 "
                         "commit(s) while pg1 was writing (pg1's acknowledgements t=2.00–6.60 s)"), v.summary


def test_handover_within_the_commits_uncertainty_is_not_an_overlap(tmp_path: Path) -> None:
    # pg1's last commit was sent at 5.00 and answered at 5.30; pg2's first was sent at
    # 5.10 and answered at 5.20: their commits may have happened in either order
    ledger = [write(1, 4.9, "acked", sent_t=4.85), write(2, 5.3, "acked", sent_t=5.0),
              write(3, 5.2, "acked", node="pg2", sent_t=5.1), write(4, 5.5, "acked", node="pg2", sent_t=5.4)]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=[], ledger=ledger))
    assert v.result == PASS, v.summary


def test_a_frozen_primary_is_not_a_writer_while_frozen(tmp_path: Path) -> None:
    """pg1 frozen t=5-12 while pg2 writes from t=7: the commits pg1 had in flight come
    back at 12 (sent before the freeze) and prove nothing; pg1 taking new commits after
    the thaw while pg2 still writes is an overlap, stated from the thaw, not from 7."""
    events = base_events() + [
        {"t": 5.0, "type": "step_start", "id": "freeze", "kind": "pause", "node": "pg1"},
        {"t": 12.0, "type": "step_start", "id": "thaw", "kind": "resume", "node": "pg1"}]
    events.sort(key=lambda e: e["t"])
    stale = [write(500 + i, 12.05, "acked", node="pg1", sent_t=4.95) for i in range(4)]
    ledger = acks_every("pg1", 1.0, 4.9) + stale + acks_every("pg2", 7.0, 20.0, first_id=1000)
    ledger.sort(key=lambda r: r["t"])
    v = one(make_run(tmp_path, SW, events=events, samples=[], ledger=ledger))
    assert v.result == PASS, v.summary
    assert v.evidence["excluded"]["pg1"] == [[5.0, 12.0, "frozen"]]
    (tmp_path / "b").mkdir()
    ledger += acks_every("pg1", 12.5, 14.0, first_id=2000)
    ledger.sort(key=lambda r: r["t"])
    v = one(make_run(tmp_path / "b", SW, events=events, samples=[], ledger=ledger))
    assert v.result == FAIL
    assert v.summary == ("pg1 and pg2 both acknowledged writes t=12.50–14.01 s: pg1 acknowledged 16 "
                         "commit(s) while pg2 was writing (pg2's acknowledgements t=7.01–20.01 s); pg2 "
                         "acknowledged 14 commit(s) while pg1 was writing (pg1's acknowledgements "
                         "t=12.51–14.01 s) (excluded: pg1 accepted nothing t=5.00–12.00 s (frozen))"), v.summary


def test_two_primaries_in_samples_without_two_writers_passes_with_a_note(tmp_path: Path) -> None:
    """Out of recovery is not "can commit": the observer's samples are reported, the
    acknowledgements judge."""
    samples = base_samples()
    samples += [sample(6.5, "pg1", "primary", lsn(0x700)), sample(6.75, "pg1", "primary", lsn(0x710))]
    samples.sort(key=lambda s: s["t"])
    ledger = [write(1, 2.0, "acked"), write(2, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=samples, ledger=ledger))
    assert v.result == PASS
    assert "pg1 and pg2 were both out of recovery t=6.50–6.50 s per the observer" in v.summary


def test_single_writer_without_acknowledged_commits_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, SW, events=base_events(), samples=base_samples(), ledger=[write(1, 2.0, "failed")]))
    assert v.result == ERROR and "no acknowledged commit naming its node" in v.summary


NAD = '[[verdicts]]\ncheck = "no_acks_during"\nfault = "c1"\n'


def test_no_acks_during_a_fault_window(tmp_path: Path) -> None:
    # c1 is active from t=2.0 to t=4.0
    blocked = [write(10, 4.05, "acked", sent_t=2.5), write(11, 4.1, "indeterminate", sent_t=3.0),
               write(12, 2.1, "acked", sent_t=1.95)]  # in flight when the fault came: not judged
    v = one(make_run(tmp_path, NAD, events=base_events(), ledger=[write(1, 1.5, "acked")] + blocked))
    assert v.result == PASS, v.summary
    assert v.summary == ("no commit sent while c1 was active (t=2.00–4.00 s) was acknowledged before the heal: "
                         "2 attempted (1 acked after the heal, 1 indeterminate)")
    assert v.evidence["in_flight_at_start_acked"] == 1
    (tmp_path / "b").mkdir()
    acked = blocked + [write(13, 2.6, "acked", sent_t=2.55), write(14, 3.1, "acked", node="pg3", sent_t=3.0)]
    v = one(make_run(tmp_path / "b", NAD, events=base_events(), ledger=acked))
    assert v.result == FAIL
    assert v.summary == ("2 commit(s) sent while c1 was active (t=2.00–4.00 s) were acknowledged before the heal "
                         "(pg1 1, pg3 1); the first sent at t=2.55 s, acknowledged at t=2.60 s by pg1")
    (tmp_path / "c").mkdir()
    v = one(make_run(tmp_path / "c", NAD + 'node = "pg3"\n', events=base_events(), ledger=acked))
    assert v.result == FAIL and v.evidence["acked_during_by_node"] == {"pg3": 1}


def test_no_acks_during_ends_when_the_heal_was_issued(tmp_path: Path) -> None:
    """The heal of c1 is issued at t=3.95 and recorded (fault_off) at t=4.0, when
    netd has answered: a commit acknowledged at t=3.98 came after the heal."""
    events = [dict(e, t=4.0, issued_t=3.95) if e["type"] == "fault_off" else e for e in base_events()]
    v = one(make_run(tmp_path, NAD, events=events, ledger=[write(1, 1.5, "acked"), write(10, 3.98, "acked", sent_t=2.5)]))
    assert v.result == PASS, v.summary
    assert v.evidence["window"] == [2.0, 3.95]


def test_no_acks_during_without_attempts_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, NAD, events=base_events(), ledger=[write(1, 1.5, "acked"), write(2, 4.5, "acked")]))
    assert v.result == ERROR and "no commit was sent while c1 was active" in v.summary


def test_no_acks_during_with_every_client_held_from_before(tmp_path: Path) -> None:
    """Every client had a commit in flight when c1 began (so none sent another inside the
    window): those commits acknowledged only after the heal show the blocking."""
    ledger = [write(1, 1.5, "acked"), write(10, 4.2, "acked", sent_t=1.98), write(11, 4.3, "acked", sent_t=1.99)]
    v = one(make_run(tmp_path, NAD, events=base_events(), ledger=ledger))
    assert v.result == PASS, v.summary
    assert v.summary == ("no commit sent while c1 was active (t=2.00–4.00 s) was acknowledged before the heal: "
                         "0 attempted; 2 in flight when it began were held until the heal")
    assert v.evidence["in_flight_at_start_held"] == 2 and v.evidence["attempted"] == 0


# ----------------------------------------------------------------- lag

def lag_samples(lag_at: Any) -> list[dict[str, Any]]:
    """pg1 primary at 0x1000 * t; pg2 replaying lag_at(t) bytes behind."""
    out = []
    for i in range(40):
        t = 1.0 + i * 0.25
        x = 0x3000000 + int(0x1000 * t)
        out.append(sample(t, "pg1", "primary", x, replication=[{"application_name": "pg2", "replay_lag": lag_at(t) / 1e5}]))
        out.append(sample(t, "pg2", "standby", x - lag_at(t)))
    return out


def bump(t: float) -> int:
    """Lag of 200 kB between t=3 and t=5, back to 0 at t=6."""
    return 200_000 if 3.0 <= t < 5.0 else (50_000 if 5.0 <= t < 6.0 else 0)


def test_lag_within(tmp_path: Path) -> None:
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "ok"\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = "256kB"\n'
                        '[[verdicts]]\nid = "bad"\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = "100kB"\n'
                        '[[verdicts]]\nid = "secs"\ncheck = "lag_within"\nnode = "pg2"\nmax_seconds = "1s"\n'
                        '[[verdicts]]\nid = "nobound"\ncheck = "lag_within"\nnode = "pg2"\n',
                        events=base_events(), samples=lag_samples(bump)))
    assert vs["ok"].result == PASS
    assert vs["bad"].result == FAIL and "195.3 kB" in vs["bad"].summary
    assert vs["secs"].result == FAIL  # 2 s reported by pg_stat_replication
    assert vs["nobound"].result == ERROR and "neither max_bytes nor max_seconds is set" in vs["nobound"].summary


def test_lag_within_window(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\nfrom = "kill"\n',
                     events=base_events(), samples=lag_samples(lambda t: 0 if t >= 5.0 else 300_000)))
    assert v.result == PASS


def test_lag_exceeds(tmp_path: Path) -> None:
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "seen"\ncheck = "lag_exceeds"\nnode = "pg2"\nmin_bytes = "128kB"\n'
                        '[[verdicts]]\nid = "unseen"\ncheck = "lag_exceeds"\nnode = "pg2"\nmin_bytes = "1MB"\n',
                        events=base_events(), samples=lag_samples(bump)))
    assert vs["seen"].result == PASS and vs["unseen"].result == FAIL


def test_lag_recovers(tmp_path: Path) -> None:
    # heal-c1 ends at 4.1; lag is 0 from t=6.0: recovery after ~1.9 s
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "ok"\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\nwithin = "3s"\n'
                        '[[verdicts]]\nid = "late"\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\nwithin = "1s"\n'
                        '[[verdicts]]\nid = "bound"\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\n'
                        'within = "1s"\nmax_bytes = "64kB"\n',
                        events=base_events(), samples=lag_samples(bump)))
    assert vs["ok"].result == PASS and vs["ok"].evidence["recovered_after_s"] == pytest.approx(1.9)
    assert vs["late"].result == FAIL
    assert vs["bound"].result == PASS  # 50 kB at t=5.0 is under 64 kB


def test_lag_recovers_quotes_the_lag_at_the_heal(tmp_path: Path) -> None:
    """The lag is 200 kB until the heal (heal-c1 ends at 4.1) and 0 at the first sample
    after it: the summary quotes the lag at the heal, not the 0 B after it."""
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\n'
                     'within = "3s"\nmax_bytes = "64kB"\n',
                     events=base_events(), samples=lag_samples(lambda t: 200_000 if t <= 4.0 else 0)))
    assert v.result == PASS
    assert v.summary == "pg2 back under 64.0 kB 0.15 s after heal-c1 (lag at the heal 195.3 kB (t=4.00 s))", v.summary
    assert v.evidence["lag_at_heal"] == 200_000 and v.evidence["lag_at_heal_t"] == 4.0


def test_lag_never_recovers(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\nwithin = "3s"\n',
                     events=base_events(), samples=lag_samples(lambda t: 10_000)))
    assert v.result == FAIL and "never came back" in v.summary


def test_lag_pairs_the_samples_of_one_round(tmp_path: Path) -> None:
    """The standby's sample is compared with the primary's of the same observer
    round, placed at the server's time of the sample (server_t), not with
    whichever primary sample was written last: here pg2's answers are written
    after the primary's next round (a slow client), yet pg2 is caught up."""
    samples = []
    for r in range(4, 32):
        x = lsn(0x10000 * r)
        samples.append(sample(0.25 * r + 0.001, "pg1", "primary", x, round=r, server_t=0.25 * r))
        samples.append(sample(0.25 * r + 0.3, "pg2", "standby", x, round=r, server_t=0.25 * r + 0.001))
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\n',
                     events=base_events(), samples=samples))
    assert v.result == PASS, v.summary
    # a late answer (taken long after its round's tick) is placed by time, not paired with its round
    late = sample(7.9, "pg2", "standby", lsn(0x10000 * 30), round=4, server_t=7.6, late=True)
    (tmp_path / "run").rename(tmp_path / "plain")
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\n',
                     events=base_events(), samples=samples + [late]))
    assert v.result == PASS, v.summary  # by round 4 it would be 26 rounds ahead: no lag either way
    assert v.evidence["samples"] == len(samples) // 2 + 1
    (tmp_path / "run").rename(tmp_path / "late")
    behind = sample(7.9, "pg2", "standby", lsn(0x10000 * 4), round=30, server_t=7.6, late=True)
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\n',
                     events=base_events(), samples=samples + [behind]))
    # placed at t=7.6, after pg1's round 30 (t=7.5): 26 rounds of WAL behind, whatever its round says
    assert v.result == FAIL and "1.6 MB at t=7.60 s" in v.summary, v.summary
    # the same record without rounds (older walsim) pairs by time: one round's WAL behind
    for smp in samples:
        del smp["round"], smp["server_t"]
    (tmp_path / "run").rename(tmp_path / "with-rounds")
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\n',
                     events=base_events(), samples=samples))
    assert v.result == FAIL and "64.0 kB" in v.summary, v.summary


def test_lag_without_samples_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 1\n',
                     events=base_events(), samples=[]))
    assert v.result == ERROR and "no sample of a primary's WAL position" in v.summary


def test_lag_step_that_never_ran_is_error(tmp_path: Path) -> None:
    events = [e for e in base_events() if e.get("id") != "heal-c1"]
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\nwithin = "3s"\n',
                     events=events, samples=lag_samples(bump)))
    assert v.result == ERROR and "did it run" in v.summary


# ------------------------------------------------------------ failover time

FT = '[[verdicts]]\ncheck = "failover_time_under"\nmax = "{max}"\n'


def test_failover_time(tmp_path: Path) -> None:
    ledger = [write(1, 4.9, "acked"), write(2, 5.5, "failed"), write(3, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, FT.format(max="2s"), events=base_events(), ledger=ledger))
    assert v.result == PASS and v.evidence["failover_s"] == pytest.approx(1.5)


def test_failover_time_over_bound_fails(tmp_path: Path) -> None:
    ledger = [write(3, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, FT.format(max="1s"), events=base_events(), ledger=ledger))
    assert v.result == FAIL


def test_failover_without_new_ack_is_error(tmp_path: Path) -> None:
    ledger = [write(1, 4.9, "acked")]
    v = one(make_run(tmp_path, FT.format(max="10s"), events=base_events(), ledger=ledger))
    assert v.result == ERROR and 'no write was acknowledged by a node other than pg1' in v.summary


def test_failover_from_a_fault_without_a_node_and_the_old_primary_still_acking(tmp_path: Path) -> None:
    """The fault step names no node (a link fault): the old primary is whichever node
    acknowledged the last write before it; how long it kept acknowledging is reported."""
    ledger = (acks_every("pg1", 1.0, 3.5) + acks_every("pg2", 4.5, 6.0, first_id=1000))
    v = one(make_run(tmp_path, FT.format(max="5s") + 'from = "c1"\n', events=base_events(), ledger=ledger))
    assert v.result == PASS, v.summary
    e = v.evidence
    assert e["failed_node"] == "pg1" and e["new_primary"] == "pg2" and e["failure_step"] == "c1"
    assert e["failover_s"] == pytest.approx(4.51 - 2.0)
    assert e["old_acks_after_fault"] == 16 and e["old_acks_sent_after_fault"] == 15
    assert e["old_ack_window_s"] == pytest.approx(3.51 - 2.0)
    assert e["availability_gap"] == [3.51, 4.51]
    assert v.summary == ("2.51 s from the failure of pg1 (c1) to the first write acknowledged by pg2; pg1 still "
                         "acknowledged 16 write(s) for 1.51 s after it (15 of them sent after it); no write "
                         "acknowledged for 1.00 s (t=3.51–4.51 s)")


def test_failover_default_start_is_a_pause(tmp_path: Path) -> None:
    events = [e for e in base_events() if e.get("id") != "kill"] + [
        {"t": 5.0, "type": "step_start", "id": "freeze", "kind": "pause", "node": "pg1", "step": 2}]
    events.sort(key=lambda e: e["t"])
    v = one(make_run(tmp_path, FT.format(max="2s"), events=events,
                     ledger=[write(1, 4.9, "acked"), write(3, 6.5, "acked", node="pg2")]))
    assert v.result == PASS and v.evidence["failure_step"] == "freeze"
    assert "pg1 acknowledged no write after it" in v.summary


AG = '[[verdicts]]\ncheck = "availability_gap"\n'


def test_availability_gap(tmp_path: Path) -> None:
    ledger = acks_every("pg1", 1.0, 4.9) + acks_every("pg2", 6.5, 8.0, first_id=1000)
    vs = judge(make_run(tmp_path, AG + 'id = "info"\n' + AG + 'id = "ok"\nmax = "2s"\n'
                        + AG + 'id = "bad"\nmax = "1s"\n', events=base_events(), ledger=ledger))
    assert vs["info"].result == INFO and vs["ok"].result == PASS and vs["bad"].result == FAIL
    assert vs["info"].summary == ("longest time without an acknowledged write: 1.60 s (t=4.91–6.51 s, between "
                                  "pg1's acknowledgement and pg2's)")
    assert vs["info"].evidence["gap"] == [4.91, 6.51]


def test_availability_gap_ignores_time_the_workload_was_stopped(tmp_path: Path) -> None:
    events = base_events() + [{"t": 1.0, "type": "workload_start", "name": "ledger"},
                              {"t": 3.0, "type": "workload_stop", "name": "ledger"},
                              {"t": 6.0, "type": "workload_start", "name": "ledger"}]
    events.sort(key=lambda e: e["t"])
    ledger = acks_every("pg1", 1.0, 2.9, step=0.5) + acks_every("pg1", 6.2, 7.0, step=0.2, first_id=100)
    v = one(make_run(tmp_path, AG, events=events, ledger=ledger))
    # 3.0-6.0: no workload ran; the longest gap is 6.0 (restart) .. 6.21 or 0.5 between acks
    assert v.evidence["gap_s"] == pytest.approx(0.5)


def test_availability_gap_without_acks_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, AG, events=base_events(), ledger=[write(1, 2.0, "failed")]))
    assert v.result == ERROR and "writes were never available" in v.summary


def test_single_writer_is_judged_for_every_scenario_with_a_ledger(tmp_path: Path) -> None:
    ledger = acks_every("pg1", 2.0, 7.0) + acks_every("pg2", 6.0, 8.0, first_id=1000)
    d = make_run(tmp_path, NAL, events=base_events(), samples=[], ledger=ledger, final=base_final([1]))
    vs = judge_run(open_run(d))
    sw = [v for v in vs if v.check == "single_writer"]
    assert len(sw) == 1 and sw[0].result == FAIL and sw[0].evidence["implicit"] is True
    # declared: judged once, as declared
    (tmp_path / "b").mkdir()
    d = make_run(tmp_path / "b", SW, events=base_events(), samples=[], ledger=ledger)
    assert [v.evidence.get("implicit") for v in judge_run(open_run(d)) if v.check == "single_writer"] == [None]
    # nothing to judge: not added (no ERROR for a verdict nobody asked for)
    (tmp_path / "c").mkdir()
    d = make_run(tmp_path / "c", NAL, events=base_events(), ledger=[write(1, 2.0, "failed")], final=base_final([]))
    assert not [v for v in judge_run(open_run(d)) if v.check == "single_writer"]


def test_no_acked_loss_names_the_acknowledging_node(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 4.0, "acked"), write(3, 4.5, "acked"),
              write(4, 6.5, "acked", node="pg2"), write(5, 6.6, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL, events=base_events(), ledger=ledger, final=base_final([1, 4])))
    assert v.evidence["lost_by_node"] == {"pg1": 2, "pg2": 1}
    assert v.evidence["acked_by_node"] == {"pg1": 3, "pg2": 2}
    assert v.summary.startswith("3 acknowledged commit(s) lost (acknowledged by pg1 2, pg2 1): ")


# ------------------------------------------------------- streaming, logs

def test_streaming(tmp_path: Path) -> None:
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "a"\ncheck = "streaming"\nnode = "pg3"\nupstream = "pg2"\n'
                        '[[verdicts]]\nid = "b"\ncheck = "streaming"\nnode = "pg2"\nupstream = "pg3"\n'
                        '[[verdicts]]\nid = "c"\ncheck = "streaming"\nnode = "pg3"\nafter = "promote"\n',
                        events=base_events(), samples=base_samples()))
    assert vs["a"].result == PASS and vs["b"].result == FAIL and vs["c"].result == PASS


def test_log_contains(tmp_path: Path) -> None:
    logs = {"pg2": "LOG:  started streaming\nFATAL:  requested WAL segment 000000010000000000000003 has already been removed\n"}
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "yes"\ncheck = "log_contains"\nnode = "pg2"\nregex = "has already been removed"\n'
                        '[[verdicts]]\nid = "no"\ncheck = "log_contains"\nnode = "pg2"\nregex = "PANIC"\nexpect = false\n'
                        '[[verdicts]]\nid = "absent"\ncheck = "log_contains"\nnode = "pg2"\nregex = "PANIC"\n'
                        '[[verdicts]]\nid = "nolog"\ncheck = "log_contains"\nnode = "pg3"\nregex = "x"\n',
                        events=base_events(), logs=logs))
    assert vs["yes"].result == PASS and vs["no"].result == PASS
    assert vs["absent"].result == FAIL
    assert vs["nolog"].result == ERROR and "no log of node pg3" in vs["nolog"].summary


def test_a_verdict_judged_at_a_step_sees_the_record_up_to_its_end(tmp_path: Path) -> None:
    """lag_exceeds judged at the end of heal-c1 (t=4.1) sees the 200 kB lag of t=3..4;
    lag_within over the whole run would too, but at "c1" (t=2.1) the lag was still 0."""
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "then"\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\nat = "c1"\n'
                        '[[verdicts]]\nid = "later"\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\nat = "heal-c1"\n'
                        '[[verdicts]]\nid = "end"\ncheck = "lag_within"\nnode = "pg2"\nmax_bytes = 0\n',
                        events=base_events(), samples=lag_samples(bump)))
    assert vs["then"].result == PASS and vs["then"].judged_at == "step c1 (t=2.10 s)"
    assert vs["later"].result == FAIL and vs["later"].judged_at == "step heal-c1 (t=4.10 s)"
    assert vs["end"].judged_at == "end of run"


def test_holds_false_inverts_pass_and_fail_but_never_error(tmp_path: Path) -> None:
    vs = judge(make_run(tmp_path,
                        '[[verdicts]]\nid = "diverged"\ncheck = "converge"\nnodes = ["pg3"]\nat = "c1"\n'
                        'within = "1s"\nholds = false\n'
                        '[[verdicts]]\nid = "wrong"\ncheck = "converge"\nholds = false\n'
                        '[[verdicts]]\nid = "nosnap"\ncheck = "converge"\nat = "kill"\nholds = false\n',
                        events=base_events(), final=base_final([1])))
    assert vs["wrong"].result == FAIL and vs["wrong"].summary.startswith("holds, although holds = false expects")
    assert vs["nosnap"].result == ERROR and "no snapshot of the nodes at the end of step 'kill'" in vs["nosnap"].summary
    # the snapshot at c1: pg3 had not replayed up to the target while the fault was on
    snap = base_final([1], caught={})
    snap["checksums_skipped"] = "workloads were running (ledger)"
    d = tmp_path / "run"
    (d / "snapshots").mkdir()
    (d / "snapshots" / "c1.json").write_text(json.dumps(snap))
    v = {x.name: x for x in evaluate_all(open_run(d))}["diverged"]
    assert v.result == PASS and v.judged_at == "step c1 (t=2.10 s)"
    assert v.summary == "does not hold, as expected (holds = false): pg3 never replayed up to 0/3000800"
    assert v.evidence["check_result"] == FAIL and v.evidence["checksums_skipped"]


# ---------------------------------------------------------------- overall

def test_overall_exit_status() -> None:
    def v(r: str) -> Verdict:
        return Verdict("x", "x", r, "")
    assert overall([v(PASS), v(INFO)]) == 0
    assert overall([v(PASS), v(ERROR)]) == 2
    assert overall([v(ERROR), v(FAIL)]) == 1
    assert overall([]) == 0


def test_time_bounds_scale_with_the_runs_timeout_multiplier(tmp_path: Path) -> None:
    ledger = [write(3, 6.5, "acked", node="pg2")]  # 1.5 s after the kill
    d = make_run(tmp_path, FT.format(max="1s"), events=base_events(), ledger=ledger)
    assert one(d).result == FAIL
    (d / "run.json").write_text(json.dumps({"seed": 1, "timeout_mult": 2}))
    v = one(d)
    assert v.result == PASS and v.evidence["max_s"] == 2.0


def test_converge_without_user_tables_compares_lsns(tmp_path: Path) -> None:
    final = base_final([1])
    final["nodes"]["pg2"]["checksums"] = {}
    final["nodes"]["pg3"]["checksums"] = {}
    assert one(make_run(tmp_path, CONV, events=base_events(), final=final)).result == PASS


def test_converge_standby_without_checksums_fails(tmp_path: Path) -> None:
    final = base_final([1])
    del final["nodes"]["pg3"]["checksums"]
    v = one(make_run(tmp_path, CONV, events=base_events(), final=final))
    assert v.result == FAIL and "no table checksums" in v.summary


def test_explicit_promise_overrides_durability(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked", synchronous_commit="off"), write(2, 6.5, "acked", node="pg2")]
    v = one(make_run(tmp_path, NAL + "promised = true\n", events=base_events(), ledger=ledger,
                     final=base_final([2])))
    assert v.result == FAIL and "the scenario promised none" in v.summary
    (tmp_path / "b").mkdir()
    v = one(make_run(tmp_path / "b", NAL + "promised = false\n", durability="sync", events=base_events(),
                     ledger=[write(1, 2.0, "acked"), write(2, 6.5, "acked", node="pg2")], final=base_final([2])))
    assert v.result == INFO and "not promised" in v.summary
    (tmp_path / "c").mkdir()
    v = one(make_run(tmp_path / "c", NAL + "promised = true\n", events=base_events(),
                     ledger=[write(1, 2.0, "acked")], final=base_final([1])))
    assert v.result == PASS
