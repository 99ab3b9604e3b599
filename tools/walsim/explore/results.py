"""``--junit FILE`` and ``--json FILE`` of ``walsim-cli explore`` (and ``explore merge``).

Written from the output directory alone.  JUnit: one ``<testsuite>`` per run
(``SCENARIO seed=N``), one ``<testcase>`` per verdict: a FAIL verdict is a
``<failure>``, an ERROR an ``<error>``, PASS and INFO pass; the suite's
properties hold the seed, the schedule digest, the run directory, the report,
the command that reproduces the run and its exit status.  Each distinct
failure adds a suite ``SCENARIO minimal N`` holding the verdicts of its
minimal schedule, with the rate of its reruns and its ``minimal.toml``.
JSON: ``format``, ``walsim``, ``command`` (``explore``), ``exit_status``,
``runs`` (each with its verdicts) and ``failures``.

(The same shapes as ``walsim-cli run --junit/--json`` of the pipelines work;
when that writer is on main, this module should call it rather than keep its
own XML code.)
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

from walsim.core.version import __version__

JSON_FORMAT = 1


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def outcomes(out: Path, runs: Iterable[dict[str, Any]], failures: Iterable[dict[str, Any]],
             root_of: Any = None) -> list[dict[str, Any]]:
    """One entry per run and per minimal schedule: what the suites and the JSON say."""
    found = []
    for r in runs:
        root = root_of(r) if root_of else out
        rundir = root / r["rundir"]
        info = _read(rundir / "run.json", {})
        verdicts = _read(rundir / "verdicts.json", [])
        if not verdicts:
            verdicts = [{"name": "harness", "check": "harness", "result": "ERROR",
                         "summary": r.get("harness_error") or f"no verdicts recorded in {rundir}", "evidence": {}}]
        found.append({"kind": "run", "scenario": info.get("scenario") or "", "seed": r["seed"],
                      "schedule": r.get("schedule"), "rundir": str(rundir), "report": str(rundir / "report.html"),
                      "reproduce": info.get("reproduce") or f"walsim-cli run {rundir / 'schedule.toml'}",
                      "exit_status": r.get("status"), "elapsed_s": r.get("wall_s"), "started": info.get("started"),
                      "verdicts": verdicts})
    for i, f in enumerate(failures, 1):
        if not f.get("dir"):
            continue
        root = Path(f["source"]) if f.get("source") else out
        fdir = root / f["dir"]
        found.append({"kind": "minimal", "scenario": "", "seed": f.get("seed"), "schedule": f.get("minimal"),
                      "rundir": str(fdir), "report": str(root / f["report"]) if f.get("report") else "",
                      "reproduce": f.get("reproduce", ""), "exit_status": 1, "elapsed_s": None, "started": None,
                      "rate": f.get("rate"), "number": i, "verdicts": f.get("verdicts") or []})
    return found


def _props(parent: ET.Element, items: Iterable[tuple[str, Any]]) -> None:
    el = ET.SubElement(parent, "properties")
    for name, value in items:
        if value is not None and value != "":
            ET.SubElement(el, "property", name=name, value=str(value))


def junit_xml(scenario: str, entries: list[dict[str, Any]]) -> str:
    root = ET.Element("testsuites", name=f"walsim explore {scenario}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    host = socket.gethostname()
    for e in entries:
        name = f"{scenario} seed={e['seed']}" if e["kind"] == "run" else f"{scenario} minimal {e['number']}"
        vs = e["verdicts"]
        fails = sum(v.get("result") == "FAIL" for v in vs)
        errors = sum(v.get("result") == "ERROR" for v in vs)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(vs)), failures=str(fails),
                              errors=str(errors), skipped="0", time=f"{float(e['elapsed_s'] or 0):.3f}",
                              hostname=host)
        _props(suite, [("scenario", scenario), ("seed", e["seed"]), ("schedule", e["schedule"]),
                       ("rundir", e["rundir"]), ("report", e["report"]), ("reproduce", e["reproduce"]),
                       ("exit_status", e["exit_status"]), ("rate", e.get("rate"))])
        for v in vs:
            case = ET.SubElement(suite, "testcase", classname=f"walsim.explore.{scenario}",
                                 name=str(v.get("name")), time="0.000")
            text = (f"{v.get('result')} {v.get('name')} ({v.get('check')}): {v.get('summary')}\n\nevidence:\n"
                    f"{json.dumps(v.get('evidence') or {}, indent=2, sort_keys=True, default=str)}\n\n"
                    f"report: {e['report']}\nreproduce with: {e['reproduce']}")
            if v.get("result") == "FAIL":
                ET.SubElement(case, "failure", message=str(v.get("summary")), type=str(v.get("check"))).text = text
            elif v.get("result") == "ERROR":
                ET.SubElement(case, "error", message=str(v.get("summary")), type=str(v.get("check"))).text = text
            else:
                ET.SubElement(case, "system-out").text = f"{v.get('result')}: {v.get('summary')}"
        totals["tests"] += len(vs)
        totals["failures"] += fails
        totals["errors"] += errors
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def results_json(scenario: str, entries: list[dict[str, Any]], exit_status: int,
                 failures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": JSON_FORMAT, "walsim": __version__, "command": "explore", "scenario": scenario,
            "exit_status": exit_status, "runs": [e for e in entries if e["kind"] == "run"],
            "minimal": [e for e in entries if e["kind"] == "minimal"], "failures": failures}


def write_atomic(path: str | Path, text: str) -> Path:
    """Through a temporary file in the same directory: a reader never sees half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write(out: Path, scenario: str, runs: list[dict[str, Any]], failures: list[dict[str, Any]], exit_status: int,
          junit: str | Path | None, json_file: str | Path | None, root_of: Any = None) -> None:
    entries = outcomes(out, runs, failures, root_of)
    if junit:
        write_atomic(junit, junit_xml(scenario, entries))
    if json_file:
        write_atomic(json_file, json.dumps(results_json(scenario, entries, exit_status, failures), indent=2,
                                           default=str) + "\n")
