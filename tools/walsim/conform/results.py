"""Results of a conformance run: terminal table, JSON and JUnit XML."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, SKIPPED = "PASS", "FAIL", "SKIPPED"


@dataclass
class Result:
    id: str
    behaviour: str
    source: str
    status: str              # PASS / FAIL / SKIPPED
    evidence: str
    seconds: float = 0.0


@dataclass
class Report:
    side: str                # "sender" or "receiver"
    target: str              # what was checked
    results: list[Result] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in (PASS, FAIL, SKIPPED)}

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for r in self.results)

    def by_id(self) -> dict[str, Result]:
        return {r.id: r for r in self.results}

    def to_json(self) -> str:
        data: dict[str, Any] = {"side": self.side, "target": self.target,
                                "counts": self.counts(),
                                "results": [asdict(r) for r in self.results]}
        return json.dumps(data, indent=2)

    def to_junit(self) -> str:
        c = self.counts()
        suite = ET.Element("testsuite", name=f"walsim-conform-{self.side}",
                           tests=str(len(self.results)), failures=str(c[FAIL]),
                           skipped=str(c[SKIPPED]), errors="0",
                           time=f"{sum(r.seconds for r in self.results):.3f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property",
                      name="target", value=self.target)
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=f"conform.{self.side}",
                                 name=f"{r.id} {r.behaviour[:80]}", time=f"{r.seconds:.3f}")
            if r.status == FAIL:
                ET.SubElement(case, "failure", message=r.evidence[:200]).text = r.evidence
            elif r.status == SKIPPED:
                ET.SubElement(case, "skipped", message=r.evidence[:200])
            else:
                ET.SubElement(case, "system-out").text = r.evidence
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)

    def to_table(self, width: int | None = None) -> str:
        width = width or max(100, shutil.get_terminal_size((120, 20)).columns)
        behaviour_w = 44
        evidence_w = max(30, width - behaviour_w - 18)
        lines = [f"{self.side} conformance of {self.target}",
                 f"{'id':<4} {'behaviour':<{behaviour_w}} {'result':<8} evidence",
                 "-" * min(width, 4 + behaviour_w + 10 + evidence_w)]
        for r in self.results:
            left = textwrap.wrap(r.behaviour, behaviour_w) or [""]
            right = textwrap.wrap(r.evidence, evidence_w) or [""]
            for i in range(max(len(left), len(right))):
                lines.append(f"{r.id if i == 0 else '':<4} {left[i] if i < len(left) else '':<{behaviour_w}} "
                             f"{r.status if i == 0 else '':<8} {right[i] if i < len(right) else ''}".rstrip())
        c = self.counts()
        lines.append(f"{c[PASS]} passed, {c[FAIL]} failed, {c[SKIPPED]} skipped")
        return "\n".join(lines)
