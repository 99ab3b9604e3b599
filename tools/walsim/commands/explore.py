"""``walsim-cli explore``: seeded fault schedules from a scenario's fault space, run in parallel, shrunk.

::

    walsim-cli explore SCENARIO [--seeds A..B | --runs N] [--jobs J] [--budget 30m]
                                [--shard K/N] [--out DIR] [--no-shrink] [--reruns N] [--fails K]
    walsim-cli explore SCENARIO --print-schedule SEED
    walsim-cli explore merge DIR... [--out DIR]

See docs/explore.md.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from walsim.api import load_scenario, parse_scenario
from walsim.commands._support import add_result_arguments, check_result_paths
from walsim.core.errors import Invalid, ScenarioError, UsageError
from walsim.explore import merge, results
from walsim.explore.index import read_runs
from walsim.explore.explorer import Exploration, Settings, parse_seeds
from walsim.explore.schedule import generate, render
from walsim.scenario.schema import parse_duration

NAME = "explore"
HELP = "explore a scenario's fault space: seeded schedules run in parallel, failures shrunk"


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("walsim-cli explore merge DIR... [--out DIR] combines the output directories of "
                     "several shards into one summary.\nExit status: 0 no run failed, 1 a run failed, "
                     "2 invalid input or every run ended in ERROR, 130 interrupted.")
    parser.add_argument("target", nargs="+", metavar="SCENARIO",
                        help="a scenario file with an [explore] table (or: merge DIR...)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", metavar="A..B", help="the seeds to run (A..B inclusive, or A,B,C)")
    seeds.add_argument("--runs", type=int, metavar="N",
                       help="run N seeds, from the scenario's seed on (default: 10, or unbounded with --budget)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="J",
                        help="runs at once, each with its own cluster, ports and netd (default 1)")
    parser.add_argument("--budget", metavar="DURATION",
                        help="start no run (and no shrinking candidate) after this long, e.g. 30m, 2h")
    parser.add_argument("--shard", metavar="K/N",
                        help="run only shard K of N of the seeds (every N-th seed from the K-th)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory (new; default walsim-explore/NAME-DATE-TIME)")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    parser.add_argument("--reruns", type=int, metavar="N",
                        help="shrinking: runs of each candidate (default: [explore] reruns, 3)")
    parser.add_argument("--fails", type=int, metavar="K",
                        help="shrinking: failing runs that make a candidate fail (default: [explore] fails, 2)")
    parser.add_argument("--max-candidates", type=int, default=60, metavar="N",
                        help="shrinking: at most N candidates per failure (default 60)")
    add_result_arguments(parser)  # --junit, --json: a suite per run and per minimal failing schedule
    parser.add_argument("--print-schedule", type=int, metavar="SEED",
                        help="print the schedule of SEED as a scenario file and exit (runs nothing)")
    parser.set_defaults(func=run)


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def _count_from(start: int) -> Iterator[int]:
    n = start
    while True:
        yield n
        n += 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    check_result_paths(args)
    if args.target[0] == "merge" and not Path("merge").is_file():
        return merge.main(args.target[1:], args.out, args.junit, args.json)
    if len(args.target) != 1:
        raise UsageError(f"explore takes one scenario file, got {len(args.target)} arguments "
                         "(to combine shards: walsim-cli explore merge DIR...)")
    path = args.target[0]
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        for issue in exc.issues:
            print(f"walsim-cli: {issue}", file=sys.stderr)
        return 2
    if scenario.explore is None:
        raise UsageError(f"{path} declares no fault space: add an [explore] table (docs/explore.md)")
    if args.print_schedule is not None:
        if args.print_schedule < 0:
            raise UsageError("--print-schedule: a seed is a non-negative integer")
        text = render(scenario, generate(scenario, args.print_schedule))
        try:
            parse_scenario(text, f"<schedule of seed {args.print_schedule}>")
        except ScenarioError as exc:
            print(f"walsim-cli: the fault space of {path} drew an invalid schedule for seed "
                  f"{args.print_schedule}:", file=sys.stderr)
            for issue in exc.issues:
                print(f"walsim-cli: {issue}", file=sys.stderr)
            return 2
        sys.stdout.write(text)
        return 0
    spec = scenario.explore
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    budget = None
    if args.budget is not None:
        try:
            budget = parse_duration(args.budget)
        except Invalid as exc:
            raise UsageError(f"--budget: {exc}") from None
    reruns = args.reruns if args.reruns is not None else spec.reruns
    fails = args.fails if args.fails is not None else min(spec.fails, reruns)
    if reruns < 1 or fails < 1 or fails > reruns:
        raise UsageError(f"--fails {fails} of --reruns {reruns}: expected 1 <= fails <= reruns")
    shard = _shard(args.shard)
    if args.seeds is not None:
        try:
            seed_list = parse_seeds(args.seeds)
        except ValueError as exc:
            raise UsageError(f"--seeds: {exc}") from None
        seeds, total, text = seed_list, len(seed_list), args.seeds
    elif args.runs is not None or budget is None:
        n = args.runs if args.runs is not None else 10
        if n < 1:
            raise UsageError("--runs must be at least 1")
        seeds, total, text = list(range(scenario.seed, scenario.seed + n)), n, \
            f"{scenario.seed}..{scenario.seed + n - 1}"
    else:
        seeds, total, text = _count_from(scenario.seed), None, f"from {scenario.seed}"
    if shard is not None and total is not None:
        total = len(range(shard[0] - 1, total, shard[1]))
    out = args.out
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
        out = Path("walsim-explore") / f"{scenario.name}-{stamp}{suffix}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not an empty directory (each exploration writes "
                         "into a new one)")
    settings = Settings(seeds=seeds, total=total, out=out, jobs=args.jobs, budget=budget, shard=shard,
                        shrink=not args.no_shrink, reruns=reruns, fails=fails,
                        max_attempts=args.max_candidates, seeds_text=text, argv=sys.argv[1:])
    start = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - start:7.1f}s] {message}", flush=True)

    say(f"exploring {scenario.name} ({path}): seeds {text}{f', shard {shard[0]}/{shard[1]}' if shard else ''}, "
        f"{args.jobs} job(s){f', budget {args.budget}' if budget else ''} -> {out}")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        exploration = Exploration(scenario, path, settings, say)
        status = exploration.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    results.write(out, scenario.name, read_runs(out), exploration.failures, status, args.junit, args.json)
    c = exploration.counts()
    print(f"{c['runs']} runs: {c['FAIL']} failed, {c['ERROR']} ended in ERROR, {c['PASS']} passed "
          f"({exploration.rate():.0f} runs/hour)")
    for f in exploration.failures:
        line = f"FAIL {', '.join(f['signature'])}: seeds {', '.join(map(str, f['seeds']))}"
        if f.get("dir"):
            line += (f"; minimal: {f.get('minimal_describe')} (fails {f.get('rate')}) "
                     f"in {out / f['dir'] / 'minimal.toml'}")
        print(line)
    print(f"index: {out / 'index.html'}")
    if status == 130:
        print("walsim-cli: interrupted", file=sys.stderr)
    return status
