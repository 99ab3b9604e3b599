"""``walsim-cli explore merge DIR...``: the output directories of several shards as one exploration.

A sharded exploration (``--shard K/N`` on N machines: a CI matrix, a
Kubernetes Indexed Job) leaves N output directories.  :func:`main` reads
their ``explore.json`` and ``runs.jsonl``, checks that they explored the
same scenario text, reports seeds run twice, groups the failures of all
shards by the verdicts they failed (the minimal schedule of each group is
the one its shard found first), prints a summary and, with ``--out``,
writes ``summary.json``, ``runs.jsonl`` (each line with its ``source``) and
an ``index.html`` linking into the shard directories.  Exit status as for
an exploration: 1 when a run failed, 0 when none did, 2 when every run ended
in ERROR or a directory is not an exploration.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from walsim.explore import index, results


def load(d: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        info = json.loads((d / "explore.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{d} is not an exploration's output directory (no explore.json)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{d}/explore.json cannot be read: {exc}") from None
    return info, index.read_runs(d)


def combine(dirs: list[Path]) -> dict[str, Any]:
    """The merged summary of several exploration directories (raises ValueError on bad input)."""
    infos, runs = [], []
    for d in dirs:
        info, rs = load(d)
        infos.append((d, info))
        for r in rs:
            runs.append(dict(r, source=str(d)))
    shas = {info.get("scenario_sha256") for _, info in infos}
    if len(shas) > 1:
        listing = "; ".join(f"{d}: {info.get('scenario')} {str(info.get('scenario_sha256'))[:12]}"
                            for d, info in infos)
        raise ValueError(f"the directories explored different scenario texts ({listing})")
    seeds = Counter(r["seed"] for r in runs)
    failures: dict[tuple[str, ...], dict[str, Any]] = {}
    for d, info in infos:
        for f in info.get("failures") or []:
            sig = tuple(f.get("signature") or [])
            entry = failures.setdefault(sig, {"signature": list(sig), "seeds": [], "found_in": []})
            entry["seeds"] = sorted(set(entry["seeds"]) | set(f.get("seeds") or []))
            entry["found_in"].append(str(d))
            if "minimal" in f and "minimal" not in entry:
                entry.update({k: v for k, v in f.items() if k not in ("seeds", "signature")})
                entry["source"] = str(d)
    results = Counter(r.get("result") for r in runs)
    status = 1 if results["FAIL"] else (2 if not runs or results["ERROR"] == len(runs) else 0)
    return {
        "scenario": infos[0][1].get("scenario") if infos else None,
        "scenario_sha256": next(iter(shas)) if shas else None,
        "shards": [{"dir": str(d), "shard": info.get("shard"), "seeds": info.get("seeds"),
                    "runs": info.get("runs"), "failed": info.get("failed"), "errors": info.get("errors"),
                    "interrupted": info.get("interrupted"), "elapsed_s": info.get("elapsed_s")}
                   for d, info in infos],
        "runs": len(runs), "passed": results["PASS"], "failed": results["FAIL"], "errors": results["ERROR"],
        "seeds_run_twice": sorted(s for s, n in seeds.items() if n > 1),
        "seed_range": [min(seeds), max(seeds)] if seeds else None,
        "failures": list(failures.values()), "exit_status": status,
        "_runs": runs,
    }


def main(names: list[str], out: Path | None, junit: str | None = None, json_file: str | None = None) -> int:
    if not names:
        print("walsim-cli: error: explore merge needs at least one exploration directory", file=sys.stderr)
        return 2
    try:
        summary = combine([Path(n) for n in names])
    except ValueError as exc:
        print(f"walsim-cli: error: {exc}", file=sys.stderr)
        return 2
    runs = summary.pop("_runs")
    print(f"{summary['scenario']}: {len(summary['shards'])} director{'y' if len(summary['shards']) == 1 else 'ies'}, "
          f"{summary['runs']} runs (seeds {summary['seed_range'][0]}..{summary['seed_range'][1]}"
          if summary["seed_range"] else f"{summary['scenario']}: no runs", end="")
    if summary["seed_range"]:
        print(f"): {summary['failed']} failed, {summary['errors']} ended in ERROR, {summary['passed']} passed")
    else:
        print()
    for s in summary["shards"]:
        print(f"  {s['dir']}: shard {s['shard'] or '-'}, seeds {s['seeds']}, {s['runs']} runs, "
              f"{s['failed']} failed{' (interrupted)' if s['interrupted'] else ''}")
    if summary["seeds_run_twice"]:
        print(f"  warning: seeds run in more than one directory: {summary['seeds_run_twice'][:20]}")
    for f in summary["failures"]:
        line = f"FAIL {', '.join(f['signature'])}: seeds {', '.join(map(str, f['seeds']))}"
        if f.get("source"):
            line += f"; minimal: {f.get('minimal_describe')} in {Path(f['source']) / f['dir'] / 'minimal.toml'}"
        print(line)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        with open(out / "runs.jsonl", "w", encoding="utf-8") as f:
            for r in runs:
                f.write(json.dumps(r) + "\n")
        lines = [f"{len(summary['shards'])} shard directories, {summary['runs']} runs: {summary['failed']} failed, "
                 f"{summary['errors']} ended in ERROR; exit status {summary['exit_status']}"]
        lines += [f"{index._e(s['dir'])}: shard {index._e(s['shard'])}, seeds {index._e(s['seeds'])}, "
                  f"{index._e(s['runs'])} runs" for s in summary["shards"]]
        failures = [(f, Path(f["source"]) if f.get("source") else out) for f in summary["failures"]]
        text = index.render(f"walsim explore (merged): {summary['scenario']}", lines, failures, runs, out,
                            lambda r: Path(r["source"]))
        (out / "index.html").write_text(text, encoding="utf-8")
        print(f"index: {out / 'index.html'}")
    results.write(out or Path("."), str(summary["scenario"]), runs, summary["failures"], int(summary["exit_status"]),
                  junit, json_file, root_of=lambda r: Path(r["source"]))
    return int(summary["exit_status"])


__all__ = ["combine", "main", "load"]
