"""Machine-readable results of judged runs: JUnit XML and JSON.

Every command that judges runs (``walsim-cli run``, and any other that runs
scenarios) writes its ``--junit FILE`` and ``--json FILE`` through here, from
the run directories alone::

    outcomes = [RunOutcome.from_rundir(d) for d in rundirs]
    write_junit(outcomes, "results.xml")
    write_json(outcomes, "results.json")

JUnit: one ``<testsuite>`` per run (named after its scenario; runs of the same
scenario are told apart by their seed), one ``<testcase>`` per verdict.  A
FAIL verdict is a ``<failure>``, an ERROR an ``<error>`` (the harness could
not judge: never a pass), PASS and INFO pass (INFO's summary in
``<system-out>``).  The failure text is the verdict's summary and evidence
(formatted JSON) followed by the report's path and the command that
reproduces the run; the suite's properties hold the scenario file, seed, run
directory, report, reproduce command and exit status, each testcase's the
check and result.  ``docs/pipelines.md`` describes both formats.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from walsim.core.exitstatus import ERROR as ERROR_STATUS
from walsim.core.exitstatus import combine
from walsim.core.version import __version__
from walsim.judge.verdict import ERROR, FAIL, INFO, PASS, Verdict

#: the version of the JSON document's layout (``format``)
JSON_FORMAT = 1


@dataclass
class RunOutcome:
    """One judged run, as the machine-readable outputs describe it."""

    scenario: str
    file: str
    seed: int | None
    rundir: Path
    verdicts: list[Verdict]
    exit_status: int
    reproduce: str = ""
    elapsed_s: float | None = None
    started: str | None = None
    #: anything else worth a JUnit property (e.g. an explore run's fault choice)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.rundir / "report.html"

    @classmethod
    def from_rundir(cls, rundir: str | Path, verdicts: list[Verdict] | None = None,
                    exit_status: int | None = None) -> "RunOutcome":
        """Read a run directory's ``run.json`` and ``verdicts.json`` (or the given
        verdicts and status).  A run without verdicts (stopped before judging)
        gets one ERROR verdict saying so, so that it can never read as a pass."""
        d = Path(rundir)
        try:
            info: dict[str, Any] = json.loads((d / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if verdicts is None:
            try:
                verdicts = [Verdict(**v) for v in json.loads((d / "verdicts.json").read_text(encoding="utf-8"))]
            except (OSError, ValueError, TypeError):
                verdicts = []
        if not verdicts:
            verdicts = [Verdict("harness", "harness", ERROR,
                                f"no verdicts recorded in {d} (the run stopped before it was judged)", {})]
        status = exit_status if exit_status is not None else info.get("exit_status")
        if status is None:
            status = ERROR_STATUS
        return cls(scenario=str(info.get("scenario") or d.name), file=str(info.get("file") or ""),
                   seed=info.get("seed"), rundir=d, verdicts=verdicts, exit_status=int(status),
                   reproduce=str(info.get("reproduce") or ""), elapsed_s=info.get("elapsed_s"),
                   started=info.get("started"))

    def counts(self) -> dict[str, int]:
        return {r: sum(1 for v in self.verdicts if v.result == r) for r in (PASS, FAIL, ERROR, INFO)}

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "file": self.file, "seed": self.seed,
                "rundir": str(self.rundir), "report": str(self.report), "reproduce": self.reproduce,
                "exit_status": self.exit_status, "elapsed_s": self.elapsed_s, "started": self.started,
                "counts": self.counts(), "properties": dict(self.properties),
                "verdicts": [v.to_json() for v in self.verdicts]}


def _suite_names(outcomes: list[RunOutcome]) -> list[str]:
    """Scenario names, with the seed (then the run directory) added where a
    name would repeat."""
    names = [o.scenario for o in outcomes]
    for i, o in enumerate(outcomes):
        if [o.scenario for o in outcomes].count(o.scenario) > 1:
            names[i] = f"{o.scenario} seed={o.seed}"
    for i, o in enumerate(outcomes):
        if names.count(names[i]) > 1:
            names[i] = f"{names[i]} ({o.rundir.name})"
    return names


def _evidence_text(v: Verdict) -> str:
    return json.dumps(v.evidence, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _failure_text(v: Verdict, o: RunOutcome) -> str:
    lines = [f"{v.result} {v.name} ({v.check}): {v.summary}"]
    if v.evidence:
        lines += ["", "evidence:", _evidence_text(v)]
    lines += ["", f"report: {o.report}"]
    if o.reproduce:
        lines.append(f"reproduce with: {o.reproduce}")
    return "\n".join(lines)


def _properties(parent: ET.Element, props: Iterable[tuple[str, Any]]) -> None:
    el = ET.SubElement(parent, "properties")
    for name, value in props:
        if value is not None and value != "":
            ET.SubElement(el, "property", name=name, value=str(value))


def junit_element(outcomes: Iterable[RunOutcome], name: str = "walsim") -> ET.Element:
    """The ``<testsuites>`` element of these runs."""
    outs = list(outcomes)
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    host = socket.gethostname()
    for suite_name, o in zip(_suite_names(outs), outs):
        c = o.counts()
        t = float(o.elapsed_s or 0.0)
        attrs = {"name": suite_name, "tests": str(len(o.verdicts)), "failures": str(c[FAIL]),
                 "errors": str(c[ERROR]), "skipped": "0", "time": f"{t:.3f}", "hostname": host}
        if o.started:
            attrs["timestamp"] = o.started.rstrip("Z")
        suite = ET.SubElement(root, "testsuite", attrs)
        _properties(suite, [("scenario", o.scenario), ("scenario_file", o.file), ("seed", o.seed),
                            ("rundir", o.rundir), ("report", o.report), ("reproduce", o.reproduce),
                            ("exit_status", o.exit_status), *sorted(o.properties.items())])
        for v in o.verdicts:
            case = ET.SubElement(suite, "testcase", classname=f"walsim.{o.scenario}", name=v.name,
                                 time="0.000")
            _properties(case, [("check", v.check), ("result", v.result), ("report", o.report),
                               ("reproduce", o.reproduce)])
            if v.result == FAIL:
                ET.SubElement(case, "failure", message=v.summary, type=v.check).text = _failure_text(v, o)
            elif v.result == ERROR:
                ET.SubElement(case, "error", message=v.summary, type=v.check).text = _failure_text(v, o)
            else:
                out = f"{v.result}: {v.summary}"
                if v.evidence:
                    out += "\n\nevidence:\n" + _evidence_text(v)
                ET.SubElement(case, "system-out").text = out
        totals["tests"] += len(o.verdicts)
        totals["failures"] += c[FAIL]
        totals["errors"] += c[ERROR]
        total_time += t
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("skipped", "0")
    root.set("time", f"{total_time:.3f}")
    return root


def junit_xml(outcomes: Iterable[RunOutcome], name: str = "walsim") -> str:
    """The JUnit XML document (UTF-8 text with its declaration)."""
    root = junit_element(outcomes, name)
    ET.indent(root)
    return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def results_json(outcomes: Iterable[RunOutcome], command: str = "run") -> dict[str, Any]:
    """The JSON document: ``format``, ``walsim``, ``command``, ``exit_status``, ``runs``."""
    outs = list(outcomes)
    return {"format": JSON_FORMAT, "walsim": __version__, "command": command,
            "exit_status": combine(o.exit_status for o in outs),
            "runs": [o.to_json() for o in outs]}


def _write_atomic(path: str | Path, text: str) -> Path:
    """Write through a temporary file in the same directory and rename it, so a
    reader (a CI step, another process) never sees half a file."""
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


def write_junit(outcomes: Iterable[RunOutcome], path: str | Path, name: str = "walsim") -> Path:
    return _write_atomic(path, junit_xml(outcomes, name))


def write_json(outcomes: Iterable[RunOutcome], path: str | Path, command: str = "run") -> Path:
    return _write_atomic(path, json.dumps(results_json(outcomes, command), indent=2, default=str) + "\n")
