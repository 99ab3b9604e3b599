"""The log verdict: a node's log contains (or never contains) a pattern.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from walsim.judge.record import RunRecord
from walsim.judge.verdict import FAIL, PASS, verdict
from walsim.scenario import schema as s


@verdict("log_contains", {
    "node": s.node_ref(required=True),
    "regex": s.regex(required=True),
    "expect": s.boolean(default=True, help="false: the pattern must never appear"),
}, "a node's log contains (or never contains) a pattern")
def log_contains(record: RunRecord, values: Mapping[str, Any], durability: str):
    text = record.node_log_text(values["node"])
    rx = re.compile(values["regex"])
    hits = [ln for ln in text.splitlines() if rx.search(ln)]
    evidence = {"matches": len(hits), "lines": hits[:5]}
    if values.get("expect", True):
        if hits:
            return PASS, f"{values['node']} logged: {hits[0].strip()[:200]}", evidence
        return FAIL, f"{values['node']}'s log has no line matching {values['regex']!r}", evidence
    if hits:
        return FAIL, f"{values['node']} logged what must not appear: {hits[0].strip()[:200]}", evidence
    return PASS, f"{values['node']}'s log never matches {values['regex']!r}", evidence


KINDS = [log_contains]
