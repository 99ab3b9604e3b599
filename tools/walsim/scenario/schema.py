"""Typed fields for validating scenario tables (steps, faults, workloads, verdicts).

A *kind* of step, fault, workload or verdict declares its fields as a mapping
``name -> Field``; :func:`validate_table` checks one TOML table against them and
returns the converted values, reporting every problem as an :class:`Issue`
carrying the key path (``steps[4].node``) and what was expected.  Nothing here
knows about PostgreSQL; references to nodes, links, faults, steps and workloads
are checked against the names a :class:`Names` holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from walsim.core import lsn as _lsn
from walsim.core.errors import Invalid

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|sec|min|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0,
                   "min": 60.0, "m": 60.0, "h": 3600.0}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|kB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "kB": 1024, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


@dataclass(frozen=True)
class Issue:
    """One validation problem: where (file and key path) and what was expected."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


@dataclass
class Names:
    """The names a scenario declares, for checking references."""

    nodes: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    faults: set[str] = field(default_factory=set)
    steps: set[str] = field(default_factory=set)
    workloads: set[str] = field(default_factory=set)
    #: node fields may hold references (``@primary``...) resolved when a step runs: set by
    #: the loader while it validates steps and workloads, never for verdicts
    references: bool = False


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as ``"250ms"``, ``"5s"``, ``"2min"``."""
    if isinstance(value, bool):
        raise Invalid("expected a duration such as \"5s\" or \"250ms\", got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise Invalid(f"expected a non-negative duration, got {value}")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise Invalid(f"expected a duration such as \"5s\", \"250ms\" or \"2min\", got {value!r}")


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string such as ``"64kB"``, ``"16MB"``."""
    if isinstance(value, bool):
        raise Invalid("expected a size such as \"64kB\", got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise Invalid(f"expected a non-negative size, got {value}")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise Invalid(f"expected a size such as 65536, \"64kB\" or \"16MB\", got {value!r}")


def parse_lsn(value: Any) -> int:
    """An LSN from PostgreSQL's text form ``X/Y``."""
    if isinstance(value, str):
        try:
            return _lsn.parse_lsn(value)
        except ValueError:
            pass
    raise Invalid(f"expected an LSN such as \"0/3000000\", got {value!r}")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


@dataclass(frozen=True)
class Field:
    """A field of a table: its converter, whether it is required, its default and help."""

    convert: Callable[[Any, Names], Any]
    required: bool = False
    default: Any = None
    help: str = ""
    expects: str = ""


# ----------------------------------------------------------- field builders

def string(required: bool = False, default: str | None = None, help: str = "",
           pattern: str | None = None) -> Field:
    rx = re.compile(pattern) if pattern else None

    def conv(v: Any, _n: Names) -> str:
        if not isinstance(v, str):
            raise Invalid(f"expected a string, got {_type_name(v)}")
        if rx and not rx.fullmatch(v):
            raise Invalid(f"expected a string matching {pattern}, got {v!r}")
        return v
    return Field(conv, required, default, help, "string")


