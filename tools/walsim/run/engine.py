"""The scenario engine: builds the cluster, runs the steps, records what happened.

:func:`execute` carries out one validated :class:`~walsim.scenario.model.Scenario`
and writes its records into a run directory (the files are listed in
:mod:`walsim.judge.record`, which reads them back).  The sequence:

1. ``scenario.toml`` (as run), ``run.json`` (seed, versions), the event log;
2. every fault layer the scenario uses is set up; the nodes are built,
   primary first, each standby after its upstream, configured as the
   scenario says, each handed to the layers (which may preload a library and
   ask for a restart); wait until every standby streams;
3. workloads set up (ledger table, pgbench tables) and the observer started
   (with the layers' extra sources); autostart workloads started;
4. the steps in order, each with ``step_start``/``step_end`` events; a step
   whose expectation is not met (a wait timing out, a query answering
   otherwise) stops the run with a FAIL, any other error with an ERROR;
5. the settle phase (:mod:`walsim.run.settle`) and ``final.json``;
6. teardown: workloads, observer, every layer (its traces collected into
   ``faults/``), node logs and configs copied in, the cluster destroyed
   (kept with ``keep``).

Judging the records is the judge's work (:mod:`walsim.judge`);
:func:`walsim.api.run_scenario` does both.  The engine names no fault layer:
it calls the hooks of :class:`~walsim.faults.base.FaultLayer` on every layer
the scenario's vocabulary lists and the scenario uses.
"""

from __future__ import annotations

import shutil
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from walsim.core.diskspace import full_message, full_paths, is_enospc
from walsim.core.errors import DiskFullError, HarnessError, StepFailed
from walsim.core.events import Clock, EventLog, JsonlWriter
from walsim.core.supervise import RunSupervisor
from walsim.core.timeouts import multiplier
from walsim.core.version import __version__
from walsim.pg.cluster import Cluster, wait_all_streaming
from walsim.run.context import RunContext
from walsim.run.observer import Observer
from walsim.run.settle import settle, snapshot, write_json
from walsim.run.workloads import LedgerWorkload, PgbenchWorkload, ReaderWorkload, node_target
from walsim.scenario.model import Scenario, Step
from walsim.scenario.registry import DEFAULT_STEP_TIMEOUT

#: settings applied only once every standby streams (see _build)
DEFERRED_SETTINGS = ("synchronous_standby_names",)

ProgressFn = Callable[[str, "RunContext | None"], None]


@dataclass
class Execution:
    """What running a scenario left behind, before judging."""

    rundir: Path
    seed: int
    reproduce: str
    run_info: dict[str, Any]
    step_error: str | None = None
    harness_error: str | None = None
    #: the KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) that stopped the run
    interrupted: BaseException | None = field(default=None, repr=False)
    elapsed_s: float = 0.0


