"""Deadlines for every wait, scaled by one multiplier.

All timeouts in walsim are given in seconds *for a normal machine*; the
environment variable ``WALSIM_TIMEOUT_MULT`` (a positive float, default 1)
multiplies every one of them, so a slow CI runner or a Valgrind run only
changes one number.  Waits poll real progress (a query result, a log line, a
pid file) with a short, growing interval; none of them sleeps and hopes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from walsim.core.errors import WaitTimeout

MULT_ENV = "WALSIM_TIMEOUT_MULT"
#: default timeout of a wait, in seconds before scaling
DEFAULT_TIMEOUT = 60.0

T = TypeVar("T")


def multiplier() -> float:
    """The value of ``WALSIM_TIMEOUT_MULT`` (1.0 when unset)."""
    text = os.environ.get(MULT_ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{MULT_ENV}={text!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{MULT_ENV}={text!r} must be positive")
    return value


def scaled(seconds: float | None, default: float = DEFAULT_TIMEOUT) -> float:
    """``seconds`` (or ``default`` when None) times the multiplier."""
    base = default if seconds is None else float(seconds)
    return base * multiplier()


class Deadline:
    """A point in monotonic time, ``timeout`` (scaled) seconds from now."""

    def __init__(self, timeout: float | None = None, default: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = scaled(timeout, default)
        self.start = time.monotonic()
        self.at = self.start + self.timeout

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _short(value: object, limit: int = 400) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wait_until(
    probe: Callable[[], T],
    *,
    what: str,
    timeout: float | None = None,
    done: Callable[[T], bool] = bool,
    logs: Iterable[object] = (),
    tolerate: tuple[type[BaseException], ...] = (),
    interval: float = 0.02,
    max_interval: float = 0.25,
) -> T:
    """Call ``probe`` until ``done(value)`` is true; return that value.

    Exceptions listed in ``tolerate`` (e.g. a connection refused while a
    server starts) count as "not yet" and are reported as the last value if
    the deadline passes.  On timeout raises :class:`WaitTimeout` naming
    ``what``, the last observed value and the ``logs`` to read.
    """
    deadline = Deadline(timeout)
    last: object = "<never observed>"
    while True:
        try:
            value = probe()
        except tolerate as exc:
            last = f"{type(exc).__name__}: {str(exc).strip()}"
        else:
            if done(value):
                return value
            last = value
        if deadline.expired():
            log_list = tuple(str(p) for p in logs)
            where = f"; logs: {', '.join(log_list)}" if log_list else ""
            raise WaitTimeout(
                f"timed out after {deadline.timeout:.1f}s ({MULT_ENV}={multiplier():g}) "
                f"waiting for {what}; last observed: {_short(last)}{where}",
                what=what, last=last, logs=log_list)
        time.sleep(min(interval, deadline.remaining()))
        interval = min(interval * 1.5, max_interval)
