"""The TOML writer gives back what tomllib read, for every shipped scenario and odd values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from walsim.explore.tomlw import dumps, value

TOP = Path(__file__).resolve().parents[2]
FILES = sorted((TOP / "scenarios").rglob("*.toml")) + sorted((TOP / "tests").rglob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(TOP)) for p in FILES])
def test_round_trip_of_every_scenario_file(path: Path) -> None:
    doc = tomllib.loads(path.read_text())
    text = dumps(doc)
    assert tomllib.loads(text) == doc
    assert dumps(tomllib.loads(text)) == text  # stable


def test_odd_strings_keys_and_numbers() -> None:
    doc = {"s": 'quote " back \\ nl \n tab \t bell \x07 del \x7f é ✓', "weird key": 1, "f": 1e-05,
           "g": 3.0, "neg": -2, "b": False, "l": [1, "a", [True]], "empty": [],
           "t": {"inline": {"x": 1}, "sub": {"y": [{"z": 1}]}},
           "arr": [{"a": 1, "nested": {"k": "v"}}, {"a": 2}]}
    assert tomllib.loads(dumps(doc)) == doc


def test_header_lines_are_comments() -> None:
    text = dumps({"a": 1}, "first\nsecond")
    assert text.startswith("# first\n# second\na = 1\n")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object()])
def test_values_a_scenario_cannot_hold_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        value(bad)