def versions(pg: Any) -> dict[str, Any]:
    """walsim's version and the PostgreSQL server's: ``postgres --version``,
    the exact version, the major and the bin directory (informative: never fails)."""
    out: dict[str, Any] = {"walsim": __version__}
    try:
        out["postgresql"] = pg.version_string
        out["postgresql_version"] = pg.version
        out["postgresql_major"] = pg.major
        out["postgresql_bindir"] = str(pg.bindir)
    except Exception as exc:  # noqa: BLE001 - versions are informative
        out["postgresql"] = f"unknown ({exc})"
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_rundir(parent: Path, name: str, seed: int) -> Path:
    """A fresh ``NAME-YYYYmmdd-HHMMSS-seedN`` directory under ``parent``."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = parent / f"{name}-{stamp}-seed{seed}"
    d, i = base, 1
    while True:
        try:
            d.mkdir()
            return d
        except FileExistsError:
            i += 1
            d = Path(f"{base}-{i}")


def execute(scenario: Scenario, *, seed: int, rundir: Path, keep: bool = False,
            progress: ProgressFn | None = None, reproduce: str = "") -> Execution:
    """Run one scenario and record it; never raises for a failing system or a harness
    error (both are recorded in the result); an interrupt is recorded and returned.

    The run has a supervisor (:mod:`walsim.core.supervise`): every process and
    directory the run starts is registered, and should this process die without
    tearing down (SIGKILL), the supervisor stops and removes them."""
    with RunSupervisor(f"run-{scenario.name}", rundir):
        return _execute(scenario, seed=seed, rundir=rundir, keep=keep, progress=progress,
                        reproduce=reproduce)


def _execute(scenario: Scenario, *, seed: int, rundir: Path, keep: bool,
             progress: ProgressFn | None, reproduce: str) -> Execution:
    say = progress or (lambda msg, ctx: None)
    (rundir / "scenario.toml").write_text(scenario.text, encoding="utf-8")
    (rundir / "faults").mkdir(exist_ok=True)
    (rundir / "nodes").mkdir(exist_ok=True)
    clock = Clock()
    events = EventLog(rundir / "events.jsonl", clock)
    samples = JsonlWriter(rundir / "samples.jsonl", clock)
    ledger = JsonlWriter(rundir / "ledger.jsonl", clock)
    ctx = RunContext(scenario, seed, rundir, clock, events)
    run_info: dict[str, Any] = {"scenario": scenario.name, "file": str(scenario.path), "seed": seed,
                                "durability": scenario.durability, "started": now_iso(),
                                "reproduce": reproduce, "versions": {"walsim": __version__},
                                "timeout_mult": multiplier(),
                                "warnings": [str(w) for w in scenario.warnings]}
    write_json(rundir / "run.json", run_info)
    result = Execution(rundir, seed, reproduce, run_info)

    def places() -> dict[str, Path | None]:
        return {"run directory": rundir,
                "cluster directory": ctx.cluster.base_dir if ctx.cluster is not None else None}

    def harness_failure(exc: BaseException, prefix: str = "") -> str:
        """The message of a harness error; a full disk is named as such (whatever failed first)."""
        full = full_paths(places())
        if isinstance(exc, DiskFullError):
            return str(exc)
        if is_enospc(exc) or full:
            return full_message(full, f"{type(exc).__name__}: {exc}")
        _write_traceback(rundir)
        return f"{prefix}{type(exc).__name__}: {exc}"
    events.event("run_start", seed=seed, scenario=scenario.name)
    say(f"run {scenario.name} seed {seed} -> {rundir}", None)
    try:
        try:
            _build(ctx, say, keep)
            run_info["versions"] = versions(ctx.cluster.pg)
            write_json(rundir / "run.json", run_info)
            _start_load(ctx, samples, ledger)
            result.step_error = _run_steps(ctx, say)
        except StepFailed as exc:
            result.step_error = str(exc)
        except DiskFullError as exc:
            result.harness_error = str(exc)
        except HarnessError as exc:
            result.harness_error = harness_failure(exc) if (is_enospc(exc) or full_paths(places())) \
                else str(exc)
        except KeyboardInterrupt as exc:
            result.interrupted = exc
            result.harness_error = "interrupted"
        except Exception as exc:  # noqa: BLE001 - recorded as a harness error
            result.harness_error = harness_failure(exc)
        if result.step_error is not None and full_paths(places()):
            # PostgreSQL could not write (WAL, a checkpoint) and a wait timed out: the cause is the disk
            result.harness_error = full_message(full_paths(places()), step_error=result.step_error)
            result.step_error = None
        try:
            if result.interrupted is None and ctx.cluster is not None:
                ctx.phase = "settling"
                ctx.current_step = None
                say("settling: workloads stopped, faults healed, waiting for standbys", ctx)
                settle(ctx)
        except KeyboardInterrupt as exc:
            result.interrupted = exc
        except Exception as exc:  # noqa: BLE001
            result.harness_error = result.harness_error or harness_failure(exc, "settle phase: ")
    finally:
        _teardown(ctx, keep, samples, ledger)
        events.event("run_end", step_error=result.step_error, harness_error=result.harness_error)
        events.close()
    result.elapsed_s = round(clock.now(), 2)
    return result


def _write_traceback(rundir: Path) -> None:
    """harness-traceback.txt, whole or not at all (never an empty file on a full disk)."""
    path = rundir / "harness-traceback.txt"
    try:
        path.write_text(traceback.format_exc())
    except OSError:
        path.unlink(missing_ok=True)


def _durable(settings: dict[str, Any]) -> bool:
    v = settings.get("fsync")
    return v is True or str(v).lower() in ("on", "true", "1", "yes")


def _setup_layers(ctx: RunContext) -> None:
    for layer_cls in ctx.scenario.layers_used():
        layer = layer_cls(ctx)
        ctx.layers[layer.name] = layer  # registered first: teardown reaches a half set-up layer
        layer.setup()


def _build(ctx: RunContext, say: ProgressFn, keep: bool = False) -> None:
    sc = ctx.scenario
    ctx.cluster = Cluster(prefix=f"walsim-{sc.name}-", snapshot=sc.snapshot, keep=keep,
                          version=sc.pg_version)
    # what walsim does differently on this major (a trigger-file promotion on 16+,
    # a rewind without pg_rewind) is said in the run's events
    ctx.cluster.on_note = lambda kind, fields: ctx.events.event(kind, **fields)
    ctx.events.event("cluster_dir", path=str(ctx.cluster.base_dir), snapshot=sc.snapshot)
    ctx.events.event("postgresql", version=ctx.cluster.pg.version, major=ctx.cluster.major,
                     bindir=str(ctx.cluster.pg.bindir))
    say(f"cluster directory {ctx.cluster.base_dir}", ctx)
    _setup_layers(ctx)
    builder = next((layer for layer in ctx.layers.values() if layer.builds_cluster), None)
    if builder is not None:
        # A layer that drives the cluster itself (an HA manager) builds and starts it.
        builder.build(lambda msg: say(msg, ctx))
        return
    built: set[str] = set()
    order: list[str] = []
    later: dict[str, dict[str, Any]] = {}
    pending = dict(sc.nodes)
    # From a snapshot, the nodes of one level (the primary, then the standbys of
    # the nodes built so far) are copied, handed to the layers, then started
    # together; otherwise each is built and started in turn, as an operator does.
    start_now = not sc.snapshot
    while pending:
        ready = [n for n in pending.values() if n.role == "primary" or n.upstream in built]
        if not ready:  # pragma: no cover - the loader rejects cycles
            raise HarnessError(f"cannot order nodes {sorted(pending)}")
        for spec in ready:
            settings = sc.settings_for(spec.name)
            # A synchronous primary would make CREATE ROLE and the base backups wait
            # for standbys that do not exist yet: applied once all of them stream.
            deferred = {k: settings.pop(k) for k in DEFERRED_SETTINGS if k in settings}
            if deferred:
                later[spec.name] = deferred
            say(f"building {spec.name} ({spec.role}{' of ' + spec.upstream if spec.upstream else ''})", ctx)
            if spec.role == "primary":
                ctx.cluster.create_primary(spec.name, settings=settings, durable=_durable(settings),
                                           auth=spec.hba_method, start=start_now)
            else:
                assert spec.upstream is not None
                via = ctx.route(spec.via, spec.upstream)
                ctx.cluster.create_standby(spec.name, spec.upstream, via=via,
                                           slot=spec.slot if spec.slot else False,
                                           settings=settings, durable=_durable(settings),
                                           wait_streaming=False, start=start_now)
            restart = [layer.prepare_node(spec) for layer in ctx.layers.values()]
            if any(restart) and start_now:
                ctx.node(spec.name).restart()  # preloaded libraries take effect at start
        if not start_now:
            ctx.cluster.start_nodes([ctx.node(spec.name) for spec in ready])
            for spec in ready:
                if spec.role == "primary":
                    ctx.cluster.create_replication_role(ctx.node(spec.name))
        for spec in ready:
            built.add(spec.name)
            order.append(spec.name)
            del pending[spec.name]
    primary = ctx.node(sc.primary)
    standbys = [ctx.node(n) for n in order if n != sc.primary]
    wait_all_streaming(primary, standbys)
    for name, deferred in later.items():
        ctx.node(name).set_settings(deferred)  # reloads a running node
    if later:
        ctx.events.event("settings_applied", settings=later)
    ctx.events.event("cluster_ready", nodes=order,
                     ports={n: ctx.node(n).port for n in order})


def _start_load(ctx: RunContext, samples: JsonlWriter, ledger: JsonlWriter) -> None:
    sc = ctx.scenario
    primary = ctx.node(ctx.primary)  # the scenario's, or the leader a manager named
    for name, spec in sc.workloads.items():
        v = dict(spec.values)
        for key in ("node", "nodes"):  # @primary and friends, resolved now
            if isinstance(v.get(key), list):
                v[key] = [ctx.resolve_node(x) for x in v[key]]
            elif v.get(key) is not None:
                v[key] = ctx.resolve_node(v[key])
        if spec.kind == "ledger":
            LedgerWorkload.setup(primary)  # replicated to every node, whoever writes later
            index = sum(1 for w in ctx.workloads.values() if isinstance(w, LedgerWorkload))
            eps = v.get("endpoints")
            search = bool(eps)
            if eps:
                targets = [ctx.endpoint(e) for e in eps]
                first = eps.index(v["node"]) if v.get("node") in eps else 0
                targets = targets[first:] + targets[:first]
            elif any(ctx.node(n).managed_by is not None for n in sc.nodes):
                # A cluster someone else drives: the clients search every node (through its
                # client route) for the writable one, the node named first.
                names = [v["node"]] + [n for n in sc.nodes if n != v["node"]]
                targets = [ctx.client_target(n) for n in names]
                search = True
            else:
                targets = [ctx.client_target(v["node"])]
            ctx.workloads[name] = LedgerWorkload(name, v, ctx.seed, ledger, ctx.clock, targets, index=index,
                                                 search=search, identify=ctx.identify_server)
        elif spec.kind == "reader":
            ctx.workloads[name] = ReaderWorkload(name, v, ctx.seed, ledger, ctx.clock,
                                                 [ctx.client_target(n) for n in v["nodes"]])
        else:
            pgbench = str(ctx.cluster.pg.path("pgbench"))
            wl = PgbenchWorkload(name, v, ctx.seed, ledger, ctx.clock, ctx.client_target(v["node"]),
                                 pgbench, ctx.rundir / f"pgbench-{name}.log")
            wl.setup()
            ctx.workloads[name] = wl
    if any(s.kind == "ledger" for s in sc.workloads.values()):
        # make the table reach every standby before the clock starts
        for n in sc.nodes:
            if n != ctx.primary:
                node = ctx.node(n)
                if node.managed_by is not None:  # its application_name is the manager's choice
                    node.wait_for_replay(primary.lsn("write"))
                else:
                    (node.upstream or primary).wait_for_catchup(node, "replay")
    extra: dict[str, Any] = {}
    for layer in ctx.layers.values():
        extra.update(layer.observe())
    ctx.observer = Observer(list(sc.nodes), lambda n: ctx.node(n).conninfo(), samples, sc.observe_interval, extra)
    ctx.observer.start()
    for name, spec in sc.workloads.items():
        if spec.values.get("autostart", True):
            ctx.workloads[name].start()
            ctx.events.event("workload_start", name=name)


#: how much longer than a wait's own timeout the engine lets it run (its own message is better)
WAIT_GRACE = 5.0


def step_deadline(ctx: RunContext, step: Step) -> float:
    """Seconds a step may run: its ``timeout`` (default 60 s), scaled by
    WALSIM_TIMEOUT_MULT; a wait's own timeout plus a grace, so that the wait
    reports what it waited for; a sleep at least its length."""
    v = step.values.get("timeout")
    base = DEFAULT_STEP_TIMEOUT if v is None else float(v)
    own = "timeout" in ctx.scenario.step_kind(step).fields
    if step.kind == "sleep" and step.values.get("seconds") is not None:
        return max(base * multiplier(), float(step.values["seconds"]) + WAIT_GRACE * multiplier())
    return base * multiplier() + (WAIT_GRACE * multiplier() if own else 0.0)


def run_with_deadline(ctx: RunContext, step: Step) -> dict[str, Any]:
    """Run a step in a thread of its own and wait at most its deadline.  A step still
    running then is aborted (its connections shut down, see ``RunContext.on_abort``)
    and fails: the run goes on to its end phase and teardown, never hangs."""
    box: dict[str, Any] = {}
    ctx.begin_step(step)

    def target() -> None:
        try:
            box["detail"] = ctx.run_step(step)
        except BaseException as exc:  # noqa: BLE001 - handed to the engine's thread
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name=f"walsim-step-{step.index}")
    deadline = step_deadline(ctx, step)
    t.start()
    t.join(deadline)
    if t.is_alive():
        ctx.abort_step()
        t.join(2.0)
        ctx.events.event("step_deadline", step=step.index, id=step.id, deadline_s=round(deadline, 3),
                         unblocked=not t.is_alive())
        raise StepFailed(f"{step.path} ({step.describe()}): did not finish within {deadline:g} s "
                         f"(its deadline: timeout, default {DEFAULT_STEP_TIMEOUT:g} s, x WALSIM_TIMEOUT_MULT="
                         f"{multiplier():g}){'' if not t.is_alive() else '; it is still blocked and was abandoned'}")
    if "error" in box:
        raise box["error"]
    return box.get("detail") or {}


def _run_steps(ctx: RunContext, say: ProgressFn) -> str | None:
    for step in ctx.scenario.steps:
        ctx.current_step = step
        try:
            step = ctx.resolve_step(step)  # @primary & co.: what the events and verdicts see
        except StepFailed as exc:
            ctx.events.event("step_start", step=step.index, id=step.id, category=step.category,
                             kind=step.kind, node=step.values.get("node"), desc=step.describe(), note=step.note)
            ctx.events.event("step_end", step=step.index, id=step.id, kind=step.kind, ok=False, error=str(exc))
            say(f"step failed: {exc}", ctx)
            return str(exc)
        ctx.current_step = step
        node = step.values.get("node")
        ctx.step_log_offsets = {}
        for n in ctx.scenario.nodes:
            try:
                ctx.step_log_offsets[n] = ctx.node(n).log_position()
            except Exception:  # noqa: BLE001
                ctx.step_log_offsets[n] = 0
        ctx.events.event("step_start", step=step.index, id=step.id, category=step.category,
                         kind=step.kind, node=node, desc=step.describe(), note=step.note)
        say(f"step {step.index + 1}/{len(ctx.scenario.steps)}: {step.describe()}", ctx)
        try:
            detail = run_with_deadline(ctx, step)
        except StepFailed as exc:
            ctx.events.event("step_end", step=step.index, id=step.id, kind=step.kind, ok=False,
                             error=str(exc))
            say(f"step failed: {exc}", ctx)
            return str(exc)
        except (HarnessError, KeyboardInterrupt):
            ctx.events.event("step_end", step=step.index, id=step.id, kind=step.kind, ok=False,
                             error="harness error")
            raise
        except Exception as exc:
            ctx.events.event("step_end", step=step.index, id=step.id, kind=step.kind, ok=False,
                             error=f"{type(exc).__name__}: {exc}")
            raise HarnessError(f"{step.path} ({step.describe()}): {type(exc).__name__}: {exc}") from exc
        ctx.events.event("step_end", step=step.index, id=step.id, kind=step.kind, ok=True, detail=detail)
        if snapshot(ctx, step.id):
            say(f"snapshot of every node after {step.id} (verdicts judged there)", ctx)
    ctx.current_step = None
    return None


def _teardown(ctx: RunContext, keep: bool, samples: JsonlWriter, ledger: JsonlWriter) -> None:
    left = ctx.abandon_pending()
    if left:
        ctx.events.event("sql_abandoned", steps=left)
    for wl in ctx.workloads.values():
        try:
            wl.stop(timeout=2.0)
        except Exception:  # noqa: BLE001
            pass
    if ctx.observer is not None:
        ctx.observer.stop()
        # the spread of one round's samples in server time (docs/scenarios.md)
        ctx.events.event("observer_stats", **ctx.observer.skew())
    # In the reverse order of set-up: a layer stops before the layers it required
    # (an HA manager's programs and PostgreSQL before walsim-netd).
    for layer in reversed(list(ctx.layers.values())):
        for what, hook in (("teardown", layer.teardown), ("collect", lambda: layer.collect(ctx.rundir / "faults"))):
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - one layer must not keep the others running
                ctx.events.event("layer_error", layer=layer.name, phase=what, error=f"{type(exc).__name__}: {exc}")
    if ctx.cluster is not None:
        _copy_node_files(ctx)
        problems = ctx.cluster.destroy(keep=keep)
        if problems:
            ctx.events.event("teardown_problems", problems=problems)
        if keep:
            ctx.events.event("cluster_kept", path=str(ctx.cluster.base_dir))
    samples.close()
    ledger.close()


def _copy_node_files(ctx: RunContext) -> None:
    for name, node in ctx.cluster.nodes.items():
        dest = ctx.rundir / "nodes" / name
        dest.mkdir(parents=True, exist_ok=True)
        for src in [node.log_file] + [node.data_dir / f for f in
                                     ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf",
                                      "walsim.conf", "standby.signal")]:
            try:
                if Path(src).exists():
                    shutil.copy(src, dest / Path(src).name)
            except OSError:
                pass
