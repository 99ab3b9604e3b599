"""Each verdict judged on synthetic recorded data: what must PASS, what must
FAIL, and missing data giving ERROR (never PASS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from records import base_events, base_final, base_samples, lsn, make_run, sample, write

from walsim.api import open_run
from walsim.judge.verdict import ERROR, FAIL, INFO, PASS, Verdict, evaluate_all, overall


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


def test_two_primaries_at_once_fails(tmp_path: Path) -> None:
    samples = base_samples()
    # pg1 still answers as a primary after pg2 was promoted
    samples += [sample(6.5, "pg1", "primary", lsn(0x700)), sample(6.75, "pg1", "primary", lsn(0x710))]
    samples.sort(key=lambda s: s["t"])
    v = one(make_run(tmp_path, SW, events=base_events(), samples=samples, ledger=[]))
    assert v.result == FAIL and "both accepted writes" in v.summary


def test_old_primary_acking_again_fails(tmp_path: Path) -> None:
    ledger = [write(1, 2.0, "acked"), write(2, 6.5, "acked", node="pg2"), write(3, 6.6, "acked", node="pg1")]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=base_samples(), ledger=ledger))
    assert v.result == FAIL and "after pg2 had taken over" in v.summary


def test_single_writer_without_samples_is_error(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, SW, events=base_events(), samples=[], ledger=[]))
    assert v.result == ERROR and 'too few observer samples to judge' in v.summary


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


def test_lag_never_recovers(tmp_path: Path) -> None:
    v = one(make_run(tmp_path, '[[verdicts]]\ncheck = "lag_recovers"\nnode = "pg2"\nafter = "heal-c1"\nwithin = "3s"\n',
                     events=base_events(), samples=lag_samples(lambda t: 10_000)))
    assert v.result == FAIL and "never came back" in v.summary


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


def test_handover_between_samples_is_not_an_overlap(tmp_path: Path) -> None:
    # pg1 last seen primary at 5.29, killed, its next sample (5.3968) down;
    # pg2 first seen primary at 5.3966: nothing shows both accepting writes at once
    samples = [sample(5.0, "pg1", "primary", lsn(1)), sample(5.2939, "pg1", "primary", lsn(2)),
               sample(5.0, "pg2", "standby", lsn(1)), sample(5.2969, "pg2", "standby", lsn(2)),
               sample(5.3966, "pg2", "primary", lsn(3)),
               {"t": 5.3968, "node": "pg1", "up": False, "error": "terminating connection"},
               sample(5.4943, "pg2", "primary", lsn(4))]
    v = one(make_run(tmp_path, SW, events=base_events(), samples=samples, ledger=[]))
    assert v.result == PASS, v.summary


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
