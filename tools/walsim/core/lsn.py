"""PostgreSQL log sequence numbers (``X/Y`` in text, a 64-bit integer inside)."""

from __future__ import annotations

import re

_LSN_RE = re.compile(r"^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$")


class Lsn(int):
    """An LSN: an ``int`` that prints as PostgreSQL does (``0/3000148``)."""

    def __new__(cls, value: int | str) -> "Lsn":
        if isinstance(value, str):
            return cls.parse(value)
        if not 0 <= int(value) < 1 << 64:
            raise ValueError(f"LSN {value} out of range")
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> "Lsn":
        m = _LSN_RE.match(text)
        if m is None:
            raise ValueError(f"not an LSN: {text!r} (expected X/Y in hexadecimal)")
        return super().__new__(cls, (int(m.group(1), 16) << 32) | int(m.group(2), 16))

    def __str__(self) -> str:
        return format_lsn(self)

    def __repr__(self) -> str:
        return f"Lsn('{self}')"


def parse_lsn(text: str) -> int:
    """The integer of an LSN in PostgreSQL's text form ``X/Y``; ``ValueError`` otherwise."""
    return int(Lsn.parse(text))


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form of an LSN (``0/3000148``)."""
    return f"{int(lsn) >> 32:X}/{int(lsn) & 0xFFFFFFFF:X}"


def lsn_or_none(text: str | None) -> int | None:
    """:func:`parse_lsn` of a column that may be NULL."""
    return None if text is None else parse_lsn(text)
