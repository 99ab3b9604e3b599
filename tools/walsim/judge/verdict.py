"""Verdicts: judged after the run, from recorded data only (Jepsen style).

Each verdict kind (in the modules of this package, one per subject:
durability, convergence, corruption, roles, lag, availability, logs) declares
its fields, its documentation and an ``evaluate(record, values, durability)``
function returning ``(result, summary, evidence)``: PASS, FAIL, INFO (a
measurement that promises nothing) or ERROR (the recorded data does not allow
a judgement: never a PASS).  The meaning, inputs and limits of every kind are
documented in ``docs/verdicts.md``.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from walsim.core.errors import MissingData
from walsim.judge.record import RecordAt, RunRecord
from walsim.scenario import schema as s
from walsim.scenario.registry import Evaluate, SettleNeeds, VerdictCheck, VerdictKind

PASS, FAIL, INFO, ERROR = "PASS", "FAIL", "INFO", "ERROR"


@dataclass
class Verdict:
    name: str
    check: str
    result: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    #: when the verdict was judged: "end of run", or "step ID (t=... s)" with ``at``
    judged_at: str = "end of run"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verdict(name: str, fields: Mapping[str, s.Field], doc: str,
            settle: SettleNeeds | None = None,
            check: VerdictCheck | None = None) -> Callable[[Evaluate], VerdictKind]:
    """Declare a verdict kind around its evaluate function (the decorated name
    becomes the :class:`~walsim.scenario.registry.VerdictKind`); ``check`` judges
    its values against the scenario's nodes and steps when the file is loaded."""
    def deco(fn: Evaluate) -> VerdictKind:
        return VerdictKind(name, dict(fields), doc, fn, settle, check)
    return deco


def evaluate_all(record: RunRecord) -> list[Verdict]:
    """Every verdict of the record's scenario; exceptions become ERROR."""
    out = []
    scenario = record.scenario
    for spec in scenario.verdicts:
        kind = scenario.verdict_kind(spec)
        judged_at = "end of run"
        try:
            if kind.evaluate is None:
                raise MissingData(f"verdict kind {spec.check!r} has no implementation")
            view = record
            if spec.values.get("at"):
                view = RecordAt(record, spec.values["at"])
                judged_at = f"step {spec.values['at']} (t={view.until:.2f} s)"
            result, summary, evidence = kind.evaluate(view, spec.values, scenario.durability)
        except MissingData as exc:
            result, summary, evidence = ERROR, f"cannot be evaluated: {exc}", {}
        except Exception as exc:  # a bug or malformed record must not read as PASS
            result, summary = ERROR, f"evaluation failed: {type(exc).__name__}: {exc}"
            evidence = {"traceback": traceback.format_exc(limit=4)}
        if spec.values.get("holds") is False and result in (PASS, FAIL):
            evidence = dict(evidence, check_result=result)
            if result == FAIL:
                result, summary = PASS, f"does not hold, as expected (holds = false): {summary}"
            else:
                result, summary = FAIL, f"holds, although holds = false expects it not to: {summary}"
        out.append(Verdict(spec.name, spec.check, result, summary, evidence, judged_at))
    return out


#: judged for every scenario with a ledger workload, declared or not
IMPLICIT = ("single_writer",)


def implicit_verdicts(record: RunRecord, declared: set[str]) -> list[Verdict]:
    """``single_writer`` for a scenario with a ledger workload that does not declare it:
    two nodes acknowledging writes at once is a finding whatever the scenario asked.
    Added only when it can be judged (no ERROR for a verdict nobody asked for)."""
    scenario = record.scenario
    if not any(w.kind == "ledger" for w in scenario.workloads.values()):
        return []
    out = []
    for check in IMPLICIT:
        kind = scenario.vocabulary.verdict(check)
        if check in declared or kind is None or kind.evaluate is None:
            continue
        try:
            result, summary, evidence = kind.evaluate(record, {}, scenario.durability)
        except MissingData:
            continue
        except Exception as exc:  # a bug must not read as PASS
            result, summary = ERROR, f"evaluation failed: {type(exc).__name__}: {exc}"
            evidence = {"traceback": traceback.format_exc(limit=4)}
        evidence["implicit"] = True
        out.append(Verdict(check, check, result, summary, evidence))
    return out


def judge_run(record: RunRecord) -> list[Verdict]:
    """The verdicts of a run: a failed step (FAIL) and a harness error (ERROR)
    recorded in ``run.json`` come first, then every declared verdict, then the
    implicit ones (:data:`IMPLICIT`)."""
    verdicts = evaluate_all(record)
    verdicts += implicit_verdicts(record, {spec.check for spec in record.scenario.verdicts})
    info = record.run
    if info.get("step_error"):
        verdicts.insert(0, Verdict("steps", "steps", FAIL, info["step_error"], {}))
    if info.get("harness_error"):
        verdicts.insert(0, Verdict("harness", "harness", ERROR, info["harness_error"], {}))
    return verdicts


def overall(verdicts: list[Verdict]) -> int:
    """Exit status: 1 if any FAIL, else 2 if any ERROR, else 0."""
    results = {v.result for v in verdicts}
    if FAIL in results:
        return 1
    if ERROR in results:
        return 2
    return 0
