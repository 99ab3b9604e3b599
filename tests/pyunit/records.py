"""Synthetic run directories for the judge's tests: a scenario, events,
samples, a ledger, a final state, fault traces and node logs, each exactly as
given (None: the file is absent), so that verdicts and reports are tested on
recorded data without PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIO = '''
name = "synthetic"
description = "synthetic recorded data for verdict tests"
durability = "{durability}"
{settings}
[nodes.pg1]
role = "primary"
[nodes.pg2]
role = "standby"
upstream = "pg1"
via = "l2"
[nodes.pg3]
role = "standby"
upstream = "pg1"
[links.l2]
to = "pg1"
[workloads.ledger]
kind = "ledger"
node = "pg1"
[[steps]]
id = "c1"
fault = "corrupt"
link = "l2"
at_lsn = "0/3000100"
[[steps]]
id = "heal-c1"
heal = "c1"
[[steps]]
id = "kill"
do = "kill"
node = "pg1"
[[steps]]
id = "promote"
do = "promote"
node = "pg2"
'''
SYNC_SETTINGS = '[settings]\nsynchronous_standby_names = "FIRST 1 (pg2)"\n'


def lsn(x: int) -> int:
    return 0x3000000 + x


def make_run(tmp: Path, verdicts: str, *, durability: str = "async", events: list | None = None,
             samples: list | None = None, ledger: list | None = None, final: dict | None = None,
             trace: list | None = None, logs: dict[str, str] | None = None) -> Path:
    """A run directory holding exactly the given recorded data (None: file absent)."""
    d = tmp / "run"
    d.mkdir()
    text = SCENARIO.format(durability=durability, settings=SYNC_SETTINGS if durability != "async" else "")
    (d / "scenario.toml").write_text(text + verdicts)
    (d / "run.json").write_text(json.dumps({"seed": 1, "durability": durability, "reproduce": "walsim-cli run x --seed 1"}))
    for name, rows in (("events.jsonl", events), ("samples.jsonl", samples), ("ledger.jsonl", ledger)):
        if rows is not None:
            (d / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    if final is not None:
        (d / "final.json").write_text(json.dumps(final))
    (d / "faults").mkdir()
    if trace is not None:
        (d / "faults" / "netd.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trace))
    for node, text_ in (logs or {}).items():
        (d / "nodes" / node).mkdir(parents=True)
        (d / "nodes" / node / "postgresql.log").write_text(text_)
    return d


# ------------------------------------------------------------ standard data

def base_events() -> list[dict[str, Any]]:
    return [
        {"t": 0.0, "type": "run_start"},
        {"t": 1.0, "type": "cluster_ready"},
        {"t": 2.0, "type": "step_start", "id": "c1", "kind": "corrupt", "step": 0},
        {"t": 2.0, "type": "fault_on", "id": "c1", "kind": "corrupt", "target": "l2"},
        {"t": 2.1, "type": "step_end", "id": "c1", "kind": "corrupt", "step": 0, "ok": True},
        {"t": 4.0, "type": "step_start", "id": "heal-c1", "kind": "heal", "step": 1},
        {"t": 4.0, "type": "fault_off", "id": "c1", "kind": "corrupt"},
        {"t": 4.1, "type": "step_end", "id": "heal-c1", "kind": "heal", "step": 1, "ok": True},
        {"t": 5.0, "type": "step_start", "id": "kill", "kind": "kill", "node": "pg1", "step": 2},
        {"t": 5.1, "type": "step_end", "id": "kill", "kind": "kill", "step": 2, "ok": True},
        {"t": 5.2, "type": "step_start", "id": "promote", "kind": "promote", "node": "pg2", "step": 3},
        {"t": 5.9, "type": "promoted", "node": "pg2", "timeline": 2, "lsn_before": lsn(0x400)},
        {"t": 6.0, "type": "step_end", "id": "promote", "kind": "promote", "step": 3, "ok": True},
        {"t": 7.0, "type": "settle_start"},
        {"t": 8.0, "type": "settle_end"},
    ]


def sample(t: float, node: str, role: str, x: int, **extra: Any) -> dict[str, Any]:
    s = {"t": t, "node": node, "up": True, "role": role, "timeline": 1 if t < 5.9 or node != "pg2" else 2}
    if role == "primary":
        s["insert_lsn"] = x
    else:
        s["replay_lsn"] = x
        s["receive_lsn"] = x
    s.update(extra)
    return s


def base_samples(replay_pg2: Any = None) -> list[dict[str, Any]]:
    out = []
    t = 1.0
    while t < 8.0:
        if t < 5.0:
            out.append(sample(t, "pg1", "primary", lsn(int(t * 0x100)),
                              replication=[{"application_name": "pg2", "state": "streaming", "replay_lag": 0.01},
                                           {"application_name": "pg3", "state": "streaming", "replay_lag": 0.01}]))
        else:
            out.append({"t": t, "node": "pg1", "up": False, "error": "connection refused"})
        if t < 6.0:
            r2 = replay_pg2(t) if replay_pg2 else lsn(min(int(t * 0x100), 0x0FF) if 2.0 <= t < 4.0 else int(t * 0x100))
            out.append(sample(t, "pg2", "standby", r2))
        else:
            out.append(sample(t, "pg2", "primary", lsn(int(t * 0x100)),
                              replication=[{"application_name": "pg3", "state": "streaming"}]))
        out.append(sample(t, "pg3", "standby", lsn(int(t * 0x100) - 0x10)))
        t = round(t + 0.25, 2)
    return out


def write(i: int, t: float, outcome: str, node: str = "pg1", **extra: Any) -> dict[str, Any]:
    r = {"t": t, "op": "write", "workload": "ledger", "client": 0, "seq": i, "id": i, "node": node,
         "outcome": outcome, "synchronous_commit": "on", "lsn": lsn(0x300 + i)}
    r.update(extra)
    return r


def base_final(ids: list[int], sums2: str = "abc:10", caught: dict | None = None) -> dict[str, Any]:
    return {
        "primary": "pg2",
        "settle": {"start_t": 7.0, "target_lsn": lsn(0x800),
                   "caught_up": caught if caught is not None else {"pg3": 7.5}},
        "nodes": {
            "pg1": {"up": False},
            "pg2": {"up": True, "role": "primary", "timeline": 2, "ledger_ids": ids,
                    "checksums": {"public.walsim_ledger": "abc:10"}},
            "pg3": {"up": True, "role": "standby", "timeline": 2, "replay_lsn": lsn(0x800),
                    "checksums": {"public.walsim_ledger": sums2}},
        },
    }
