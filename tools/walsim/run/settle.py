"""The end phase of a run: settle, then record every node's final state; and
snapshots of the same state at the steps verdicts are judged at.

Settling stops the workloads, heals every fault and gives the standbys the
verdicts care about (each verdict kind says which, through its ``settle``
hook) time to reach the final primary's WAL position.  ``final.json`` then
holds, per node: role, timeline, LSNs, table checksums and, on the primary,
the ledger's ids.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from walsim.core.timeouts import Deadline
from walsim.run.context import RunContext
from walsim.run.workloads import LEDGER_TABLE

SETTLE_DEFAULT = 30.0


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def settle_needs(ctx: RunContext, at: str | None = None) -> tuple[list[str], float]:
    """The nodes the verdicts judged at the end (``at`` None) or at step ``at`` expect
    to catch up, and how long to wait for them (at the end at least 30 s)."""
    sc = ctx.scenario
    nodes: list[str] = []
    timeout = SETTLE_DEFAULT if at is None else 0.0
    for spec in sc.verdicts:
        if spec.values.get("at") != at:
            continue
        hook = sc.verdict_kind(spec).settle
        if hook is None:
            continue
        wanted, within = hook(spec.values, sc)
        nodes += wanted
        timeout = max(timeout, within)
    return list(dict.fromkeys(nodes)), timeout


def settle(ctx: RunContext) -> None:
    ctx.events.event("settle_start")
    for wl in ctx.workloads.values():
        if wl.running:
            wl.stop()
            ctx.events.event("workload_stop", name=wl.name)
    ctx.heal("all")
    final = capture(ctx, *settle_needs(ctx))
    ctx.events.event("settle_end", caught_up=final["settle"]["caught_up"])
    write_json(ctx.rundir / "final.json", final)


def snapshot(ctx: RunContext, step_id: str) -> bool:
    """When verdicts are judged at this step (``at``): the state of every node now,
    faults still on, into ``snapshots/STEP.json`` (the shape of ``final.json``).
    Table checksums are left out while a workload runs (they would differ by the
    commits in flight, not by replication)."""
    if not any(spec.values.get("at") == step_id for spec in ctx.scenario.verdicts):
        return False
    ctx.events.event("snapshot_start", id=step_id)
    running = [w.name for w in ctx.workloads.values() if w.running]
    skip = f"workloads were running ({', '.join(running)})" if running else None
    state = capture(ctx, *settle_needs(ctx, at=step_id), skip_checksums=skip)
    state["at_step"] = step_id
    (ctx.rundir / "snapshots").mkdir(exist_ok=True)
    write_json(ctx.rundir / "snapshots" / f"{step_id}.json", state)
    ctx.events.event("snapshot_end", id=step_id, caught_up=state["settle"]["caught_up"])
    return True


def capture(ctx: RunContext, wanted: list[str], timeout: float, *,
            skip_checksums: str | None = None) -> dict[str, Any]:
    """The state of every node: the primary's WAL write position as the target, up to
    ``timeout`` (scaled) for the ``wanted`` nodes to replay it, then role, timeline,
    LSNs and table checksums of each node."""
    sc = ctx.scenario
    settled: dict[str, Any] = {"start_t": ctx.clock.now(), "caught_up": {}}
    final: dict[str, Any] = {"primary": None, "nodes": {}, "settle": settled}
    primary = find_primary(ctx)
    if primary is not None:
        final["primary"] = primary.name
        target = int(primary.lsn("write"))
        settled["target_lsn"] = target
        deadline = Deadline(timeout)
        waiting = [n for n in wanted if n != primary.name]
        while waiting and not deadline.expired():
            for n in list(waiting):
                node = ctx.node(n)
                try:
                    if not node.is_running():
                        waiting.remove(n)
                        continue
                    lsn = node.lsn("replay")
                except Exception:  # noqa: BLE001 - not reachable yet
                    continue
                if lsn is not None and int(lsn) >= target:
                    settled["caught_up"][n] = ctx.clock.now()
                    waiting.remove(n)
            time.sleep(0.1)
        settled["not_caught_up"] = waiting
    tables, skipped = user_tables(primary) if primary is not None else ([], {})
    final["skipped_tables"] = skipped
    if skip_checksums:
        final["checksums_skipped"] = skip_checksums
        tables = []
    for n in sc.nodes:
        final["nodes"][n] = final_node(ctx, n, tables, is_primary=primary is not None and n == primary.name)
    return final


def find_primary(ctx: RunContext) -> Any:
    """The node that is running and out of recovery, the context's primary first."""
    candidates = [ctx.primary] + [n for n in ctx.scenario.nodes if n != ctx.primary]
    for n in candidates:
        node = ctx.node(n)
        try:
            if node.is_running() and not node.in_recovery():
                return node
        except Exception:  # noqa: BLE001
            continue
    return None


#: every user table with its persistence (p permanent, u unlogged, t temporary)
TABLES_SQL = ("SELECT n.nspname || '.' || c.relname, c.relpersistence "
              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
              "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1")
NOT_REPLICATED = {"u": "unlogged: not replicated by design", "t": "temporary: not replicated by design"}


def user_tables(node: Any) -> tuple[list[str], dict[str, str]]:
    """The tables whose contents every node must share, and those skipped with why
    (unlogged and temporary relations are never replicated; a standby cannot even
    read them: "cannot access temporary or unlogged relations during recovery")."""
    tables, skipped = [], {}
    for name, persistence in node.query(TABLES_SQL):
        if persistence in NOT_REPLICATED:
            skipped[name] = NOT_REPLICATED[persistence]
        else:
            tables.append(name)
    return tables, skipped


def checksums(node: Any, tables: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The checksum of each table, and the error of each one that could not be read
    (one failing relation never discards the others)."""
    sums, errors = {}, {}
    for t in tables:
        try:
            sums[t] = node.table_checksum(t)
        except Exception as exc:  # noqa: BLE001 - recorded per relation
            errors[t] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return sums, errors


def final_node(ctx: RunContext, name: str, tables: list[str], is_primary: bool) -> dict[str, Any]:
    node = ctx.node(name)
    info: dict[str, Any] = {"up": False}
    try:
        if not node.is_running():
            info["status"] = node.status()
            return info
        smp = ctx.observer.sample_now(name) if ctx.observer else {}
        info.update({k: smp.get(k) for k in ("up", "role", "timeline", "insert_lsn", "flush_lsn",
                                             "receive_lsn", "replay_lsn")})
        if not info.get("up"):
            return info
        info["checksums"], errors = checksums(node, tables)
        if errors:
            info["checksum_errors"] = errors
        if is_primary and f"public.{LEDGER_TABLE}" in tables:
            info["ledger_ids"] = [r[0] for r in node.query(f"SELECT id FROM {LEDGER_TABLE} ORDER BY id")]
    except Exception as exc:  # noqa: BLE001 - recorded; verdicts needing it will ERROR
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info
