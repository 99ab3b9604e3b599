"""Disk fault step kinds, carried out by libwalsim-disk under one node.

``fault = "disk"`` installs a rule (path glob under the data directory,
operations, trigger, effect); ``do = "power_cut"`` kills the node and rolls
every file back to its last synced content.  The vocabulary is validated now;
running it needs the disk layer (``walsim.disk``) and the node started with
the library preloaded (``[nodes.X] disk = true`` once the layer lands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from walsim import schema as s
from walsim.vocabulary import register

if TYPE_CHECKING:  # pragma: no cover
    from walsim.engine import RunContext
    from walsim.scenario import Step

OPERATIONS = ("open", "read", "write", "fsync", "fdatasync", "rename", "unlink", "ftruncate", "fallocate")
ERRNOS = ("EIO", "ENOSPC", "EDQUOT", "EROFS")


def _check_disk(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    effects = [k for k in ("errno", "short_write", "torn_write", "flip_bits", "delay", "lie") if v.get(k)]
    if len(effects) != 1:
        return [("errno", "a disk fault needs exactly one effect: errno, short_write, torn_write, "
                 f"flip_bits, delay or lie (found: {', '.join(effects) or 'none'})")]
    triggers = [k for k in ("nth", "after", "probability") if v.get(k) is not None]
    if len(triggers) > 1:
        return [(triggers[1], f"give at most one trigger (found {', '.join(triggers)})")]
    return []


def _run_disk(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.add_disk_fault(step)


register("fault", "disk", {
    "node": s.node_ref(required=True),
    "path": s.string(required=True, help="glob relative to the data directory, e.g. \"pg_wal/0*\""),
    "ops": s.list_of(s.choice(OPERATIONS), required=True, min_len=1),
    "nth": s.integer(lo=1, help="trigger: the Nth matching call across the node's processes"),
    "after": s.integer(lo=0, help="trigger: every call after the Nth"),
    "probability": s.number(lo=0.0, help="trigger: seeded chance per call"),
    "errno": s.choice(ERRNOS),
    "short_write": s.boolean(default=False),
    "torn_write": s.boolean(default=False),
    "flip_bits": s.boolean(default=False),
    "delay": s.duration(),
    "lie": s.boolean(default=False, help="fsync returns success and does nothing"),
}, "a rule of the disk fault layer under one node", check=_check_disk, requires="disk", run=_run_disk)


def _run_power_cut(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.power_cut(step)


register("do", "power_cut", {
    "node": s.node_ref(required=True),
    "restart": s.boolean(default=True),
}, "SIGKILL the node, roll its files back to their last synced content, restart it",
    requires="disk", run=_run_power_cut)
