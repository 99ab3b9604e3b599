"""The scenario engine: builds the cluster, runs the steps, records, judges.

:func:`run_scenario` executes one validated :class:`~walsim.scenario.Scenario`
and writes its run directory (see :mod:`walsim.record` for the files).  The
sequence:

1. the run directory, ``scenario.toml`` (as run), ``run.json`` (seed, versions);
2. walsim-netd when the scenario declares links; the nodes, primary first,
   each standby after its upstream, configured as the scenario says; wait
   until every standby streams;
3. workloads set up (ledger table, pgbench tables) and the observer started;
   autostart workloads started;
4. the steps in order, each with ``step_start``/``step_end`` events; a step
   whose expectation is not met (a wait timing out, a query answering
   otherwise) stops the run with a FAIL, any other error with an ERROR;
5. the settle phase: workloads stopped, every fault healed, every running
   standby given time to reach the final primary's WAL position;
6. ``final.json`` (per node: role, timeline, LSNs, table checksums, ledger
   ids on the primary), fault traces and node logs and configs copied in;
7. the cluster torn down (kept with ``keep``), verdicts computed from the
   recorded files, ``verdicts.json`` and ``report.html`` written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg

import walsim
from walsim import vocabulary
from walsim.events import Clock, EventLog, JsonlWriter
from walsim.observer import Observer
from walsim.record import RunRecord
from walsim.scenario import Scenario, Step
from walsim.schema import format_lsn
from walsim.timeouts import multiplier
from walsim.verdicts import ERROR, FAIL, Verdict, evaluate_all, overall
from walsim.workload import (LEDGER_TABLE, LedgerWorkload, PgbenchWorkload, ReaderWorkload,
                             Workload, node_target)

SETTLE_DEFAULT = 30.0
#: settings applied only once every standby streams (see _build)
DEFERRED_SETTINGS = ("synchronous_standby_names",)


class StepFailed(Exception):
    """The system under test did not do what a step expects (a FAIL, not an ERROR)."""


class HarnessError(Exception):
    """walsim itself could not carry out the scenario (an ERROR)."""


@dataclass
class RunResult:
    rundir: Path
    verdicts: list[Verdict]
    exit_status: int
    seed: int
    step_error: str | None
    harness_error: str | None
    reproduce: str


def _versions(pg: Any) -> dict[str, str]:
    out = {"walsim": walsim.__version__}
    try:
        out["postgresql"] = pg.version_string
    except Exception as exc:  # noqa: BLE001 - versions are informative
        out["postgresql"] = f"unknown ({exc})"
    return out


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_rundir(parent: Path, name: str, seed: int) -> Path:
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


class RunContext:
    """What step kinds act on: nodes, workloads, faults, the event log."""

    def __init__(self, scenario: Scenario, seed: int, rundir: Path, clock: Clock,
                 events: EventLog) -> None:
        self.scenario = scenario
        self.seed = seed
        self.rundir = rundir
        self.clock = clock
        self.events = events
        self.cluster: Any = None
        self.netd: Any = None
        self.netd_workdir: Path | None = None
        self.disks: dict[str, Any] = {}
        self.clocks: dict[str, Path] = {}
        self.link_addr: dict[str, tuple[str, int]] = {}
        self.workloads: dict[str, Workload] = {}
        self.observer: Observer | None = None
        self.primary = scenario.primary
        self.active_faults: dict[str, dict[str, Any]] = {}
        self.current_step: Step | None = None
        #: shown on the progress line when no step runs: setup, settling
        self.phase = "setup"
        self.step_log_offsets: dict[str, int] = {}

    # ------------------------------------------------------------ access
    def node(self, name: str) -> Any:
        return self.cluster.node(name)

    def workload(self, name: str) -> Workload:
        return self.workloads[name]

    def fail(self, step: Step, message: str) -> None:
        raise StepFailed(f"{step.path} ({step.describe()}): {message}")

    def try_lsn(self, node: Any, kind: str) -> int | None:
        try:
            v = node.lsn(kind)
            return int(v) if v is not None else None
        except Exception:  # noqa: BLE001 - informative only
            return None

    def set_primary(self, name: str) -> None:
        self.primary = name

    def retarget_writers(self, name: str) -> None:
        node = self.node(name)
        for wl in self.workloads.values():
            if isinstance(wl, (LedgerWorkload, PgbenchWorkload)):
                wl.retarget(node)
                self.events.event("workload_retarget", name=wl.name, node=name)

    # ------------------------------------------------------------ topology
    def _via(self, via: str | None, upstream: str) -> tuple[str, int] | None:
        if via is None:
            return None
        link = self.scenario.links[via]
        if link.to != upstream:
            raise HarnessError(f"link {via} forwards to {link.to}, not to {upstream}")
        if via not in self.link_addr:
            if self.netd is None:
                raise HarnessError(f"link {via} needs walsim-netd, which is not running")
            self.link_addr[via] = self.netd.add_link(via, self.node(upstream))
        return self.link_addr[via]

    def repoint(self, node: str, upstream: str, via: str | None) -> None:
        n, up = self.node(node), self.node(upstream)
        addr = self._via(via, upstream)
        if addr is None:
            n.repoint(up)
        else:
            n.repoint(addr[0], addr[1])
            n.upstream = up

    def rewind(self, node: str, source: str, via: str | None, start: bool) -> None:
        n, src = self.node(node), self.node(source)
        if n.is_running():
            n.stop("fast")
        n.rewind(src)
        addr = self._via(via, source)
        if addr is not None:
            n.repoint(addr[0], addr[1])
            n.upstream = src
        if start:
            n.start()

    # ---------------------------------------------------------------- waits
    def _waiting(self, step: Step, fn: Callable[[], Any]) -> Any:
        from walsim.errors import WaitTimeout
        try:
            return fn()
        except WaitTimeout as exc:
            self.fail(step, str(exc))

    def wait_catchup(self, step: Step, node: str, upstream: str | None, mode: str, timeout: float) -> str:
        n = self.node(node)
        up = self.node(upstream) if upstream else (n.upstream or self.node(self.primary))
        lsn = self._waiting(step, lambda: up.wait_for_catchup(n, mode, timeout=timeout))
        return str(lsn)

    def wait_lsn(self, step: Step, node: str, kind: str, target: int, timeout: float) -> int:
        from walsim.timeouts import wait_until
        n = self.node(node)

        def probe() -> int:
            v = n.lsn(kind)
            return int(v) if v is not None else 0
        return self._waiting(step, lambda: wait_until(
            probe, what=f"{node}'s {kind} LSN to reach {format_lsn(target)}", timeout=timeout,
            done=lambda v: v >= target, logs=[n.log_file], tolerate=(psycopg.OperationalError,)))

    def wait_commits(self, step: Step, workload: str, count: int, timeout: float) -> int:
        from walsim.timeouts import wait_until
        wl = self.workloads[workload]
        if not isinstance(wl, LedgerWorkload):
            raise HarnessError(f"wait commits needs a ledger workload; {workload} is {wl.kind}")
        if not wl.running:
            self.fail(step, f"workload {workload} is not running: no commit will come")
        base = wl.acked_count()
        return self._waiting(step, lambda: wait_until(
            lambda: wl.acked_count() - base, what=f"{count} more acknowledged commits of {workload}",
            timeout=timeout, done=lambda v: v >= count)) or 0

    def wait_log(self, step: Step, node: str, regex: str, timeout: float, since_start: bool) -> str:
        n = self.node(node)
        since = 0 if since_start else self.step_log_offsets.get(node, 0)
        m = self._waiting(step, lambda: n.wait_for_log(regex, since=since, timeout=timeout))
        return m.group(0) if m else ""

    def wait_role(self, step: Step, node: str, role: str, timeout: float) -> None:
        from walsim.timeouts import wait_until
        n = self.node(node)

        def probe() -> str:
            try:
                return "standby" if n.in_recovery() else "primary"
            except psycopg.OperationalError:
                return "down"
        self._waiting(step, lambda: wait_until(probe, what=f"{node} to be {role}", timeout=timeout,
                                               done=lambda v: v == role, logs=[n.log_file]))

    # --------------------------------------------------------------- faults
    def add_net_fault(self, step: Step) -> dict[str, Any]:
        if self.netd is None:
            raise HarnessError("this scenario uses network faults but walsim-netd is not running "
                               "(declare the link in [links] and stream through it with via)")
        values = dict(step.values)
        at = values.get("at_lsn")
        if isinstance(at, tuple):  # "+SIZE": past the primary's insert position, now
            base = self.node(self.primary).lsn("insert")
            values["at_lsn"] = int(base) + at[1]
        detail = dict(self.netd.add_fault(step.id, step.kind, values) or {})
        if values.get("at_lsn") is not None:
            detail["at_lsn"] = format_lsn(int(values["at_lsn"]))
        self.active_faults[step.id] = {"layer": "netd", "kind": step.kind}
        self.events.event("fault_on", id=step.id, kind=step.kind, target=step.values.get("link"),
                          detail=detail)
        return detail

    def _disk(self, node: str) -> Any:
        if node not in self.disks:
            raise HarnessError(f"{node} is not under the disk fault layer")
        return self.disks[node]

    def add_disk_fault(self, step: Step) -> dict[str, Any]:
        from walsim.steps_disk import rule_words
        node = step.values["node"]
        words = rule_words(step.values)
        self._disk(node).add(step.id, **words)
        self.active_faults[step.id] = {"layer": "disk", "kind": "disk", "node": node}
        self.events.event("fault_on", id=step.id, kind="disk", target=node, detail=words)
        return words

    def skew_clock(self, step: Step) -> dict[str, Any]:
        node, offset = step.values["node"], float(step.values["offset"])
        if node not in self.clocks:
            raise HarnessError(f"{node} does not run with libfaketime")
        self._write_offset(node, offset)
        self.active_faults[step.id] = {"layer": "clock", "kind": "clock", "node": node}
        self.events.event("fault_on", id=step.id, kind="clock", target=node, detail={"offset_s": offset})
        return {"offset_s": offset}

    def _write_offset(self, node: str, offset: float) -> None:
        text = f"{'+' if offset >= 0 else '-'}{abs(int(round(offset)))}\n"
        self.cluster.runas.write_file(self.clocks[node], text, 0o644)

    def power_cut(self, step: Step) -> dict[str, Any]:
        node = step.values["node"]
        report = self._disk(node).power_cut()
        detail = {"undone_writes": report.writes, "undone_bytes": report.bytes, "files": report.files,
                  "directory_entries": report.entries, "unrecoverable": report.unrecoverable}
        self.events.event("power_cut", node=node, **detail)
        if step.values["restart"]:
            self.node(node).start()
        return detail

    def heal(self, target: str) -> list[str]:
        ids = list(self.active_faults) if target == "all" else [target]
        healed = []
        for fid in ids:
            info = self.active_faults.pop(fid, None)
            if info is None:
                continue  # already healed (or expired by its duration)
            if info["layer"] == "netd" and self.netd is not None:
                self.netd.remove_fault(fid)
            elif info["layer"] == "disk":
                self._disk(info["node"]).delete(fid)
            elif info["layer"] == "clock":
                self._write_offset(info["node"], 0.0)
            self.events.event("fault_off", id=fid, kind=info["kind"])
            healed.append(fid)
        return healed

    # -------------------------------------------------------------- status
    def status_line(self, elapsed: float) -> str:
        parts = [f"{elapsed:6.1f}s"]
        st = self.current_step
        parts.append(f"step {st.index + 1}/{len(self.scenario.steps)} {st.describe()}" if st else self.phase)
        if self.observer is not None:
            prim = self.observer.latest.get(self.primary) or {}
            plsn = prim.get("insert_lsn")
            for name in self.scenario.nodes:
                smp = self.observer.latest.get(name)
                if not smp or not smp.get("up"):
                    parts.append(f"{name}:down")
                elif smp.get("role") == "primary":
                    parts.append(f"{name}:P {format_lsn(smp['insert_lsn'])}")
                else:
                    rl = smp.get("replay_lsn")
                    lag = f" lag {max(0, plsn - rl) // 1024}kB" if plsn and rl else ""
                    parts.append(f"{name}:S {format_lsn(rl) if rl else '-'}{lag}")
        acked = sum(w.acked_count() for w in self.workloads.values() if isinstance(w, LedgerWorkload))
        if any(isinstance(w, LedgerWorkload) for w in self.workloads.values()):
            parts.append(f"acked {acked}")
        return " | ".join(parts)


ProgressFn = Callable[[str, RunContext | None], None]


def run_scenario(scenario: Scenario, *, seed: int | None = None, out: str | Path = "walsim-runs",
                 keep: bool = False, progress: ProgressFn | None = None,
                 rundir: Path | None = None, argv_file: str | None = None) -> RunResult:
    """Run one scenario; never raises for a failing system or a harness error
    (both are recorded and reported); KeyboardInterrupt propagates after cleanup."""
    seed = scenario.seed if seed is None else seed
    say = progress or (lambda msg, ctx: None)
    rundir = rundir or new_rundir(Path(out), scenario.name, seed)
    (rundir / "scenario.toml").write_text(scenario.text, encoding="utf-8")
    (rundir / "faults").mkdir(exist_ok=True)
    (rundir / "nodes").mkdir(exist_ok=True)
    reproduce = f"walsim-cli run {argv_file or scenario.path} --seed {seed}"
    clock = Clock()
    events = EventLog(rundir / "events.jsonl", clock)
    samples = JsonlWriter(rundir / "samples.jsonl", clock)
    ledger = JsonlWriter(rundir / "ledger.jsonl", clock)
    ctx = RunContext(scenario, seed, rundir, clock, events)
    run_info: dict[str, Any] = {"scenario": scenario.name, "file": str(scenario.path), "seed": seed,
                                "durability": scenario.durability, "started": _now_iso(),
                                "reproduce": reproduce, "versions": {"walsim": walsim.__version__},
                                "timeout_mult": multiplier()}
    _write_json(rundir / "run.json", run_info)
    step_error: str | None = None
    harness_error: str | None = None
    interrupted: BaseException | None = None
    events.event("run_start", seed=seed, scenario=scenario.name)
    say(f"run {scenario.name} seed {seed} -> {rundir}", None)
    try:
        try:
            _build(ctx, say)
            run_info["versions"] = _versions(ctx.cluster.pg)
            _write_json(rundir / "run.json", run_info)
            _start_load(ctx, samples, ledger)
            step_error = _run_steps(ctx, say)
        except StepFailed as exc:
            step_error = str(exc)
        except HarnessError as exc:
            harness_error = str(exc)
        except KeyboardInterrupt as exc:
            interrupted = exc
            harness_error = "interrupted"
        except Exception as exc:  # noqa: BLE001 - recorded as a harness error
            harness_error = f"{type(exc).__name__}: {exc}"
            (rundir / "harness-traceback.txt").write_text(traceback.format_exc())
        try:
            if interrupted is None and ctx.cluster is not None:
                ctx.phase = "settling"
                ctx.current_step = None
                say("settling: workloads stopped, faults healed, waiting for standbys", ctx)
                _settle(ctx)
        except KeyboardInterrupt as exc:
            interrupted = exc
        except Exception as exc:  # noqa: BLE001
            harness_error = harness_error or f"settle phase: {type(exc).__name__}: {exc}"
            (rundir / "harness-traceback.txt").write_text(traceback.format_exc())
    finally:
        _teardown(ctx, keep, samples, ledger)
        events.event("run_end", step_error=step_error, harness_error=harness_error)
        events.close()
    verdicts = evaluate_all(RunRecord(rundir, scenario))
    if step_error:
        verdicts.insert(0, Verdict("steps", "steps", FAIL, step_error, {}))
    if harness_error:
        verdicts.insert(0, Verdict("harness", "harness", ERROR, harness_error, {}))
    status = overall(verdicts)
    run_info.update(step_error=step_error, harness_error=harness_error, exit_status=status,
                    elapsed_s=round(clock.now(), 2), finished=_now_iso())
    _write_json(rundir / "run.json", run_info)
    _write_json(rundir / "verdicts.json", [v.to_json() for v in verdicts])
    try:
        from walsim.report import build_report
        build_report(rundir, verdicts)
    except Exception as exc:  # noqa: BLE001 - the verdicts stand without the page
        (rundir / "report-error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    if interrupted is not None:
        raise interrupted
    return RunResult(rundir, verdicts, status, seed, step_error, harness_error, reproduce)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _durable(settings: dict[str, Any]) -> bool:
    v = settings.get("fsync")
    return v is True or str(v).lower() in ("on", "true", "1", "yes")


def _build(ctx: RunContext, say: ProgressFn) -> None:
    from walsim.cluster import Cluster, wait_all_streaming
    sc = ctx.scenario
    ctx.cluster = Cluster(prefix=f"walsim-{sc.name}-")
    ctx.events.event("cluster_dir", path=str(ctx.cluster.base_dir))
    if sc.links:
        _start_netd(ctx)
    built: set[str] = set()
    order: list[str] = []
    later: dict[str, dict[str, Any]] = {}
    pending = dict(sc.nodes)
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
                                           auth=spec.hba_method)
            else:
                via = ctx._via(spec.via, spec.upstream) if spec.via else None
                ctx.cluster.create_standby(spec.name, spec.upstream, via=via,
                                           slot=spec.slot if spec.slot else False,
                                           settings=settings, durable=_durable(settings),
                                           wait_streaming=False)
            if spec.disk or spec.clock:
                if spec.disk:
                    _load_disk_layer(ctx, spec.name, spec.disk == "journal")
                if spec.clock:
                    _load_faketime(ctx, spec.name)
                ctx.node(spec.name).restart()  # the preloads take effect at start
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


def _load_disk_layer(ctx: RunContext, name: str, journal: bool) -> None:
    """Preload libwalsim-disk into a node (it takes effect at the restart)."""
    try:
        from walsim.disk import DiskFaults
    except ImportError:
        raise HarnessError(f"nodes.{name}.disk needs the disk fault layer (walsim.disk): "
                           "not available in this build") from None
    node = ctx.node(name)
    ctx.disks[name] = DiskFaults.load(node, journal=journal, seed=ctx.seed)
    ctx.events.event("disk_layer", node=name, journal=journal)


FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1")


def _load_faketime(ctx: RunContext, name: str) -> None:
    """Preload libfaketime into a node, its offset read from a file walsim rewrites."""
    lib = next((p for p in FAKETIME_LIBS if Path(p).exists()), None)
    if lib is None:
        raise HarnessError(f"nodes.{name}.clock needs libfaketime (Debian package libfaketime); "
                           f"not found at {', '.join(FAKETIME_LIBS)}")
    node = ctx.node(name)
    offset_file = ctx.cluster.run_dir / f"faketime-{name}"
    ctx.cluster.runas.write_file(offset_file, "+0\n", 0o644)
    ctx.clocks[name] = offset_file
    env = node.environment
    env["LD_PRELOAD"] = f"{env['LD_PRELOAD']}:{lib}" if env.get("LD_PRELOAD") else lib
    env["FAKETIME_TIMESTAMP_FILE"] = str(offset_file)
    env["FAKETIME_CACHE_DURATION"] = "1"      # re-read the offset at most every second
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # only the wall clock moves
    env["DONT_FAKE_MONOTONIC"] = "1"           # (the older name of the same switch)
    ctx.events.event("clock_layer", node=name, library=lib)


def _start_netd(ctx: RunContext) -> None:
    try:
        from walsim import netd as netd_mod  # type: ignore[attr-defined]
    except ImportError:
        raise HarnessError("this scenario streams through [links], which needs walsim-netd and its "
                           "Python client walsim.netd: not available in this build") from None
    # The control socket's path must fit in sun_path (108 bytes): the daemon
    # works in a short temporary directory; its log and trace are copied into
    # the run directory at teardown.
    workdir = Path(tempfile.mkdtemp(prefix="walsim-netd-"))
    ctx.netd_workdir = workdir
    ctx.netd = netd_mod.ScenarioNetd(netd_mod.Netd.start(workdir, seed=int(ctx.seed)), ctx)


def _start_load(ctx: RunContext, samples: JsonlWriter, ledger: JsonlWriter) -> None:
    sc = ctx.scenario
    primary = ctx.node(sc.primary)
    for name, spec in sc.workloads.items():
        v = spec.values
        if spec.kind == "ledger":
            LedgerWorkload.setup(ctx.node(v["node"]))
            index = sum(1 for w in ctx.workloads.values() if isinstance(w, LedgerWorkload))
            ctx.workloads[name] = LedgerWorkload(name, v, ctx.seed, ledger, ctx.clock,
                                                 node_target(ctx.node(v["node"])), index=index)
        elif spec.kind == "reader":
            ctx.workloads[name] = ReaderWorkload(name, v, ctx.seed, ledger, ctx.clock,
                                                 [node_target(ctx.node(n)) for n in v["nodes"]])
        else:
            pgbench = str(ctx.cluster.pg.path("pgbench"))
            wl = PgbenchWorkload(name, v, ctx.seed, ledger, ctx.clock, node_target(ctx.node(v["node"])),
                                 pgbench, ctx.rundir / f"pgbench-{name}.log")
            wl.setup()
            ctx.workloads[name] = wl
    if any(s.kind == "ledger" for s in sc.workloads.values()):
        # make the table reach every standby before the clock starts
        for n in sc.nodes:
            if n != sc.primary:
                node = ctx.node(n)
                (node.upstream or primary).wait_for_catchup(node, "replay")
    extra = {}
    if ctx.netd is not None:
        extra["netd"] = (ctx.netd.stats, 0.5)
    ctx.observer = Observer(list(sc.nodes), lambda n: ctx.node(n).conninfo(), samples, 0.1, extra)
    ctx.observer.start()
    for name, spec in sc.workloads.items():
        if spec.values.get("autostart", True):
            ctx.workloads[name].start()
            ctx.events.event("workload_start", name=name)


def _run_steps(ctx: RunContext, say: ProgressFn) -> str | None:
    for step in ctx.scenario.steps:
        kind = vocabulary.lookup(step.category, step.kind)
        if kind is None or kind.run is None:
            raise HarnessError(f"{step.path}: {step.category} {step.kind} has no implementation")
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
            detail = kind.run(ctx, step) or {}
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
    ctx.current_step = None
    return None


def _settle_timeout(sc: Scenario) -> float:
    ws = [float(v.values.get("within") or 0) for v in sc.verdicts if v.check in ("converge", "lag_recovers")]
    return max([SETTLE_DEFAULT] + ws)


def _settle_nodes(sc: Scenario) -> list[str]:
    """The standbys the verdicts expect to catch up (waited for, up to the deadline)."""
    wanted: list[str] = []
    for v in sc.verdicts:
        if v.check == "converge":
            wanted += v.values.get("nodes") or list(sc.nodes)
        elif v.check in ("corruption_detected_not_applied",):
            wanted.append(v.values["node"])
    return list(dict.fromkeys(wanted))


def _settle(ctx: RunContext) -> None:
    from walsim.timeouts import Deadline
    sc = ctx.scenario
    ctx.events.event("settle_start")
    for wl in ctx.workloads.values():
        if wl.running:
            wl.stop()
            ctx.events.event("workload_stop", name=wl.name)
    ctx.heal("all")
    settle: dict[str, Any] = {"start_t": ctx.clock.now(), "caught_up": {}}
    final: dict[str, Any] = {"primary": None, "nodes": {}, "settle": settle}
    primary = _find_primary(ctx)
    if primary is not None:
        final["primary"] = primary.name
        target = int(primary.lsn("write"))
        settle["target_lsn"] = target
        deadline = Deadline(_settle_timeout(sc))
        waiting = [n for n in _settle_nodes(sc) if n != primary.name]
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
                    settle["caught_up"][n] = ctx.clock.now()
                    waiting.remove(n)
            time.sleep(0.1)
        settle["not_caught_up"] = waiting
    ctx.events.event("settle_end", caught_up=settle["caught_up"])
    tables = _user_tables(primary) if primary is not None else []
    for n in sc.nodes:
        final["nodes"][n] = _final_node(ctx, n, tables, is_primary=primary is not None and n == primary.name)
    _write_json(ctx.rundir / "final.json", final)


def _find_primary(ctx: RunContext) -> Any:
    candidates = [ctx.primary] + [n for n in ctx.scenario.nodes if n != ctx.primary]
    for n in candidates:
        node = ctx.node(n)
        try:
            if node.is_running() and not node.in_recovery():
                return node
        except Exception:  # noqa: BLE001
            continue
    return None


def _user_tables(node: Any) -> list[str]:
    rows = node.query("SELECT schemaname || '.' || tablename FROM pg_tables "
                      "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
    return [r[0] for r in rows]


def _final_node(ctx: RunContext, name: str, tables: list[str], is_primary: bool) -> dict[str, Any]:
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
        info["checksums"] = {t: node.table_checksum(t) for t in tables}
        if is_primary and f"public.{LEDGER_TABLE}" in tables:
            info["ledger_ids"] = [r[0] for r in node.query(f"SELECT id FROM {LEDGER_TABLE} ORDER BY id")]
    except Exception as exc:  # noqa: BLE001 - recorded; verdicts needing it will ERROR
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _teardown(ctx: RunContext, keep: bool, samples: JsonlWriter, ledger: JsonlWriter) -> None:
    for wl in ctx.workloads.values():
        try:
            wl.stop(timeout=2.0)
        except Exception:  # noqa: BLE001
            pass
    if ctx.observer is not None:
        ctx.observer.stop()
    if ctx.netd is not None:
        try:
            ctx.netd.close(ctx.rundir / "faults")
        except Exception as exc:  # noqa: BLE001
            ctx.events.event("netd_close_error", error=str(exc))
    if ctx.netd_workdir is not None:
        for name in ("netd.log", "netd-trace.jsonl"):
            src = ctx.netd_workdir / name
            if src.exists():
                shutil.copy(src, ctx.rundir / "faults" / ("netd-raw-trace.jsonl" if name.endswith("jsonl") else name))
        shutil.rmtree(ctx.netd_workdir, ignore_errors=True)
    for name, disk in ctx.disks.items():
        try:
            if disk.trace_path.exists():
                shutil.copy(disk.trace_path, ctx.rundir / "faults" / f"disk-{name}.jsonl")
        except OSError as exc:
            ctx.events.event("disk_trace_error", node=name, error=str(exc))
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

