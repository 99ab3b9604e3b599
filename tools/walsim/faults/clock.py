"""The clock fault layer: a node's wall clock skewed with libfaketime.

A node declared with ``clock = true`` runs with libfaketime preloaded and
reads its offset from a file walsim writes (re-read at most every second), so
that ``fault = "clock"`` can move the node's wall clock (``offset = "-1h"``,
``"+30s"``) while it runs and ``heal`` puts it back.  Only the wall clock
moves: the monotonic clock PostgreSQL uses for its own intervals stays real.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from walsim.core.errors import HarnessError
from walsim.faults.base import FaultLayer, apply_step, node_ref_check
from walsim.scenario import schema as s
from walsim.scenario.registry import step_kind

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import NodeSpec, Step

LAYER = "clock"
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1")


def faketime_library() -> str | None:
    """libfaketime's path on this machine, or None."""
    return next((p for p in FAKETIME_LIBS if Path(p).exists()), None)


def _offset(v: Any, _n: s.Names) -> float:
    """A signed duration: ``"-1h"``, ``"+30s"``, ``-5`` (seconds)."""
    if isinstance(v, str) and v.strip()[:1] in "+-":
        text = v.strip()
        sign = -1.0 if text[0] == "-" else 1.0
        return sign * s.parse_duration(text[1:])
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise s.Invalid(f"expected a signed duration such as \"-1h\" or \"+30s\", got {v!r}")


def _skewable(node: str, clock: Any) -> str | None:
    return None if clock else f"{node}'s clock cannot be skewed: set clock = true in [nodes.{node}]"


KINDS = [
    step_kind("fault", "clock", {
        "node": s.node_ref(required=True, help="a node declared with clock = true"),
        "offset": s.Field(_offset, True, None, "how far the node's wall clock moves, e.g. \"-1h\"",
                          "signed duration"),
    }, "skew a node's wall clock (libfaketime); heal puts it back",
        check_nodes=node_ref_check("clock", _skewable), layer=LAYER, run=apply_step, target="node"),
]


class ClockLayer(FaultLayer):
    """libfaketime preloaded into the nodes declared with ``clock = true``."""

    name = LAYER
    facility = "clock"
    kinds = KINDS
    node_fields = {
        "clock": s.boolean(default=False, help="preload libfaketime so that clock faults can skew "
                           "this node's wall clock"),
    }

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.offset_files: dict[str, Path] = {}
        self._skewed: dict[str, str] = {}

    @classmethod
    def unavailable(cls) -> str | None:
        if faketime_library() is None:
            return f"libfaketime (Debian package libfaketime) not found at {', '.join(FAKETIME_LIBS)}"
        return None

    def prepare_node(self, spec: "NodeSpec") -> bool:
        if not spec.options.get("clock"):
            return False
        lib = faketime_library()
        if lib is None:
            raise HarnessError(f"nodes.{spec.name}.clock needs {self.unavailable()}")
        node = self.ctx.node(spec.name)
        offset_file = self.ctx.cluster.run_dir / f"faketime-{spec.name}"
        self.ctx.cluster.runas.write_file(offset_file, "+0\n", 0o644)
        self.offset_files[spec.name] = offset_file
        env = node.environment
        env["LD_PRELOAD"] = f"{env['LD_PRELOAD']}:{lib}" if env.get("LD_PRELOAD") else lib
        env["FAKETIME_TIMESTAMP_FILE"] = str(offset_file)
        env["FAKETIME_CACHE_DURATION"] = "1"      # re-read the offset at most every second
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # only the wall clock moves
        env["DONT_FAKE_MONOTONIC"] = "1"           # (the older name of the same switch)
        self.ctx.events.event("clock_layer", node=spec.name, library=lib)
        return True

    def _write_offset(self, node: str, offset: float) -> None:
        if node not in self.offset_files:
            raise HarnessError(f"{node} does not run with libfaketime")
        text = f"{'+' if offset >= 0 else '-'}{abs(int(round(offset)))}\n"
        self.ctx.cluster.runas.write_file(self.offset_files[node], text, 0o644)

    def apply(self, step: "Step") -> dict[str, Any]:
        node, offset = step.values["node"], float(step.values["offset"])
        self._write_offset(node, offset)
        self._skewed[step.id] = node
        return {"offset_s": offset}

    def heal(self, fault_id: str) -> None:
        node = self._skewed.pop(fault_id, None)
        if node is not None:
            self._write_offset(node, 0.0)
