"""Reading a run directory back: what verdicts and reports are computed from.

A run directory (written by :mod:`walsim.run.engine`) holds::

    scenario.toml     the scenario as run        run.json      seed, versions, outcome
    events.jsonl      steps, faults, workloads   samples.jsonl observer samples per node
    ledger.jsonl      one line per transaction   final.json    end state of every node
    faults/*.jsonl    fault traces (netd, disk)  nodes/NAME/   logs and configs
    verdicts.json     the verdicts              report.html   the report

:class:`RunRecord` loads each file on first use; a file that is absent raises
:class:`~walsim.core.errors.MissingData`, which a verdict turns into ERROR
(never PASS).  A record is opened with the scenario it was run from:
:func:`walsim.api.open_run` parses a run directory's ``scenario.toml``.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from walsim.core.errors import MissingData
from walsim.core.events import read_jsonl
from walsim.scenario.model import Scenario


class RunRecord:
    """The recorded files of one run of ``scenario`` in ``rundir``."""

    def __init__(self, rundir: str | Path, scenario: Scenario) -> None:
        self.dir = Path(rundir)
        self.scenario = scenario

    # ------------------------------------------------------------- files
    def _path(self, name: str) -> Path:
        p = self.dir / name
        if not p.exists():
            raise MissingData(f"{p} is missing")
        return p

    @cached_property
    def run(self) -> dict[str, Any]:
        p = self.dir / "run.json"
        return json.loads(p.read_text()) if p.exists() else {}

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self._path("events.jsonl"))

    @cached_property
    def samples(self) -> list[dict[str, Any]]:
        return read_jsonl(self._path("samples.jsonl"))

    @cached_property
    def ledger(self) -> list[dict[str, Any]]:
        return read_jsonl(self._path("ledger.jsonl"))

    @cached_property
    def final(self) -> dict[str, Any]:
        return json.loads(self._path("final.json").read_text())

    def trace(self, name: str = "netd") -> list[dict[str, Any]]:
        return read_jsonl(self._path(f"faults/{name}.jsonl"))

    def node_log_text(self, node: str) -> str:
        d = self.dir / "nodes" / node
        files = sorted(d.glob("*.log")) + sorted((d / "log").glob("*")) if d.exists() else []
        if not files:
            raise MissingData(f"no log of node {node} under {d}")
        return "".join(f.read_text(errors="replace") for f in files if f.is_file())

    # ---------------------------------------------------------- helpers
    def node_samples(self, node: str) -> list[dict[str, Any]]:
        return [s for s in self.samples if s.get("node") == node]

    def step_events(self, step_id: str) -> tuple[dict | None, dict | None]:
        """The start and end events of the step with this id."""
        start = end = None
        for e in self.events:
            if e.get("id") == step_id:
                if e.get("type") == "step_start" and start is None:
                    start = e
                elif e.get("type") == "step_end":
                    end = e
        return start, end

    def step_time(self, step_id: str, edge: str = "end") -> float:
        start, end = self.step_events(step_id)
        ev = end if edge == "end" else start
        if ev is None:
            raise MissingData(f"step {step_id!r} has no {edge} event in events.jsonl (did it run?)")
        return float(ev["t"])

    def first_event(self, type_: str) -> dict | None:
        return next((e for e in self.events if e.get("type") == type_), None)

    def fault_windows(self) -> list[dict[str, Any]]:
        """Fault windows as ``{id, kind, target, start, end}`` (end None while still on)."""
        windows: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        end_t = max((e["t"] for e in self.events), default=0.0)
        for e in self.events:
            if e.get("type") == "fault_on":
                fid = e["id"]
                windows[fid] = {"id": fid, "kind": e.get("kind"), "target": e.get("target"),
                                "start": e["t"], "end": None}
                order.append(fid)
            elif e.get("type") == "fault_off" and e.get("id") in windows:
                windows[e["id"]]["end"] = e["t"]
        out = []
        for fid in order:
            w = dict(windows[fid])
            w["open"] = w["end"] is None
            if w["end"] is None:
                w["end"] = end_t
            out.append(w)
        return out


class RecordAt(RunRecord):
    """The record of a run as it stood when step ``step_id`` ended: events, samples,
    ledger lines and fault traces up to then, and the engine's snapshot of every
    node taken at that moment (``snapshots/STEP.json``, shaped like ``final.json``)
    in place of the final state.  A fault still on then has an open window."""

    def __init__(self, base: RunRecord, step_id: str) -> None:
        super().__init__(base.dir, base.scenario)
        self.step_id = step_id
        self.until = base.step_time(step_id, "end")

    def _upto(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r.get("t") is None or float(r["t"]) <= self.until]

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return self._upto(read_jsonl(self._path("events.jsonl")))

    @cached_property
    def samples(self) -> list[dict[str, Any]]:
        return self._upto(read_jsonl(self._path("samples.jsonl")))

    @cached_property
    def ledger(self) -> list[dict[str, Any]]:
        return self._upto(read_jsonl(self._path("ledger.jsonl")))

    @cached_property
    def final(self) -> dict[str, Any]:
        p = self.dir / "snapshots" / f"{self.step_id}.json"
        if not p.exists():
            raise MissingData(f"{p} is missing: no snapshot of the nodes at the end of step {self.step_id!r}")
        return json.loads(p.read_text())

    def trace(self, name: str = "netd") -> list[dict[str, Any]]:
        return self._upto(read_jsonl(self._path(f"faults/{name}.jsonl")))


LSN_IN_TEXT = re.compile(r"\b([0-9A-F]{1,8})/([0-9A-F]{1,8})\b")


def lsns_in(text: str) -> list[int]:
    return [(int(a, 16) << 32) | int(b, 16) for a, b in LSN_IN_TEXT.findall(text)]
