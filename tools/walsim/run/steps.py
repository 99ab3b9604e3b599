"""Built-in step kinds: actions on nodes, waits, workload control and heal.

Each kind declares its fields (validation) and a run function
``run(ctx, step) -> detail`` that :mod:`walsim.run.engine` calls with the
:class:`~walsim.run.context.RunContext`.  A run function raises
:class:`~walsim.core.errors.StepFailed` (through ``ctx.fail``) when the system
under test did not do what the step expects (a wait timed out, a query gave
another answer): the run then stops and the scenario FAILs; any other
exception is a harness ERROR.  Signals to processes are the process fault
layer's (:mod:`walsim.faults.process`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

import psycopg

from walsim.core.lsn import format_lsn
from walsim.core.timeouts import multiplier
from walsim.run.workloads import interrupt
from walsim.scenario import schema as s
from walsim.scenario.registry import DEFAULT_WAIT_TIMEOUT, Check, Runner, StepKind, step_kind

if TYPE_CHECKING:  # pragma: no cover
    from walsim.run.context import RunContext
    from walsim.scenario.model import Step

#: every built-in step kind, in the order of this file
KINDS: list[StepKind] = []


#: steps that run pg_ctl, promote, re-point or rewind: refused when a manager drives the cluster
DRIVES_POSTGRES = ("promote", "promote_most_advanced", "follow_primary", "repoint", "rewind", "stop",
                   "start", "restart")


def register(category: str, name: str, fields: Mapping[str, s.Field], doc: str,
             check: Check | None = None, run: Runner | None = None) -> None:
    KINDS.append(step_kind(category, name, fields, doc, check=check, run=run,
                           drives_postgres=category == "do" and name in DRIVES_POSTGRES))


PROMOTE_METHODS = ("pg_ctl", "function", "trigger_file")
CATCHUP_MODES = ("sent", "write", "flush", "replay")


def _timeout() -> s.Field:
    return s.duration(default=DEFAULT_WAIT_TIMEOUT,
                      help="deadline of the wait (scaled by WALSIM_TIMEOUT_MULT)")


def _node() -> s.Field:
    return s.node_ref(required=True)


# ------------------------------------------------------------------ actions

def _promote(ctx: "RunContext", step: "Step", name: str) -> dict[str, Any]:
    v = step.values
    node = ctx.node(name)
    lsn_before = ctx.try_lsn(node, "replay")
    tl = node.promote(method=v["method"])
    ctx.set_primary(name)
    ctx.events.event("promoted", node=name, timeline=tl, lsn_before=lsn_before, id=step.id)
    if v["retarget"]:
        ctx.retarget_writers(name)
    if v.get("expect_timeline") is not None and tl != v["expect_timeline"]:
        ctx.fail(step, f"{name} promoted to timeline {tl}, expected {v['expect_timeline']}")
    return {"node": name, "timeline": tl, "lsn_before": lsn_before}


def _run_promote(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return _promote(ctx, step, step.values["node"])


register("do", "promote", {
    "node": _node(),
    "method": s.choice(PROMOTE_METHODS, default="pg_ctl",
                       help="pg_ctl promote, pg_promote(), or promote_trigger_file (up to 15; on 16+ pg_ctl promote, with a note)"),
    "retarget": s.boolean(default=True, help="point ledger and pgbench workloads at the new primary"),
    "expect_timeline": s.integer(lo=1, help="fail the step unless promotion gives this timeline"),
}, "promote a standby; records the new timeline and the LSN it forked at", run=_run_promote)


def _received(ctx: "RunContext", name: str) -> int:
    """How far a standby got: the larger of its receive and replay LSNs (0 when unreachable)."""
    node = ctx.node(name)
    return max(ctx.try_lsn(node, "receive") or 0, ctx.try_lsn(node, "replay") or 0)


def _run_promote_most_advanced(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    candidates = step.values["candidates"]
    positions = {n: _received(ctx, n) for n in candidates}
    best = max(candidates, key=lambda n: (positions[n], -candidates.index(n)))
    if positions[best] == 0:
        ctx.fail(step, f"no candidate answered with a WAL position ({', '.join(candidates)})")
    detail = _promote(ctx, step, best)
    detail["positions"] = {n: format_lsn(x) for n, x in positions.items()}
    return detail


register("do", "promote_most_advanced", {
    "candidates": s.list_of(s.node_ref(), required=True, min_len=2,
                            help="the standbys to choose from (ties: the first listed)"),
    "method": s.choice(PROMOTE_METHODS, default="pg_ctl"),
    "retarget": s.boolean(default=True, help="point ledger and pgbench workloads at the new primary"),
    "expect_timeline": s.integer(lo=1, help="fail the step unless promotion gives this timeline"),
}, "promote whichever candidate standby has received the most WAL (what a quorum failover "
   "must do); the choice is in the step's details", run=_run_promote_most_advanced)


def _run_follow_primary(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    moved = []
    for name in step.values["nodes"]:
        if name != ctx.primary:
            ctx.repoint(name, ctx.primary, None)
            moved.append(name)
    return {"primary": ctx.primary, "repointed": moved}


register("do", "follow_primary", {
    "nodes": s.list_of(s.node_ref(), required=True, min_len=1,
                       help="standbys to re-point at the current primary (the primary itself is skipped)"),
}, "re-point standbys at whichever node is primary now (after promote_most_advanced)",
    run=_run_follow_primary)


def _run_repoint(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    ctx.repoint(v["node"], v["upstream"], v.get("via"))
    return {"upstream": v["upstream"], "via": v.get("via")}


def _check_repoint(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    if v.get("node") and v.get("node") == v.get("upstream"):
        return [("upstream", "a node cannot stream from itself")]
    return []


register("do", "repoint", {
    "node": _node(),
    "upstream": s.node_ref(required=True, help="the new upstream"),
    "via": s.link_ref(help="stream through this link (it must forward to the new upstream)"),
}, "change a standby's primary_conninfo to a new upstream", check=_check_repoint, run=_run_repoint)


def _run_rewind(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    ctx.rewind(v["node"], v["source"], v.get("via"), start=v["start"])
    return {"source": v["source"]}


register("do", "rewind", {
    "node": _node(),
    "source": s.node_ref(required=True, help="the new primary to rewind against"),
    "via": s.link_ref(help="after the rewind, stream through this link"),
    "start": s.boolean(default=True, help="start the node as a standby afterwards"),
}, "pg_rewind a stopped old primary against the new one and make it a standby",
    check=lambda v: [("source", "a node cannot be rewound against itself")]
    if v.get("node") and v.get("node") == v.get("source") else [], run=_run_rewind)


def _run_stop(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    ctx.node(step.values["node"]).stop(mode=step.values["mode"])
    return {"mode": step.values["mode"]}


register("do", "stop", {"node": _node(), "mode": s.choice(("smart", "fast", "immediate"), default="fast")},
         "pg_ctl stop", run=_run_stop)


def _run_start(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    ctx.node(step.values["node"]).start()
    return {}


register("do", "start", {"node": _node()}, "start a stopped node", run=_run_start)


def _run_restart(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    ctx.node(step.values["node"]).restart(mode=step.values["mode"])
    return {"mode": step.values["mode"]}


register("do", "restart", {"node": _node(), "mode": s.choice(("smart", "fast", "immediate"), default="fast")},
         "stop then start a node (pg_ctl restart)", run=_run_restart)


def _run_checkpoint(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    ctx.node(step.values["node"]).execute("CHECKPOINT")
    return {}


def _run_switch_wal(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    rows = ctx.node(step.values["node"]).query("SELECT pg_switch_wal()::text")
    return {"lsn": rows[0][0] if rows else None}


register("do", "checkpoint", {"node": _node()}, "run CHECKPOINT", run=_run_checkpoint)
register("do", "switch_wal", {"node": _node()}, "run pg_switch_wal() (a new WAL segment)",
         run=_run_switch_wal)


class Pending:
    """A statement an ``sql`` step started and left running (``blocks``): its thread,
    its connection, and, once it ends, its rows or its error and when."""

    def __init__(self, ctx: "RunContext", conn: Any, query: str, params: list[Any] | None) -> None:
        self.conn = conn
        self.started = ctx.clock.now()
        self.ended: float | None = None
        self.rows: list[list[Any]] | None = None
        self.error: BaseException | None = None
        self._clock = ctx.clock
        self._thread = threading.Thread(target=self._run, args=(query, params), daemon=True,
                                        name="walsim-sql-pending")
        self._thread.start()

    def _run(self, query: str, params: list[Any] | None) -> None:
        try:
            cur = self.conn.execute(query, params)
            rows = cur.fetchall() if cur.description is not None else []
            self.rows = [[_plain(c) for c in r] for r in rows]
        except BaseException as exc:  # noqa: BLE001 - reported by the wait that looks at it
            self.error = exc
        finally:
            self.ended = self._clock.now()
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return self.done()

    def interrupt(self) -> None:
        interrupt(self.conn)


def _sql_outcome(ctx: "RunContext", step: "Step", rows: list[list[Any]] | None,
                 exc: BaseException | None, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a statement's rows or error against ``expect``/``expect_error`` of ``spec``."""
    if exc is not None:
        state = getattr(exc, "sqlstate", None)
        if spec.get("expect_error"):
            if state == spec["expect_error"]:
                return {"sqlstate": state}
            got = f"SQLSTATE {state}" if state else "an error without a SQLSTATE"
            ctx.fail(step, f"expected SQLSTATE {spec['expect_error']}, got {got}: {str(exc).strip()}")
        if state is None and not isinstance(exc, psycopg.Error):
            raise exc
        ctx.fail(step, f"query failed with SQLSTATE {state}: {str(exc).strip()}" if state else
                 f"query failed: {str(exc).strip()}")
    if spec.get("expect_error"):
        ctx.fail(step, f"expected SQLSTATE {spec['expect_error']}, but the query succeeded")
    got = rows or []
    if spec.get("expect") is not None and got != spec["expect"]:
        ctx.fail(step, f"query returned {got!r}, expected {spec['expect']!r}")
    return {"rows": got[:20]}


