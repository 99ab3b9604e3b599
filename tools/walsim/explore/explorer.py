"""An exploration: schedules of one fault space run in parallel, failures grouped and shrunk.

:class:`Exploration` draws the schedule of each seed (:mod:`walsim.explore.schedule`),
runs them ``jobs`` at a time in isolated workers (:mod:`walsim.explore.pool`),
keeps going after a failure, groups the failing runs by the verdicts they
failed (one group per distinct failure) and shrinks the first run of each
group (:mod:`walsim.explore.shrink`), a candidate counting as failing when
at least ``fails`` of up to ``reruns`` runs fail one of the same verdicts.

The output directory::

    explore.json          the exploration: scenario, seeds, shard, settings, counts, failures
    runs.jsonl            one line per run: seed, schedule digest, result, verdicts, wall time
    runs/seed-N/          the run directory of seed N (schedule.toml, events, verdicts, report)
    failures/N-VERDICTS/  per distinct failure: minimal.toml, original.toml, verdicts.json,
                          reproduce.txt, shrink.jsonl (every candidate), result.json,
                          candidates/ (their run directories)
    index.html            failures first, each linking to its reports

Exit status (:meth:`Exploration.run`): 1 when a run failed, 0 when none did,
2 when every run ended in ERROR (or the exploration itself could not go on),
130 when interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from walsim.core.version import __version__
from walsim.explore import index
from walsim.explore.pool import Done, Job, Pool
from walsim.explore.schedule import Schedule, declared_seconds, digest, generate, render
from walsim.explore.shrink import Outcome, ShrinkResult, shrink
from walsim.scenario.model import Scenario

Say = Callable[[str], None]


@dataclass
class Settings:
    """How to explore: which seeds, how many at once, for how long, where to write."""

    seeds: Iterable[int]
    #: how many seeds there are (None: unbounded, a budget ends the exploration)
    total: int | None
    out: Path
    jobs: int = 1
    budget: float | None = None
    shard: tuple[int, int] | None = None
    shrink: bool = True
    reruns: int = 3
    fails: int = 2
    max_attempts: int = 60
    #: describes the seeds for explore.json ("1..8", "from 1")
    seeds_text: str = ""
    #: the command line, for explore.json
    argv: list[str] = field(default_factory=list)


@dataclass
class RunLine:
    """One exploration run, as runs.jsonl holds it."""

    seed: int
    schedule: str
    result: str
    status: int
    failed: list[str]
    errors: list[str]
    verdicts: dict[str, str]
    wall_s: float
    declared_s: float
    rundir: str
    events: list[str]
    harness_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "schedule": self.schedule, "result": self.result, "status": self.status,
                "failed": self.failed, "errors": self.errors, "verdicts": self.verdicts,
                "wall_s": self.wall_s, "declared_s": self.declared_s,
                "overhead_s": round(self.wall_s - self.declared_s, 2), "rundir": self.rundir,
                "events": self.events, "harness_error": self.harness_error}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_seeds(text: str) -> list[int]:
    """``A..B`` (inclusive), ``A,B,C`` or ``N``."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"expected seeds as A..B, A,B,C or N, got {text!r}")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ValueError(f"empty seed range {part.strip()!r} (the end is before the start)")
        out += range(a, b + 1)
    return out


def shard_seeds(seeds: Iterable[int], shard: tuple[int, int] | None) -> Iterator[int]:
    """Shard K of N takes every N-th seed starting with the K-th."""
    if shard is None:
        yield from seeds
        return
    k, n = shard
    for i, s in enumerate(seeds):
        if i % n == k - 1:
            yield s


def signature_name(signature: tuple[str, ...]) -> str:
    return "+".join(signature) or "failure"


