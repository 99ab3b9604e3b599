"""A TOML writer for scenario documents (the standard library reads TOML but does not write it).

:func:`dumps` writes what :func:`tomllib.loads` returns for a scenario file:
strings, integers, floats, booleans, arrays and tables, nested.  Top-level
scalars come first, then tables (``[nodes.pg1]``), then arrays of tables
(``[[steps]]``), each in the document's own order, so that one document
always gives the same bytes.  ``tomllib.loads(dumps(doc)) == doc`` holds for
every document it accepts; anything else (dates, non-finite floats) raises
:class:`ValueError`.
"""

from __future__ import annotations

import math
import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"TOML keys are strings, not {type(key).__name__}")
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def value(v: Any) -> str:
    """One value, inline (tables as inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write the float {v!r} in a scenario")
        text = repr(v)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write a {type(v).__name__} in a scenario")


def _is_table(v: Any) -> bool:
    return isinstance(v, dict)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: list[str], table: dict, lines: list[str]) -> None:
    plain = [(k, v) for k, v in table.items() if not _is_table(v)]
    subs = [(k, v) for k, v in table.items() if _is_table(v)]
    if plain or not subs:
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
        lines += [f"{_key(k)} = {value(v)}" for k, v in plain]
    for k, v in subs:
        _table(path + [k], v, lines)


def dumps(doc: dict[str, Any], header: str = "") -> str:
    """The TOML text of ``doc``; ``header`` (comment lines, without ``#``) goes first."""
    lines: list[str] = [f"# {ln}".rstrip() for ln in header.splitlines()]
    top = [(k, v) for k, v in doc.items() if not _is_table(v) and not _is_table_array(v)]
    lines += [f"{_key(k)} = {value(v)}" for k, v in top]
    for k, v in doc.items():
        if _is_table(v):
            _table([k], v, lines)
    for k, v in doc.items():
        if _is_table_array(v):
            for elem in v:
                lines += ["", f"[[{_key(k)}]]"]
                lines += [f"{_key(ek)} = {value(ev)}" for ek, ev in elem.items()]
    return "\n".join(lines) + "\n"