def integer(required: bool = False, default: int | None = None, lo: int | None = None,
            hi: int | None = None, help: str = "") -> Field:
    def conv(v: Any, _n: Names) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Invalid(f"expected an integer, got {_type_name(v)}")
        if lo is not None and v < lo:
            raise Invalid(f"expected an integer >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise Invalid(f"expected an integer <= {hi}, got {v}")
        return v
    return Field(conv, required, default, help, "integer")


def number(required: bool = False, default: float | None = None, lo: float | None = None,
           help: str = "") -> Field:
    def conv(v: Any, _n: Names) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Invalid(f"expected a number, got {_type_name(v)}")
        if lo is not None and v < lo:
            raise Invalid(f"expected a number >= {lo}, got {v}")
        return float(v)
    return Field(conv, required, default, help, "number")


def boolean(required: bool = False, default: bool | None = None, help: str = "") -> Field:
    def conv(v: Any, _n: Names) -> bool:
        if not isinstance(v, bool):
            raise Invalid(f"expected true or false, got {_type_name(v)}")
        return v
    return Field(conv, required, default, help, "boolean")


def duration(required: bool = False, default: float | None = None, help: str = "") -> Field:
    return Field(lambda v, _n: parse_duration(v), required, default, help, "duration")


def size(required: bool = False, default: int | None = None, help: str = "") -> Field:
    return Field(lambda v, _n: parse_size(v), required, default, help, "size")


def lsn(required: bool = False, default: int | None = None, help: str = "") -> Field:
    return Field(lambda v, _n: parse_lsn(v), required, default, help, "LSN")


def choice(values: Iterable[str], required: bool = False, default: str | None = None,
           help: str = "") -> Field:
    allowed = tuple(values)

    def conv(v: Any, _n: Names) -> str:
        if not isinstance(v, str) or v not in allowed:
            raise Invalid(f"expected one of {', '.join(allowed)}, got {v!r}")
        return v
    return Field(conv, required, default, help, "one of " + "|".join(allowed))


def regex(required: bool = False, default: str | None = None, help: str = "") -> Field:
    def conv(v: Any, _n: Names) -> str:
        if not isinstance(v, str):
            raise Invalid(f"expected a regular expression string, got {_type_name(v)}")
        try:
            re.compile(v)
        except re.error as exc:
            raise Invalid(f"expected a valid regular expression: {exc}") from None
        return v
    return Field(conv, required, default, help, "regex")


def _ref(kind: str, attr: str) -> Callable[[Any, Names], str]:
    def conv(v: Any, names: Names) -> str:
        if not isinstance(v, str):
            raise Invalid(f"expected the name of a {kind}, got {_type_name(v)}")
        known = getattr(names, attr)
        if v not in known:
            listing = ", ".join(sorted(known)) or "none declared"
            raise Invalid(f"unknown {kind} {v!r} (declared: {listing})")
        return v
    return conv


#: a node reference resolved when the step runs: ``@primary``, ``@sync_standby``,
#: ``@STEP.primary``, ``@STEP.sync_standby`` (what it was when step STEP ran)
NODE_REF_RE = re.compile(r"@(?:(?P<step>[A-Za-z][A-Za-z0-9_.-]*)\.)?(?P<role>primary|sync_standby)")


def _node_or_reference(v: Any, names: Names) -> str:
    if isinstance(v, str) and v.startswith("@") and names.references:
        m = NODE_REF_RE.fullmatch(v)
        if not m:
            raise Invalid(f"expected a node name or a reference @primary, @sync_standby, "
                          f"@STEP.primary or @STEP.sync_standby, got {v!r}")
        if m.group("step") and m.group("step") not in names.steps:
            listing = ", ".join(sorted(names.steps)) or "none declared"
            raise Invalid(f"{v!r} names step {m.group('step')!r}, which no step declares as its id "
                          f"(step ids: {listing})")
        return v
    return _ref("node", "nodes")(v, names)


def is_node_reference(v: Any) -> bool:
    """Whether a converted node field holds a reference resolved at run time."""
    return isinstance(v, str) and v.startswith("@")


def node_ref(required: bool = False, default: str | None = None, help: str = "") -> Field:
    return Field(_node_or_reference, required, default, help, "node name")


def link_ref(required: bool = False, default: str | None = None, help: str = "") -> Field:
    return Field(_ref("link", "links"), required, default, help, "link name")


def fault_ref(required: bool = False, default: str | None = None, help: str = "") -> Field:
    return Field(_ref("fault", "faults"), required, default, help, "fault id")


def step_ref(required: bool = False, default: str | None = None, help: str = "") -> Field:
    return Field(_ref("step", "steps"), required, default, help, "step id")


def workload_ref(required: bool = False, default: str | None = None, help: str = "") -> Field:
    return Field(_ref("workload", "workloads"), required, default, help, "workload name")


def list_of(item: Field, required: bool = False, default: list | None = None,
            help: str = "", min_len: int = 0) -> Field:
    def conv(v: Any, names: Names) -> list:
        if not isinstance(v, list):
            raise Invalid(f"expected an array of {item.expects}, got {_type_name(v)}")
        if len(v) < min_len:
            raise Invalid(f"expected at least {min_len} element(s)")
        out = []
        for i, elem in enumerate(v):
            try:
                out.append(item.convert(elem, names))
            except Invalid as exc:
                raise Invalid(f"element [{i}]: {exc}") from None
        return out
    return Field(conv, required, default, help, f"array of {item.expects}")


def node_map(value: Field, required: bool = False, help: str = "") -> Field:
    """A table keyed by node names."""
    def conv(v: Any, names: Names) -> dict:
        if not isinstance(v, dict):
            raise Invalid(f"expected a table of node name = {value.expects}, got {_type_name(v)}")
        out = {}
        for k, elem in v.items():
            _ref("node", "nodes")(k, names)
            try:
                out[k] = value.convert(elem, names)
            except Invalid as exc:
                raise Invalid(f"[{k}]: {exc}") from None
        return out
    return Field(conv, required, {}, help, f"table of node = {value.expects}")


def settings(required: bool = False, help: str = "") -> Field:
    """postgresql.conf settings: a table of name = string, integer, number or boolean."""
    def conv(v: Any, _n: Names) -> dict:
        if not isinstance(v, dict):
            raise Invalid(f"expected a table of PostgreSQL settings, got {_type_name(v)}")
        for k, elem in v.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", k):
                raise Invalid(f"{k!r} is not a PostgreSQL setting name")
            if not isinstance(elem, (str, int, float, bool)):
                raise Invalid(f"[{k}]: expected a string, number or boolean, got {_type_name(elem)}")
        return dict(v)
    return Field(conv, required, {}, help, "settings table")


def any_value(required: bool = False, default: Any = None, help: str = "") -> Field:
    return Field(lambda v, _n: v, required, default, help, "any value")


# ----------------------------------------------------------------- checking

def validate_table(table: Any, fields: Mapping[str, Field], names: Names, file: str,
                   path: str, issues: list[Issue], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """Check ``table`` against ``fields``; returns converted values (defaults filled in).

    Keys in ``ignore`` are accepted without checking (the caller handles them).
    Every problem is appended to ``issues``.
    """
    out: dict[str, Any] = {}
    if not isinstance(table, dict):
        issues.append(Issue(file, path, f"expected a table, got {_type_name(table)}"))
        return out
    skip = set(ignore)
    for key in table:
        if key not in fields and key not in skip:
            known = ", ".join(sorted(set(fields) | skip))
            issues.append(Issue(file, f"{path}.{key}", f"unknown key (expected one of: {known})"))
    for key, spec in fields.items():
        if key not in table:
            if spec.required:
                issues.append(Issue(file, f"{path}.{key}",
                                    f"missing required key ({spec.expects}{': ' + spec.help if spec.help else ''})"))
            out[key] = spec.default
            continue
        try:
            out[key] = spec.convert(table[key], names)
        except Invalid as exc:
            issues.append(Issue(file, f"{path}.{key}", str(exc)))
            out[key] = spec.default
    return out