class Exploration:
    """One exploration of one scenario's fault space."""

    def __init__(self, scenario: Scenario, file: str, settings: Settings, say: Say = print) -> None:
        if scenario.explore is None:
            raise ValueError(f"{file} declares no fault space ([explore])")
        self.scenario = scenario
        self.spec = scenario.explore
        self.file = file
        self.settings = settings
        self.say = say
        self.out = settings.out
        self.records: list[RunLine] = []
        self.failures: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.deadline = self.started + settings.budget if settings.budget else None
        self.interrupted = False
        self.pool = Pool(settings.jobs)
        self._schedules: dict[int, Schedule] = {}
        #: the finished exploration runs by seed
        self._dones: dict[int, Done] = {}
        self._started_iso = now_iso()

    # ---------------------------------------------------------------- files
    def _rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.out))
        except ValueError:
            return str(p)

    def _write_info(self, final: bool = False) -> None:
        counts = self.counts()
        info = {
            "walsim": __version__, "scenario": self.scenario.name, "file": self.file,
            "scenario_sha256": hashlib.sha256(self.scenario.text.encode()).hexdigest(),
            "seeds": self.settings.seeds_text, "shard": (f"{self.settings.shard[0]}/{self.settings.shard[1]}"
                                                         if self.settings.shard else None),
            "jobs": self.settings.jobs, "budget_s": self.settings.budget, "shrink": self.settings.shrink,
            "reruns": self.settings.reruns, "fails": self.settings.fails, "argv": self.settings.argv,
            "started": self._started_iso, "finished": now_iso() if final else None,
            "elapsed_s": round(time.monotonic() - self.started, 1), "interrupted": self.interrupted,
            "runs": counts["runs"], "passed": counts["PASS"], "failed": counts["FAIL"], "errors": counts["ERROR"],
            "runs_per_hour": self.rate(), "exit_status": self.exit_status() if final else None,
            "failures": self.failures,
        }
        tmp = self.out / ".explore.json.tmp"
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        os.replace(tmp, self.out / "explore.json")

    # ---------------------------------------------------------------- stats
    def counts(self) -> dict[str, int]:
        c = {"runs": len(self.records), "PASS": 0, "FAIL": 0, "ERROR": 0}
        for r in self.records:
            c[r.result] += 1
        return c

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return round(len(self.records) / elapsed * 3600, 1) if elapsed > 0 and self.records else 0.0

    def exit_status(self) -> int:
        if self.interrupted:
            return 130
        c = self.counts()
        if c["FAIL"]:
            return 1
        if c["runs"] == 0 or c["ERROR"] == c["runs"]:
            return 2
        return 0

    def _progress(self, last: RunLine) -> None:
        c = self.counts()
        elapsed = time.monotonic() - self.started
        total = self.settings.total
        eta = ""
        if total:
            left = total - c["runs"]
            secs = elapsed / c["runs"] * left if c["runs"] else 0
            eta = f", ETA {_hms(secs)}"
        elif self.deadline is not None:
            eta = f", budget left {_hms(max(0.0, self.deadline - time.monotonic()))}"
        what = last.result + (f" ({', '.join(last.failed)})" if last.failed else "") + \
            (f" ({last.harness_error})" if last.result == "ERROR" and last.harness_error else "")
        self.say(f"seed {last.seed}: {what} in {last.wall_s:.1f}s | {c['runs']}"
                 f"{'/' + str(total) if total else ''} runs, {c['FAIL']} failed, {c['ERROR']} errors, "
                 f"{self.rate():.0f} runs/h{eta}")

    # ----------------------------------------------------------------- runs
    def _job(self, seed: int) -> Job:
        schedule = generate(self.scenario, seed)
        self._schedules[seed] = schedule
        rundir = self.out / "runs" / f"seed-{seed:06d}"
        rundir.mkdir(parents=True, exist_ok=False)
        path = rundir / "schedule.toml"
        path.write_text(render(self.scenario, schedule), encoding="utf-8")
        return Job(f"seed {seed}", path, rundir, seed, tag=schedule)

    def _record(self, done: Done) -> RunLine:
        schedule: Schedule = done.job.tag
        rec = RunLine(done.job.seed, digest(self.scenario, schedule), done.result, done.status, done.failed,
                        done.errors, {v["name"]: v.get("result") for v in done.verdicts}, done.wall_s,
                        declared_seconds(schedule, self.spec), self._rel(done.job.rundir),
                        [e.step_id for e in schedule.events], done.harness_error if done.result == "ERROR" else None)
        self.records.append(rec)
        self._dones[rec.seed] = done
        with open(self.out / "runs.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec.to_json()) + "\n")
        self._progress(rec)
        return rec

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _explore(self) -> None:
        seeds = iter(shard_seeds(self.settings.seeds, self.settings.shard))
        exhausted = False
        while True:
            while not exhausted and self.pool.free and not self._expired():
                seed = next(seeds, None)
                if seed is None:
                    exhausted = True
                    break
                self.pool.submit(self._job(seed))
            if not self.pool.busy:
                break
            for done in self.pool.poll(0.5):
                self._record(done)
        if self._expired() and not exhausted:
            self.say("budget spent: no more runs started")

    # -------------------------------------------------------------- shrinking
    def _evaluate(self, schedule: Schedule, signature: tuple[str, ...], where: Path,
                  prior: list[Done] | None = None, runs: int | None = None) -> Outcome:
        """Run ``schedule`` until ``fails`` runs failed one of ``signature``'s verdicts, or so
        many passed that it cannot, at most ``runs`` (default ``reruns``) runs in all."""
        n = runs or self.settings.reruns
        k = min(self.settings.fails, n)
        results: list[Done] = list(prior or [])
        where.mkdir(parents=True, exist_ok=True)
        path = where / "schedule.toml"
        path.write_text(render(self.scenario, schedule), encoding="utf-8")
        launched = len(results)

        def failing(d: Done) -> bool:
            return d.result == "FAIL" and bool(set(d.failed) & set(signature))

        mine: set[str] = set()
        while True:
            fails = sum(1 for d in results if failing(d))
            passes = len(results) - fails
            inflight = launched - len(results)
            if len(results) >= n or (runs is None and (fails >= k or passes > n - k)):
                break
            # launch what may still be needed, at once: enough runs to reach k
            # failures (for a confirmation, every run up to n), those in flight included
            needed = (n - len(results)) if runs is not None else (k - fails)
            while self.pool.free and launched < n and inflight < needed:
                launched += 1
                inflight += 1
                key = f"{where} run {launched}"
                mine.add(key)
                self.pool.submit(Job(key, path, where / f"run-{launched}", schedule.seed, report="failures"))
            results += self.pool.poll(0.5)
        # Decided: runs still in flight cannot change the answer; stop them (not counted).
        cancelled = self.pool.cancel(mine - {d.job.key for d in results})
        for d in cancelled:
            (d.job.rundir / "CANCELLED").write_text("stopped: the candidate was decided without this run\n")
        fails = sum(1 for d in results if failing(d))
        return Outcome(fails >= k, len(results), fails, results)

    def _shrink_one(self, number: int, signature: tuple[str, ...], first: RunLine,
                    first_done: Done) -> dict[str, Any]:
        name = f"{number}-{signature_name(signature)}"
        fdir = self.out / "failures" / name
        fdir.mkdir(parents=True, exist_ok=True)
        original = self._schedules[first.seed]
        shutil.copy(self.out / first.rundir / "schedule.toml", fdir / "original.toml")
        summary: dict[str, Any] = {"failure": name, "signature": list(signature), "seed": first.seed,
                                   "original": first.schedule, "original_events": first.events,
                                   "original_rundir": first.rundir}
        history = open(fdir / "shrink.jsonl", "w", encoding="utf-8")
        attempts = 0

        def oracle(cand: Schedule, change: str) -> Outcome:
            nonlocal attempts
            attempts += 1
            out = self._evaluate(cand, signature, fdir / "candidates" / f"a{attempts:03d}")
            # written as it happens, so that an interrupted shrink keeps its history
            history.write(json.dumps({"attempt": attempts, "change": change, "schedule": digest(self.scenario, cand),
                                      "events": [e.step_id for e in cand.events], "runs": out.runs,
                                      "failures": out.failures, "failing": out.failing,
                                      "accepted": out.failing}) + "\n")
            history.flush()
            errors = sum(1 for d in out.detail or [] if d.result == "ERROR")
            self.say(f"  shrink {name} #{attempts}: {change}: {'still fails' if out.failing else 'does not fail'} "
                     f"({out.failures}/{out.runs} runs failed{f', {errors} ended in ERROR' if errors else ''})")
            return out

        base = {n: int(w.values.get("clients") or 1) for n, w in self.scenario.workloads.items()
                if "clients" in w.values}
        self.say(f"shrinking {name} (seed {first.seed}: {', '.join(first.events) or 'no faults'}); "
                 f"a candidate fails when {self.settings.fails} of up to {self.settings.reruns} runs fail")
        try:
            # Does the original reproduce?  Its exploration run counts as the first run.
            check = self._evaluate(original, signature, fdir / "candidates" / "a000-original", prior=[first_done])
            summary["original_rate"] = f"{check.failures}/{check.runs}"
            if not check.failing:
                self.say(f"  {name}: failed {check.failures} of {check.runs} runs: not reproducible enough to shrink")
                result = ShrinkResult(original, original, [], "not reproducible")
                minimal_out = check
            else:
                result = shrink(original, self.spec, oracle, key=lambda s: digest(self.scenario, s),
                                base_clients=base, max_attempts=self.settings.max_attempts, deadline=self.deadline)
                minimal_out = check
                if result.accepted:
                    minimal_out = result.accepted[-1].outcome
                # the rate over all n runs of the minimal schedule
                if minimal_out.runs < self.settings.reruns and not self._expired():
                    minimal_out = self._evaluate(result.minimal, signature, fdir / "candidates" / "confirm",
                                                 prior=list(minimal_out.detail or []), runs=self.settings.reruns)
        finally:
            history.close()
        minimal = result.minimal
        rate = f"{minimal_out.failures}/{minimal_out.runs}"
        notes = (f"Shrunk from seed {first.seed} ({len(original.events)} faults) to {len(minimal.events)}: "
                 f"{minimal.describe()}.",
                 f"It failed {', '.join(signature)} in {rate} runs ({self.settings.fails} of up to "
                 f"{self.settings.reruns} make a failure); shrinking stopped: {result.stopped}.",
                 "Reproduce: walsim-cli run <this file>")
        (fdir / "minimal.toml").write_text(render(self.scenario, replace(minimal, notes=notes)), encoding="utf-8")
        failing_runs = [d for d in (minimal_out.detail or []) if d.result == "FAIL"]
        example = failing_runs[0] if failing_runs else first_done
        shutil.copy(example.job.rundir / "verdicts.json", fdir / "verdicts.json") \
            if (example.job.rundir / "verdicts.json").exists() else None
        reproduce = f"walsim-cli run {fdir / 'minimal.toml'}"
        (fdir / "reproduce.txt").write_text(reproduce + "\n")
        summary.update({
            "dir": self._rel(fdir), "minimal": digest(self.scenario, minimal),
            "minimal_events": [e.step_id for e in minimal.events], "minimal_describe": minimal.describe(),
            "rate": rate, "runs": minimal_out.runs, "failures": minimal_out.failures,
            "attempts": len(result.attempts), "accepted": [a.change for a in result.accepted],
            "stopped": result.stopped, "reproduce": reproduce,
            "report": self._rel(example.job.rundir / "report.html"),
            "verdicts": json.loads((fdir / "verdicts.json").read_text()) if (fdir / "verdicts.json").exists() else [],
        })
        (fdir / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
        self.say(f"{name}: minimal schedule {', '.join(summary['minimal_events']) or '(no faults)'} fails in "
                 f"{rate} runs; {fdir / 'minimal.toml'}")
        return summary

    def _group(self) -> list[tuple[tuple[str, ...], list[RunLine]]]:
        groups: dict[tuple[str, ...], list[RunLine]] = {}
        for r in sorted(self.records, key=lambda r: r.seed):
            if r.result == "FAIL":
                groups.setdefault(tuple(sorted(r.failed)), []).append(r)
        return list(groups.items())

    def _failures(self) -> None:
        for number, (signature, runs) in enumerate(self._group(), 1):
            entry: dict[str, Any] = {"signature": list(signature), "seeds": [r.seed for r in runs],
                                     "first_seed": runs[0].seed, "report": f"{runs[0].rundir}/report.html"}
            self.failures.append(entry)  # recorded before shrinking: an interrupt keeps it
            if self.settings.shrink and not self._expired():
                entry["shrink"] = "interrupted"
                entry.update(self._shrink_one(number, signature, runs[0], self._dones[runs[0].seed]))
                entry.pop("shrink")
            elif self.settings.shrink:
                entry["shrink"] = "skipped: the budget was spent"
            self._write_info()

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        self._started_iso = now_iso()
        if self.out.exists() and any(self.out.iterdir()):
            raise FileExistsError(f"{self.out} is not empty (an exploration writes into a new directory)")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "runs.jsonl").touch()
        self._write_info()
        try:
            self._explore()
            self._failures()
        except KeyboardInterrupt:
            self.interrupted = True
            self.say("interrupted: stopping the runs in progress")
            for done in self.pool.stop():
                if isinstance(done.job.tag, Schedule):
                    self._record(done)
        finally:
            self._write_info(final=True)
            index.write(self.out)
        return self.exit_status()


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
