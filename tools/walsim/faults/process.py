"""The process fault layer: signals to a node's postmaster or to its processes of one kind.

``do = "kill"`` sends a signal (SIGKILL by default) to the postmaster or to
every process of one kind (walsender, walreceiver, startup, checkpointer,
backend); ``do = "pause"`` freezes the whole node (postmaster first, then every
child) or one kind of process with SIGSTOP, and ``do = "resume"`` thaws it.
Processes are found by pid from the postmaster's children, never by name.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

from walsim.faults.base import FaultLayer, apply_step
from walsim.scenario import schema as s
from walsim.scenario.registry import step_kind

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import Step

LAYER = "process"
PROCESSES = ("postmaster", "walsender", "walreceiver", "startup", "checkpointer", "backend")
SIGNAL_NUMBERS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "QUIT": signal.SIGQUIT,
                  "INT": signal.SIGINT, "HUP": signal.SIGHUP, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT}
SIGNALS = tuple(SIGNAL_NUMBERS)


def _process(help: str = "") -> s.Field:
    return s.choice(PROCESSES, default="postmaster", help=help)


KINDS = [
    step_kind("do", "kill", {
        "node": s.node_ref(required=True),
        "signal": s.choice(SIGNALS, default="KILL"),
        "process": _process(),
    }, "send a signal to a node's postmaster or one of its processes (SIGKILL by default)",
        layer=LAYER, run=apply_step),
    step_kind("do", "pause", {"node": s.node_ref(required=True), "process": _process()},
              "SIGSTOP the whole node (process = postmaster) or its processes of one kind",
              layer=LAYER, run=apply_step),
    step_kind("do", "resume", {"node": s.node_ref(required=True), "process": _process()},
              "SIGCONT the node's process(es)", layer=LAYER, run=apply_step),
]


class ProcessLayer(FaultLayer):
    """Signals to PostgreSQL processes, found by pid."""

    name = LAYER
    kinds = KINDS

    def apply(self, step: "Step") -> dict[str, Any]:
        v = step.values
        node, process = self.ctx.node(v["node"]), v["process"]
        if step.kind == "kill":
            node.kill(SIGNAL_NUMBERS[v["signal"]], process=process)
            return {"signal": v["signal"], "process": process}
        whole = process == "postmaster"
        if step.kind == "pause":
            if whole:
                node.pause()  # the whole node: postmaster and every child
            else:
                node.kill(signal.SIGSTOP, process=process, wait=False)
        elif whole:
            node.resume()
        else:
            node.kill(signal.SIGCONT, process=process, wait=False)
        # whether the node can acknowledge commits while paused (the judge reads it)
        return {"process": process, "accepts_writes": process not in ("postmaster", "backend")}
