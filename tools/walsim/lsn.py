"""PostgreSQL log sequence numbers (``X/Y`` in text, a 64-bit integer inside)."""

from __future__ import annotations


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
        hi, sep, lo = text.strip().partition("/")
        try:
            if not sep:
                raise ValueError
            return super().__new__(cls, (int(hi, 16) << 32) | int(lo, 16))
        except ValueError:
            raise ValueError(f"not an LSN: {text!r} (expected X/Y in hexadecimal)") from None

    def __str__(self) -> str:
        return f"{int(self) >> 32:X}/{int(self) & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"
