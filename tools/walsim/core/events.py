"""JSON Lines writers of a run: the event log and its siblings.

Every record carries ``t``, seconds since the run started on the monotonic
clock (the time axis of every plot and verdict), and ``wall``, the Unix time
(to line records up with PostgreSQL's own log lines).  Writers are safe to
share between threads and flush every line, so a run that dies still leaves
what it recorded.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO


class Clock:
    """The run's clock: monotonic seconds since ``start`` plus wall time."""

    def __init__(self) -> None:
        self.start_mono = time.monotonic()
        self.start_wall = time.time()

    def now(self) -> float:
        return round(time.monotonic() - self.start_mono, 4)

    def wall_to_t(self, wall: float) -> float:
        return wall - self.start_wall


class JsonlWriter:
    """Appends one JSON object per line; thread-safe; flushed per line."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._fh: TextIO | None = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        rec = {"t": self.clock.now(), "wall": round(time.time(), 4)}
        rec.update(record)
        line = json.dumps(rec, sort_keys=False, default=str)
        with self._lock:
            if self._fh is not None:
                self._fh.write(line + "\n")
                self._fh.flush()
        return rec

    def stamp(self) -> tuple[float, float]:
        """``t`` and ``wall`` of a record written now."""
        return self.clock.now(), round(time.time(), 4)

    def write_lines(self, lines: list[str]) -> None:
        """Append lines made by the caller (each one JSON object beginning with
        ``t`` and ``wall`` from :meth:`stamp`), with one write and one flush:
        the observer's samples, hundreds a second, go out once per round."""
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        with self._lock:
            if self._fh is not None:
                self._fh.write(text)
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class EventLog(JsonlWriter):
    """``events.jsonl``: each step's start and end, each fault on and off,
    workload changes, promotions, the settle phase."""

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return self.write({"type": type_, **fields})


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSON Lines file; a torn last line (a crash) is skipped."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
