"""Determinism self-check: recorded PG15 streams replayed through netd's fault
core with no sockets (``walsim-netd --replay-input``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from walsim.sim.netd import NetdError, replay

STREAMS = Path(__file__).resolve().parent.parent / "data" / "streams"

# faults whose every choice comes from the seed: jittered delay, probabilistic
# drops of status updates and hot standby feedback, a bit of the 1st XLogData
SEEDED = [
    "id=j link=replay kind=delay dir=both ms=1 jitter_ms=50",
    "id=dr link=replay kind=drop msg=r prob=0.5",
    "id=dh link=replay kind=drop msg=h prob=0.5",
    "id=cx link=replay kind=corrupt nth=1",
]


def run(tmp: Path, name: str, seed: int, chunk: int | None = None, stream: str = "standby",
        faults: list[str] = SEEDED) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    trace = tmp / f"{name}.jsonl"
    out = tmp / name
    summary = replay(STREAMS / stream, seed=seed, faults=faults, trace=trace, output=out, chunk=chunk)
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    return summary, events, out


def coords(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The trace without time, per direction: what was decided and where.

    Within a direction the order is the stream's; how the two directions
    interleave depends on arrival, so they are compared separately."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e.get("dir", "-"), []).append(
            {k: v for k, v in e.items() if k not in ("t_ns", "seq")})
    return out


def test_same_seed_same_trace_and_bytes(tmp_path: Path) -> None:
    a, ta, oa = run(tmp_path, "a", seed=42)
    b, tb, ob = run(tmp_path, "b", seed=42)
    assert a["ok"] and b["ok"]
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    for d in ("up", "down"):
        assert Path(f"{oa}.{d}").read_bytes() == Path(f"{ob}.{d}").read_bytes()
    assert a == b
    # the faults did fire
    kinds = {e["rule"] for e in ta if e["event"] == "fault"}
    assert {"j", "cx"} <= kinds
    assert a["corrupted"] == 1


def test_different_seed_different_decisions(tmp_path: Path) -> None:
    a, ta, _ = run(tmp_path, "a", seed=1)
    b, tb, _ = run(tmp_path, "b", seed=2)
    assert coords(ta) != coords(tb)
    delays_a = [e["delay_us"] for e in ta if e.get("rule") == "j" and e["event"] == "fault"]
    delays_b = [e["delay_us"] for e in tb if e.get("rule") == "j" and e["event"] == "fault"]
    assert delays_a != delays_b


def test_piece_sizes_do_not_change_decisions(tmp_path: Path) -> None:
    """recv() boundaries are not coordinates: 1-byte, 7-byte and seeded pieces
    give the same decisions and the same output bytes."""
    base, tbase, obase = run(tmp_path, "base", seed=9)
    for chunk in (1, 7, 65536):
        s, t, o = run(tmp_path, f"c{chunk}", seed=9, chunk=chunk)
        assert coords(t) == coords(tbase), f"chunk {chunk}"
        assert s["down_hash"] == base["down_hash"] and s["up_hash"] == base["up_hash"]


def test_corrupt_at_lsn_flips_exactly_that_byte(tmp_path: Path) -> None:
    lsn = "0/800100"
    s, t, out = run(tmp_path, "lsn", seed=3, stream="receivewal",
                    faults=[f"id=c link=replay kind=corrupt at_lsn={lsn} bit=3"])
    src = (STREAMS / "receivewal.be").read_bytes()
    dst = Path(f"{out}.down").read_bytes()
    assert len(src) == len(dst)
    diff = [i for i in range(len(src)) if src[i] != dst[i]]
    fired = [e for e in t if e["event"] == "fault"]
    # the input is a committed capture and 0/800100 lies inside its XLogData:
    # a corruption that does not fire is a defect, never a reason to skip
    assert fired, f"the corruption at {lsn} never fired on {STREAMS / 'receivewal'}"
    assert len(diff) == 1 and src[diff[0]] ^ dst[diff[0]] == 0x08
    assert fired[0]["offset"] == diff[0] and fired[0]["at_lsn"] == lsn


def test_replay_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NetdError, match="no-such"):
        replay(tmp_path / "no-such", seed=1)
    with pytest.raises(NetdError, match="kind=nope"):
        replay(STREAMS / "standby", seed=1, faults=["id=x link=replay kind=nope"])
    with pytest.raises(NetdError, match="not the replay link"):
        replay(STREAMS / "standby", seed=1, faults=["id=x link=other kind=stall"])
    # a stream that is not the PostgreSQL protocol: reported, exit 1, not a crash
    (tmp_path / "junk.fe").write_bytes(b"GET / HTTP/1.1\r\n\r\n")
    (tmp_path / "junk.be").write_bytes(b"")
    s = replay(tmp_path / "junk", seed=1)
    assert s["ok"] is False
