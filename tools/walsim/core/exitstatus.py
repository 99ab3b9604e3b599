"""The exit statuses of every walsim command, in one table.

``docs/pipelines.md`` prints the same table (``tests/pyunit/test_exitstatus.py``
keeps the two in step), ``walsim-cli --help`` ends with it, and ``run.json``
records the status of each run with the same numbers.
"""

from __future__ import annotations

import textwrap
from typing import Iterable

OK = 0
FAILED = 1
ERROR = 2
INTERRUPTED = 130

#: status -> meaning
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success: every verdict PASS or INFO, every check passed"),
    (FAILED, "a verdict or a check failed (FAIL), or a step's expectation was not met"),
    (ERROR, "invalid input (a scenario, an option, a file) or a harness error: "
            "a verdict could not be judged (ERROR)"),
    (INTERRUPTED, "interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP: the servers were stopped "
                  "and the partial run was judged and reported"),
)


def combine(statuses: Iterable[int]) -> int:
    """The status of several runs: interrupted wins, then a failure, then an error."""
    seen = set(statuses)
    for status in (INTERRUPTED, FAILED, ERROR):
        if status in seen:
            return status
    return OK


def epilog(width: int = 79) -> str:
    """The table as text, for ``--help``."""
    lines = ["exit status:"]
    for code, text in TABLE:
        lines += textwrap.wrap(text, width, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
    return "\n".join(lines)
