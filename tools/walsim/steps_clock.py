"""Clock fault step kinds: a node's wall clock skewed with libfaketime.

A node declared with ``clock = true`` runs with libfaketime preloaded and
reads its offset from a file walsim writes (re-read at most every second), so
that ``fault = "clock"`` can move the node's wall clock (``offset = "-1h"``,
``"+30s"``) while it runs and ``heal`` puts it back.  Only the wall clock
moves: the monotonic clock PostgreSQL uses for its own intervals stays real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from walsim import schema as s
from walsim.vocabulary import register

if TYPE_CHECKING:  # pragma: no cover
    from walsim.engine import RunContext
    from walsim.scenario import Step


def _offset(v: Any, _n: s.Names) -> float:
    """A signed duration: ``"-1h"``, ``"+30s"``, ``-5`` (seconds)."""
    if isinstance(v, str) and v.strip()[:1] in "+-":
        text = v.strip()
        sign = -1.0 if text[0] == "-" else 1.0
        return sign * s.parse_duration(text[1:])
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise s.Invalid(f"expected a signed duration such as \"-1h\" or \"+30s\", got {v!r}")


def _run_clock(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.skew_clock(step)


register("fault", "clock", {
    "node": s.node_ref(required=True, help="a node declared with clock = true"),
    "offset": s.Field(_offset, True, None, "how far the node's wall clock moves, e.g. \"-1h\"",
                      "signed duration"),
}, "skew a node's wall clock (libfaketime); heal puts it back", requires="clock", run=_run_clock)