def _run_sql(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    node = ctx.node(v["node"])
    params = list(v["params"]) if v.get("params") else None
    conn = node.connect()
    ctx.on_abort(lambda: interrupt(conn))  # a statement blocked past the step's deadline
    if v.get("blocks") is not None:
        pending = Pending(ctx, conn, v["query"], params)
        ctx.pending[step.id] = pending
        if pending.wait(float(v["blocks"])):
            took = (pending.ended or 0.0) - pending.started
            outcome = f"failed ({str(pending.error).strip()})" if pending.error else "succeeded"
            ctx.fail(step, f"the statement {outcome} after {took:.2f} s; it was expected to block for "
                     f"{float(v['blocks']):g} s")
        return {"blocked_for": float(v["blocks"]), "pending": True}
    rows: list[list[Any]] | None = None
    exc: BaseException | None = None
    try:
        cur = conn.execute(v["query"], params)
        rows = [[_plain(c) for c in r] for r in (cur.fetchall() if cur.description is not None else [])]
    except Exception as e:  # psycopg errors carry sqlstate
        exc = e
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    return _sql_outcome(ctx, step, rows, exc, v)


def _plain(x: Any) -> Any:
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def _rows(v: Any, _n: s.Names) -> list[list[Any]]:
    if not isinstance(v, list) or not all(isinstance(r, list) for r in v):
        raise s.Invalid("expected an array of rows, each an array of values, e.g. [[1, \"a\"]]")
    return v


register("do", "sql", {
    "node": _node(),
    "query": s.string(required=True, help="one SQL statement; %s placeholders take the values of params"),
    "params": s.list_of(s.any_value(), help="query parameters (bound, never interpolated)"),
    "expect": s.Field(_rows, False, None, "rows the query must return", "array of rows"),
    "expect_error": s.string(pattern=r"[0-9A-Z]{5}", help="the SQLSTATE the query must fail with"),
    "blocks": s.duration(help="the statement must still be running after this long (a commit waiting "
                         "for a synchronous standby that is cut off); it is left running, and "
                         "wait = \"released\" checks how it ends (expect, expect_error)"),
}, "run a SQL statement, optionally checking its rows or its error, or that it blocks",
    check=lambda v: [("expect_error", "expect and expect_error exclude each other")]
    if v.get("expect") is not None and v.get("expect_error") else [], run=_run_sql)


# -------------------------------------------------------------------- waits

def _run_catchup(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    lsn = ctx.wait_catchup(step, v["node"], v.get("upstream"), v["mode"], v["timeout"])
    return {"lsn": lsn}


register("wait", "catchup", {
    "node": s.node_ref(required=True, help="the standby"),
    "upstream": s.node_ref(help="default: its current upstream"),
    "mode": s.choice(CATCHUP_MODES, default="replay"),
    "timeout": _timeout(),
}, "until the standby has received/flushed/replayed the upstream's current WAL position",
    run=_run_catchup)


def _check_lsn_passed(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    if (v.get("lsn") is None) == (v.get("of") is None):
        return [("lsn", "give exactly one of lsn (a literal LSN) or of (a node whose current insert "
                 "LSN is the target)")]
    return []


def _run_lsn_passed(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    target = v["lsn"] if v.get("lsn") is not None else ctx.node(v["of"]).lsn("insert")
    got = ctx.wait_lsn(step, v["node"], v["kind"], int(target), v["timeout"])
    return {"target": format_lsn(int(target)), "reached": format_lsn(got)}


register("wait", "lsn_passed", {
    "node": _node(),
    "kind": s.choice(("insert", "write", "flush", "receive", "replay"), default="replay"),
    "lsn": s.lsn(help="a literal target LSN"),
    "of": s.node_ref(help="target: that node's insert LSN when the wait starts"),
    "timeout": _timeout(),
}, "until a node's LSN of the given kind reaches a target", check=_check_lsn_passed,
    run=_run_lsn_passed)


def _run_commits(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    n = ctx.wait_commits(step, v["workload"], v["count"], v["timeout"])
    return {"acked": n}


register("wait", "commits", {
    "workload": s.workload_ref(required=True),
    "count": s.integer(required=True, lo=1, help="more acknowledged commits than when the wait began"),
    "timeout": _timeout(),
}, "until a ledger workload has had N more commits acknowledged", run=_run_commits)


def _run_released(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    pending = ctx.pending.get(v["step"])
    if pending is None:
        ctx.fail(step, f"step {v['step']!r} left no statement running (it did not run, or has no blocks)")
    if not pending.wait(v["timeout"] * multiplier()):
        ctx.fail(step, f"the statement of {v['step']} is still blocked after {v['timeout'] * multiplier():g} s "
                 f"(WALSIM_TIMEOUT_MULT={multiplier():g})")
    detail: dict[str, Any] = {"ended_t": pending.ended, "blocked_s": (pending.ended or 0.0) - pending.started}
    if v.get("after"):
        t_after = ctx.step_started.get(v["after"])
        if t_after is None:
            ctx.fail(step, f"step {v['after']!r} never ran")
        if pending.ended is not None and pending.ended < t_after:
            ctx.fail(step, f"the statement of {v['step']} ended at t={pending.ended:.2f} s, before "
                     f"{v['after']} began (t={t_after:.2f} s): it was not released by it")
    spec = next((st.values for st in ctx.scenario.steps if st.id == v["step"]), {})
    detail.update(_sql_outcome(ctx, step, pending.rows, pending.error, spec))
    return detail


register("wait", "released", {
    "step": s.step_ref(required=True, help="an sql step with blocks"),
    "after": s.step_ref(help="the statement must end after this step began (the heal that releases it)"),
    "timeout": _timeout(),
}, "until the statement an sql step left blocked ends; checks it against that step's expect or "
   "expect_error", run=_run_released)


def _run_log_matches(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    line = ctx.wait_log(step, v["node"], v["regex"], v["timeout"], v["since_start"])
    return {"line": line}


register("wait", "log_matches", {
    "node": _node(),
    "regex": s.regex(required=True),
    "since_start": s.boolean(default=False, help="search the whole log, not only what was written "
                             "since the step began"),
    "timeout": _timeout(),
}, "until a line of the node's log matches", run=_run_log_matches)


def _run_role(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    v = step.values
    ctx.wait_role(step, v["node"], v["role"], v["timeout"])
    return {}


register("wait", "role", {
    "node": _node(),
    "role": s.choice(("primary", "standby", "down")),
    "timeout": _timeout(),
}, "until the node is a primary, a standby, or not accepting connections", run=_run_role)


def _run_sleep(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    time.sleep(step.values["seconds"])
    return {}


register("wait", "sleep", {
    "seconds": s.duration(required=True, help="a last resort: prefer waiting on a condition"),
}, "sleep (wall time; prefer a condition)", run=_run_sleep)


# ---------------------------------------------------------------- workloads

def _run_wl_start(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    wl = ctx.workload(step.values["name"])
    if not wl.running:
        wl.start()
        ctx.events.event("workload_start", name=wl.name)
    return {}


def _run_wl_stop(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    wl = ctx.workload(step.values["name"])
    if wl.running:
        wl.stop()
        ctx.events.event("workload_stop", name=wl.name)
    return {}


def _run_wl_retarget(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    # through the node's client route when a layer gives one (a managed cluster's client link)
    ctx.workload(step.values["name"]).retarget(ctx.client_target(step.values["node"]))
    return {"node": step.values["node"]}


register("load", "start", {"name": s.workload_ref(required=True)}, "start a workload",
         run=_run_wl_start)
register("load", "stop", {"name": s.workload_ref(required=True)}, "stop a workload",
         run=_run_wl_stop)
register("load", "retarget", {"name": s.workload_ref(required=True), "node": _node()},
         "point a workload at another node", run=_run_wl_retarget)


# --------------------------------------------------------------------- heal

def _run_heal(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    healed = ctx.heal(step.values["target"])
    return {"healed": healed}


register("heal", "heal", {
    "target": s.string(required=True),
}, "remove a fault (heal = \"<fault id>\") or every active fault (heal = \"all\")",
    run=_run_heal)
