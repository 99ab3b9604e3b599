"""The deterministic decision function, identical to ref/lib/decision.c.

``decision(seed, rule, *coords)`` is a keyed SplitMix64 over a canonical
encoding of the rule name and the logical coordinates of an event; see
``ref/lib/include/walsim/decision.h`` for the algorithm.  Both implementations
are checked against ``tests/data/decision_vectors.txt``.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_FINAL_KEY = 0xD1B54A32D192ED03
_STRING_TAG = 1 << 63


def mix(x: int) -> int:
    """The SplitMix64 finaliser of ``x + golden ratio``."""
    z = (x + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class Decision:
    """Incremental form: start with a seed and a rule, add coordinates, read the value."""

    def __init__(self, seed: int, rule: str) -> None:
        self.state = mix(seed & MASK64)
        self.add_str(rule)

    def add_u64(self, value: int) -> "Decision":
        if value < 0 or value > MASK64:
            raise ValueError(f"coordinate {value} does not fit in 64 unsigned bits")
        self.state = mix(self.state ^ value)
        return self

    def add_bytes(self, data: bytes) -> "Decision":
        for i in range(0, len(data), 8):
            self.add_u64(int.from_bytes(data[i:i + 8], "little"))
        return self.add_u64(len(data) | _STRING_TAG)

    def add_str(self, text: str) -> "Decision":
        return self.add_bytes(text.encode("utf-8"))

    def add(self, coord: int | str | bytes) -> "Decision":
        if isinstance(coord, bool):
            return self.add_u64(int(coord))
        if isinstance(coord, int):
            return self.add_u64(coord)
        if isinstance(coord, str):
            return self.add_str(coord)
        return self.add_bytes(coord)

    def value(self) -> int:
        return mix(self.state ^ _FINAL_KEY)


def decision(seed: int, rule: str, *coords: int | str | bytes) -> int:
    """The decision value for (seed, rule, coordinates)."""
    d = Decision(seed, rule)
    for c in coords:
        d.add(c)
    return d.value()


def chance(value: int, p: float) -> bool:
    """True with probability ``p`` for this decision value (as decision_chance in C)."""
    if p <= 0.0:
        return False
    if p >= 1.0:
        return True
    return float(value >> 11) < p * 9007199254740992.0


def uniform(value: int, lo: int, hi: int) -> int:
    """A value in ``[lo, hi]`` for this decision value (as decision_uniform in C)."""
    if hi <= lo:
        return lo
    return lo + ((value * (hi - lo + 1)) >> 64)
