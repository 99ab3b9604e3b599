"""docs/scenarios.md documents every kind and every field the vocabulary
accepts, so that the docs cannot drift from the code (and ``walsim-cli kinds``
prints the same vocabulary)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from walsim.api import vocabulary

TOP = Path(__file__).resolve().parents[2]
DOC = TOP / "docs" / "scenarios.md"
#: fields a scenario never writes under their own name (``heal = "<id>"`` fills ``target``)
IMPLICIT = {("heal", "heal"): {"target"}}


def sections(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, body up to the next heading) of a markdown text."""
    out = []
    parts = re.split(r"^(#{1,6}) (.*)$", text, flags=re.M)
    for i in range(1, len(parts) - 1, 3):
        out.append((len(parts[i]), parts[i + 1], parts[i + 2]))
    return out


def documented(heading_key: str) -> tuple[str, str]:
    """The body of the section whose heading names ``heading_key`` (e.g. ``do = "promote"``),
    and the introduction of its parent section (where shared fields are listed)."""
    secs = sections(DOC.read_text())
    for i, (level, head, body) in enumerate(secs):
        if f"`{heading_key}`" in head:
            parent = next((b for lv, _, b in reversed(secs[:i]) if lv < level), "")
            return body, parent
    raise AssertionError(f"docs/scenarios.md has no section headed `{heading_key}`")


def field_rows(text: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))


STEP_KINDS = [(k.category, k.name) for k in vocabulary().step_kinds()]


@pytest.mark.parametrize("category,name", STEP_KINDS, ids=[f"{c}={n}" for c, n in STEP_KINDS])
def test_every_step_kind_and_field_is_documented(category: str, name: str) -> None:
    kind = vocabulary().step(category, name)
    assert kind is not None
    body, parent = documented(f'{category} = "{name}"' if category != "heal" else 'heal = "FAULT_ID"')
    missing = set(kind.fields) - IMPLICIT.get((category, name), set()) - field_rows(body) - field_rows(parent)
    assert not missing, f"{category} = \"{name}\": fields not in docs/scenarios.md: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(vocabulary().verdicts))
def test_every_verdict_kind_and_field_is_documented(name: str) -> None:
    body, _ = documented(f'check = "{name}"')
    missing = set(vocabulary().verdicts[name].fields) - field_rows(body)
    assert not missing, f"check = \"{name}\": fields not in docs/scenarios.md: {sorted(missing)}"


def test_every_node_key_of_a_fault_layer_is_documented() -> None:
    body, _ = documented("[nodes.NAME]")
    assert set(vocabulary().node_fields) <= field_rows(body)


def test_every_cluster_key_is_documented() -> None:
    from walsim.scenario.loader import CLUSTER_FIELDS
    body, _ = documented("[cluster]")
    assert set(CLUSTER_FIELDS) <= field_rows(body), sorted(set(CLUSTER_FIELDS) - field_rows(body))


def test_the_doc_check_fails_on_an_undocumented_kind() -> None:
    with pytest.raises(AssertionError, match="no section headed"):
        documented('do = "no_such_kind"')


def test_kinds_command_prints_every_kind() -> None:
    out = subprocess.run([sys.executable, "-m", "walsim", "kinds"], capture_output=True, text=True,
                         cwd=TOP, env={"PYTHONPATH": str(TOP / "tools")}, check=True).stdout
    for category, name in STEP_KINDS:
        assert f'{category} = "{name}"' in out
    for name in vocabulary().verdicts:
        assert f'check = "{name}" (verdict)' in out


def test_kinds_command_rejects_an_unknown_kind() -> None:
    proc = subprocess.run([sys.executable, "-m", "walsim", "kinds", "no_such_kind"], capture_output=True,
                          text=True, cwd=TOP, env={"PYTHONPATH": str(TOP / "tools")})
    assert proc.returncode == 2 and "no kind named 'no_such_kind'" in proc.stderr


def test_every_top_level_key_is_documented() -> None:
    from walsim.scenario.loader import TOP_FIELDS, TOP_TABLES
    body = next(b for _, head, b in sections(DOC.read_text()) if head.strip() == "Top level")
    assert set(TOP_FIELDS) | set(TOP_TABLES) <= field_rows(body)


def test_every_key_of_a_fault_space_is_documented() -> None:
    from walsim.scenario.explore import ENTRY_FIELDS, TOP_FIELDS
    body, _ = documented("[explore]")
    assert set(TOP_FIELDS) | {"faults"} <= field_rows(body), sorted(set(TOP_FIELDS) - field_rows(body))
    body, _ = documented("[[explore.faults]]")
    assert set(ENTRY_FIELDS) <= field_rows(body), sorted(set(ENTRY_FIELDS) - field_rows(body))
