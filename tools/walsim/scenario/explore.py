"""The fault space of a scenario: its ``[explore]`` table, validated like everything else.

``walsim-cli explore`` draws *schedules* from a fault space: which faults
(any ``fault = "..."`` or ``do = "..."`` kind of the vocabulary), on which
nodes and links, with which parameters, how many and how far apart.  The
space is declared in the scenario file beside the cluster, the workload and
the verdicts it explores::

    [explore]
    duration = "6s"                       # drawn faults start within this
    count = { from = 1, to = 3 }          # faults per schedule
    spacing = { from = "500ms", to = "2s" }

    [[explore.faults]]
    id = "slow-l3"
    fault = "delay"
    link = { one_of = ["l3"] }
    delay = { from = "10ms", to = "300ms" }
    heal_after = { from = "500ms", to = "3s" }

A field of a menu entry is a plain value (fixed), ``{ from = A, to = B }``
(a number, duration or size drawn in that range) or ``{ one_of = [...] }``
(one of the values).  Everything is checked here against the step kind's own
fields and checks, so that a drawn schedule is a valid scenario; drawing is
done by :mod:`walsim.explore.schedule`.  The format is documented in
``docs/scenarios.md`` and ``docs/explore.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from walsim.core.errors import Invalid
from walsim.core.lsn import format_lsn, parse_lsn
from walsim.scenario import schema as s
from walsim.scenario.registry import COMMON_FIELDS, Vocabulary
from walsim.scenario.schema import Issue, Names

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import NodeSpec

#: step categories a menu entry may draw from
MENU_CATEGORIES = ("fault", "do")
#: keys of a menu entry besides its category key and its kind's fields
MENU_KEYS = ("id", "weight", "max", "heal_after", "follows", "gap", "note")


@dataclass(frozen=True)
class Range:
    """Numbers between ``lo`` (the ``from`` end) and ``hi`` (the ``to`` end), in either
    order: shrinking moves a drawn value toward ``lo``, so a space writes ranges from
    the mildest to the harshest value.  Integers when ``integer``; ``unit`` says how a
    drawn value is written back (``duration``: ``"NNNms"``, else a bare number)."""

    lo: float
    hi: float
    integer: bool
    unit: str = ""

    @property
    def low(self) -> float:
        return min(self.lo, self.hi)

    @property
    def high(self) -> float:
        return max(self.lo, self.hi)

    def emit(self, value: float) -> Any:
        """The TOML value of a drawn number."""
        if self.unit == "duration":
            return f"{int(round(value * 1000))}ms"
        if self.unit == "lsn":
            return format_lsn(int(value))
        if self.unit == "offset":
            return f"+{int(value)}"
        if self.integer:
            return int(value)
        return round(float(value), 3)

    def number(self, emitted: Any) -> float:
        """A drawn value written by :meth:`emit`, back as a number (seconds for durations)."""
        if self.unit == "duration":
            text = str(emitted)
            return int(text[:-2]) / 1000 if text.endswith("ms") else float(text)
        if self.unit == "lsn":
            return float(parse_lsn(str(emitted)))
        if self.unit == "offset":
            return float(str(emitted).lstrip("+"))
        return float(emitted)


@dataclass(frozen=True)
class Param:
    """One field of a menu entry: fixed (``value``), a :class:`Range` or a choice (``options``)."""

    name: str
    value: Any = None
    range: Range | None = None
    options: tuple[Any, ...] = ()

    @property
    def drawn(self) -> bool:
        return self.range is not None or bool(self.options)


@dataclass
class MenuEntry:
    """One fault the space may draw: a step kind with its parameters."""

    index: int
    id: str
    category: str
    kind: str
    params: dict[str, Param]
    weight: float = 1.0
    max: int | None = None
    #: seconds until a ``heal`` step removes the fault (fault kinds; None: healed at the end)
    heal_after: Range | None = None
    #: not drawn on its own: comes ``gap`` after each occurrence of this entry
    follows: str | None = None
    gap: Range | None = None
    note: str | None = None

    @property
    def path(self) -> str:
        return f"explore.faults[{self.index}]"


@dataclass
class ExploreSpec:
    """The ``[explore]`` table."""

    duration: float
    count: Range
    spacing: Range
    warmup: float
    tail: float
    clients: Range | None
    reruns: int
    fails: int
    snapshot: bool
    entries: list[MenuEntry] = field(default_factory=list)

    def entry(self, entry_id: str) -> MenuEntry:
        return next(e for e in self.entries if e.id == entry_id)


# ------------------------------------------------------------------ fields

def _range_of(base: s.Field, integer_only: bool = False) -> s.Field:
    """A field accepting a plain value of ``base`` or ``{ from = A, to = B }``."""
    def conv(v: Any, names: Names) -> Range:
        return _to_range(v, base, names, integer_only)
    return s.Field(conv, False, None, base.help, f"{base.expects} or {{ from, to }}")


def _number(v: Any, expects: str) -> tuple[float | int, str]:
    """A converted field value as a number, and the unit it is written back in."""
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "+" and isinstance(v[1], int):
        return v[1], "offset"  # "+SIZE": an LSN relative to the primary's, when the fault is installed
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Invalid("a range needs numbers, durations, sizes, LSNs or LSN offsets (\"+64kB\") at both ends")
    if expects == "duration":
        return v, "duration"
    if expects.startswith("LSN") and isinstance(v, int):
        return v, "lsn"
    return v, ""


def _to_range(v: Any, base: s.Field, names: Names, integer_only: bool = False) -> Range:
    if isinstance(v, dict) and not (set(v) - {"from", "to"}) and "from" in v and "to" in v:
        (lo, unit), (hi, unit_hi) = (_number(base.convert(v[k], names), base.expects) for k in ("from", "to"))
        if unit != unit_hi:
            raise Invalid("a range needs the same kind of value at both ends (an LSN and an offset \"+SIZE\" "
                          "do not mix)")
    elif isinstance(v, dict):
        raise Invalid(f"expected {{ from = A, to = B }}, got the keys {', '.join(sorted(v)) or 'none'}")
    else:
        lo, unit = _number(base.convert(v, names), base.expects)
        hi = lo
    integer = isinstance(lo, int) and isinstance(hi, int)
    if integer_only and not integer:
        raise Invalid("expected integers")
    return Range(float(lo), float(hi), integer, unit)


TOP_FIELDS: dict[str, s.Field] = {
    "duration": s.duration(default=10.0, help="drawn faults start within this long after the warm-up"),
    "count": _range_of(s.integer(lo=0, help="faults drawn per schedule (follow-ups not counted)"),
                       integer_only=True),
    "spacing": _range_of(s.duration(help="the gap before each drawn fault")),
    "warmup": s.duration(default=1.0, help="load before the first fault"),
    "tail": s.duration(default=2.0, help="load after the last step of the schedule"),
    "clients": _range_of(s.integer(lo=1, hi=64, help="clients of every workload, drawn per schedule"),
                         integer_only=True),
    "reruns": s.integer(default=3, lo=1, hi=20, help="shrinking: runs of each candidate (n)"),
    "fails": s.integer(default=2, lo=1, hi=20,
                       help="shrinking: a candidate fails when at least this many of its runs fail (k)"),
    "snapshot": s.boolean(default=True, help="build the clusters of schedules from a snapshot image"),
}
TOP_DEFAULTS = {"count": Range(1, 3, True), "spacing": Range(0.5, 3.0, False, "duration")}

ENTRY_FIELDS: dict[str, s.Field] = {
    "id": s.string(required=True, pattern=r"[A-Za-z][A-Za-z0-9_.-]*",
                   help="names the entry; drawn steps are called ID-N"),
    "weight": s.number(default=1.0, lo=0.0, help="relative chance of being drawn"),
    "max": s.integer(lo=1, help="at most this many per schedule"),
    "heal_after": _range_of(s.duration(help="fault kinds: a heal step this long after the fault")),
    "follows": s.string(help="the id of another entry: this one comes after each of its occurrences"),
    "gap": _range_of(s.duration(help="with follows: how long after the entry it follows")),
    "note": s.string(help="free text copied into the drawn steps"),
}


# ------------------------------------------------------------------ loading

def load_explore(raw: Any, vocabulary: Vocabulary, names: Names, nodes: Mapping[str, "NodeSpec"],
                 file: str, issues: list[Issue]) -> ExploreSpec | None:
    """Validate an ``[explore]`` table (None when the scenario has none)."""
    if raw is None:
        return None
    path = "explore"
    if not isinstance(raw, dict):
        issues.append(Issue(file, path, f"expected a table ([explore]), got {s._type_name(raw)}"))
        return None
    before = len(issues)
    v = s.validate_table(raw, TOP_FIELDS, names, file, path, issues, ignore=("faults",))
    for key, default in TOP_DEFAULTS.items():
        if v.get(key) is None:
            v[key] = default
    spacing: Range = v["spacing"]
    if spacing.high <= 0:
        issues.append(Issue(file, f"{path}.spacing", "the spacing between faults must allow more than 0s"))
    if v["fails"] > v["reruns"]:
        issues.append(Issue(file, f"{path}.fails", f"at least {v['fails']} failing runs out of "
                            f"reruns = {v['reruns']} can never happen"))
    raw_entries = raw.get("faults")
    entries: list[MenuEntry] = []
    if raw_entries is None:
        issues.append(Issue(file, f"{path}.faults", "missing: a fault space needs at least one "
                            "[[explore.faults]] entry"))
    elif not isinstance(raw_entries, list):
        issues.append(Issue(file, f"{path}.faults", "expected an array of tables ([[explore.faults]]), "
                            f"got {s._type_name(raw_entries)}"))
    else:
        for i, table in enumerate(raw_entries):
            entry = _load_entry(i, table, vocabulary, names, nodes, file, issues)
            if entry is not None:
                entries.append(entry)
        _check_entries(entries, file, issues)
        if raw_entries and entries and len(issues) == before:
            drawable = [e for e in entries if e.follows is None and e.weight > 0]
            if not drawable and v["count"].high > 0:
                issues.append(Issue(file, f"{path}.faults", "no entry can be drawn on its own (every "
                                    "entry follows another or has weight 0)"))
    if len(issues) != before:
        return None
    return ExploreSpec(v["duration"], v["count"], spacing, v["warmup"], v["tail"], v.get("clients"),
                       v["reruns"], v["fails"], v["snapshot"], entries)


def _load_entry(i: int, table: Any, vocabulary: Vocabulary, names: Names, nodes: Mapping[str, "NodeSpec"],
                file: str, issues: list[Issue]) -> MenuEntry | None:
    path = f"explore.faults[{i}]"
    if not isinstance(table, dict):
        issues.append(Issue(file, path, f"expected a table ([[explore.faults]]), got {s._type_name(table)}"))
        return None
    cats = [c for c in MENU_CATEGORIES if c in table]
    if len(cats) != 1:
        issues.append(Issue(file, path, "expected exactly one of the keys fault or do naming the kind "
                            f"of step to draw (found: {', '.join(cats) or 'none'})"))
        return None
    cat = cats[0]
    kind_name = table[cat]
    kind = vocabulary.step(cat, kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        known = ", ".join(k.name for k in vocabulary.step_kinds(cat))
        issues.append(Issue(file, f"{path}.{cat}", f"unknown {cat} kind {kind_name!r} (expected one of: {known})"))
        return None
    clash = set(kind.fields) & set(ENTRY_FIELDS)
    if clash:  # pragma: no cover - a vocabulary problem, not the user's
        issues.append(Issue(file, path, f"{cat} {kind_name} has fields named like menu keys: {sorted(clash)}"))
        return None
    before = len(issues)
    meta = s.validate_table({k: v for k, v in table.items() if k in ENTRY_FIELDS}, ENTRY_FIELDS, names,
                            file, path, issues)
    params: dict[str, Param] = {}
    # the kind's fields, and the keys every step may carry (a deadline) but id and note
    fields = dict(kind.fields)
    fields.update({k: f for k, f in COMMON_FIELDS.items() if k not in ("id", "note") and k not in fields})
    for key, value in table.items():
        if key in ENTRY_FIELDS or key == cat:
            continue
        f = fields.get(key)
        if f is None:
            known = ", ".join(sorted(set(fields) | set(ENTRY_FIELDS)))
            issues.append(Issue(file, f"{path}.{key}", f"unknown key (expected one of: {known})"))
            continue
        try:
            params[key] = _param(key, value, f, names)
        except Invalid as exc:
            issues.append(Issue(file, f"{path}.{key}", str(exc)))
    for key, f in kind.fields.items():
        if f.required and key not in table:
            issues.append(Issue(file, f"{path}.{key}", f"missing required key ({f.expects}"
                                f"{': ' + f.help if f.help else ''}); give a value, "
                                "{ from, to } or { one_of = [...] }"))
    if meta.get("heal_after") is not None and cat != "fault":
        issues.append(Issue(file, f"{path}.heal_after", f"only faults are healed; do = {kind_name!r} is an action"))
    if meta.get("gap") is not None and meta.get("follows") is None:
        issues.append(Issue(file, f"{path}.gap", "gap is the delay after the entry named by follows"))
    if len(issues) != before:
        return None
    # Every combination a draw can produce must pass the kind's own checks: the
    # lowest values, the highest, and each option of each choice.
    for values in _instances(params, fields, names):
        full = {k: (values[k] if k in values else f.default) for k, f in kind.fields.items()}
        problems = list(kind.check(full)) if kind.check else []
        if kind.check_nodes and not problems:
            problems += list(kind.check_nodes(full, nodes))
        for sub, msg in problems:
            issues.append(Issue(file, f"{path}.{sub}" if sub else path, f"{msg} (when drawn as "
                                f"{_describe(values)})"))
        if problems:
            return None
    return MenuEntry(i, meta["id"], cat, kind_name, params, meta["weight"], meta.get("max"),
                     meta.get("heal_after"), meta.get("follows"), meta.get("gap"), meta.get("note"))


def _param(key: str, value: Any, f: s.Field, names: Names) -> Param:
    if isinstance(value, dict) and "one_of" in value:
        if set(value) != {"one_of"} or not isinstance(value["one_of"], list) or not value["one_of"]:
            raise Invalid("expected { one_of = [A, B, ...] } with at least one value")
        for j, option in enumerate(value["one_of"]):
            try:
                f.convert(option, names)
            except Invalid as exc:
                raise Invalid(f"one_of[{j}]: {exc}") from None
        return Param(key, options=tuple(value["one_of"]))
    if isinstance(value, dict) and ("from" in value or "to" in value):
        return Param(key, range=_to_range(value, f, names))
    f.convert(value, names)
    return Param(key, value=value)


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in values.items()) or "its defaults"


def _instances(params: Mapping[str, Param], fields: Mapping[str, s.Field], names: Names) -> list[dict[str, Any]]:
    """Converted values of the corner cases of a menu entry."""
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    for key, p in params.items():
        f = fields[key]
        if p.range is not None:
            low[key] = f.convert(p.range.emit(p.range.lo), names)
            high[key] = f.convert(p.range.emit(p.range.hi), names)
        elif p.options:
            low[key] = high[key] = f.convert(p.options[0], names)
        else:
            low[key] = high[key] = f.convert(p.value, names)
    out = [low, high]
    for key, p in params.items():
        for option in p.options[1:]:
            out.append(dict(low, **{key: fields[key].convert(option, names)}))
    return out


def _check_entries(entries: list[MenuEntry], file: str, issues: list[Issue]) -> None:
    ids: set[str] = set()
    for e in entries:
        if e.id in ids:
            issues.append(Issue(file, f"{e.path}.id", f"duplicate entry id {e.id!r}"))
        ids.add(e.id)
    by_id = {e.id: e for e in entries}
    for e in entries:
        if e.follows is None:
            continue
        if e.follows not in by_id:
            issues.append(Issue(file, f"{e.path}.follows", f"unknown entry {e.follows!r} (entries: "
                                f"{', '.join(sorted(by_id)) or 'none'})"))
            continue
        seen = [e.id]
        cur = e
        while cur.follows is not None and cur.follows in by_id:
            if cur.follows in seen:
                issues.append(Issue(file, f"{e.path}.follows", "entries follow each other in a cycle: "
                                    + " -> ".join(seen + [cur.follows])))
                break
            seen.append(cur.follows)
            cur = by_id[cur.follows]
