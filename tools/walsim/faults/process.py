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

from walsim.core.errors import HarnessError
from walsim.core.timeouts import wait_until
from walsim.faults.base import FaultLayer, apply_step
from walsim.pg import procs
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


WHAT = ("postgres", "manager", "node")


def _what() -> s.Field:
    return s.choice(WHAT, default="postgres",
                    help="postgres: the PostgreSQL process(es) named by process; manager: the HA "
                         "manager's programs on the node; node: both (the machine dies)")


KINDS = [
    step_kind("do", "kill", {
        "node": s.node_ref(required=True),
        "signal": s.choice(SIGNALS, default="KILL"),
        "process": _process(),
        "what": _what(),
    }, "send a signal to a node's postmaster or one of its processes (SIGKILL by default), or to "
       "its HA manager or to everything of the node (what)",
        layer=LAYER, run=apply_step),
    step_kind("do", "pause", {"node": s.node_ref(required=True), "process": _process(), "what": _what()},
              "SIGSTOP the whole node (process = postmaster) or its processes of one kind, or its HA "
              "manager (what = manager) or both (what = node)",
              layer=LAYER, run=apply_step),
    step_kind("do", "resume", {"node": s.node_ref(required=True), "process": _process(), "what": _what()},
              "SIGCONT the node's process(es)", layer=LAYER, run=apply_step),
]


class ProcessLayer(FaultLayer):
    """Signals to PostgreSQL processes, found by pid."""

    name = LAYER
    kinds = KINDS

    def apply(self, step: "Step") -> dict[str, Any]:
        v = step.values
        node, process = self.ctx.node(v["node"]), v["process"]
        if v.get("what", "postgres") != "postgres":
            return self._programs(step)
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

    def _programs(self, step: "Step") -> dict[str, Any]:
        """kill/pause/resume of a node's manager (or of everything on the node): the pids
        come from the layer that started them (:meth:`RunContext.node_processes`)."""
        v = step.values
        what = v["what"]
        sig = {"kill": SIGNAL_NUMBERS[v.get("signal") or "KILL"], "pause": signal.SIGSTOP,
               "resume": signal.SIGCONT}[step.kind]
        targets = self.ctx.node_processes(v["node"], what)
        if not targets:
            raise HarnessError(f"{step.path}: {v['node']} has no {what} process to signal "
                               "(no layer of this run started one)")
        hit = [pid for pid, st in targets if procs.kill_if_same(pid, st, sig)]
        if sig == signal.SIGKILL:
            wait_until(lambda: [p for p, st in targets if procs.alive(p, st)],
                       what=f"{v['node']}: {what} processes {hit} to exit after SIGKILL",
                       done=lambda left: not left, timeout=30)
        return {"what": what, "signal": signal.Signals(sig).name, "pids": hit}
