"""``--junit FILE`` and ``--json FILE`` of ``walsim-cli explore`` (and ``explore merge``),
through the one writer of every judging command, :mod:`walsim.judge.export`.

Each exploration run is a :class:`~walsim.judge.export.RunOutcome` read from
its run directory (a suite per run, a test case per verdict), with the
schedule's digest and the run's explore result as properties; each distinct
failure adds the outcome of a failing run of its *minimal* schedule, with
the failure's name, the rate of its reruns and the path of ``minimal.toml``
as properties and ``walsim-cli run .../minimal.toml`` as its reproduce
command.  The JSON document is :func:`~walsim.judge.export.results_json`
(command ``explore``) plus ``failures`` (as in ``explore.json``), its
``exit_status`` the exploration's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

from walsim.judge.export import RunOutcome, _write_atomic, results_json, write_junit


def outcomes(out: Path, runs: Iterable[dict[str, Any]], failures: Iterable[dict[str, Any]],
             root_of: Callable[[dict[str, Any]], Path] | None = None) -> list[RunOutcome]:
    """The outcome of every run, then of a failing run of each minimal schedule."""
    found: list[RunOutcome] = []
    for r in runs:
        root = root_of(r) if root_of else out
        o = RunOutcome.from_rundir(root / r["rundir"])
        o.properties.update({"explore_schedule": str(r.get("schedule")), "explore_result": str(r.get("result"))})
        found.append(o)
    for f in failures:
        if not f.get("dir") or not f.get("report"):
            continue
        root = Path(f["source"]) if f.get("source") else out
        o = RunOutcome.from_rundir((root / f["report"]).parent)
        o.reproduce = str(f.get("reproduce") or o.reproduce)
        o.properties.update({"explore_failure": str(f.get("failure")), "explore_rate": str(f.get("rate")),
                             "explore_minimal": str(root / f["dir"] / "minimal.toml")})
        found.append(o)
    return found


def write(out: Path, scenario: str, runs: list[dict[str, Any]], failures: list[dict[str, Any]], exit_status: int,
          junit: str | Path | None, json_file: str | Path | None,
          root_of: Callable[[dict[str, Any]], Path] | None = None) -> None:
    if not junit and not json_file:
        return
    found = outcomes(out, runs, failures, root_of)
    if junit:
        write_junit(found, junit, name=f"walsim explore {scenario}")
    if json_file:
        doc = results_json(found, command="explore")
        doc["exit_status"] = exit_status
        doc["failures"] = failures
        _write_atomic(json_file, json.dumps(doc, indent=2, default=str) + "\n")
