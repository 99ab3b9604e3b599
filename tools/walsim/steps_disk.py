"""Disk fault step kinds, carried out by libwalsim-disk under one node.

A node whose data directory is under the disk layer says so in its table:
``disk = true`` (rules only) or ``disk = "journal"`` (rules plus the undo
journal that a power cut needs).  Then:

- ``fault = "disk"`` installs a rule: a path glob under the data directory,
  operations, a trigger (``nth``, ``after``, ``probability``; default every
  call) and one effect (``errno``, ``short_write``, ``torn_write``,
  ``flip_bits``, ``delay``, ``lie``); its step id is the rule id, so
  ``heal = "<id>"`` removes it;
- ``do = "power_cut"`` freezes and kills every process of the node, rolls its
  files back to their last synced content and (by default) starts it again.

Semantics of rules: ``docs/disk.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from walsim import schema as s
from walsim.vocabulary import register

if TYPE_CHECKING:  # pragma: no cover
    from walsim.engine import RunContext
    from walsim.scenario import Step

OPERATIONS = ("open", "read", "write", "fsync", "fdatasync", "sync_file_range", "rename", "unlink",
              "truncate", "fallocate", "close", "sync", "any")
ERRNOS = ("EIO", "ENOSPC", "EDQUOT", "EROFS")
EFFECTS = ("errno", "short_write", "torn_write", "flip_bits", "delay", "lie")


def _check_disk(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    effects = [k for k in EFFECTS if v.get(k)]
    if len(effects) != 1:
        return [("errno", "a disk fault needs exactly one effect: errno, short_write, torn_write, "
                 f"flip_bits, delay or lie (found: {', '.join(effects) or 'none'})")]
    triggers = [k for k in ("nth", "after", "probability") if v.get(k) is not None]
    if len(triggers) > 1:
        return [(triggers[1], f"give at most one trigger (found {', '.join(triggers)})")]
    if v.get("probability") is not None and v["probability"] > 1:
        return [("probability", "a probability is at most 1")]
    return []


def rule_words(v: Mapping[str, Any]) -> dict[str, Any]:
    """The validated step values as :meth:`walsim.disk.DiskFaults.add` arguments."""
    if v.get("errno"):
        do = f"errno:{v['errno']}"
    elif v.get("short_write"):
        do = "short"
    elif v.get("torn_write"):
        do = "torn"
    elif v.get("flip_bits"):
        do = "flip"
    elif v.get("delay"):
        do = f"delay:{int(round(float(v['delay']) * 1e6))}"
    else:
        do = "lie"
    if v.get("nth") is not None:
        when = f"nth:{v['nth']}"
    elif v.get("after") is not None:
        when = f"after:{v['after']}"
    elif v.get("probability") is not None:
        when = f"prob:{v['probability']:g}"
    else:
        when = "always"
    return {"path": v["path"], "ops": list(v["ops"]), "do": do, "when": when, "limit": int(v.get("limit") or 0)}


def _run_disk(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.add_disk_fault(step)


register("fault", "disk", {
    "node": s.node_ref(required=True, help="a node declared with disk = true or \"journal\""),
    "path": s.string(required=True, help="glob relative to the data directory, e.g. \"pg_wal/0*\""),
    "ops": s.list_of(s.choice(OPERATIONS), required=True, min_len=1),
    "nth": s.integer(lo=1, help="trigger: the Nth matching call across the node's processes"),
    "after": s.integer(lo=0, help="trigger: every call after the Nth"),
    "probability": s.number(lo=0.0, help="trigger: seeded chance per call"),
    "limit": s.integer(default=0, lo=0, help="fire at most this many times (0: no limit)"),
    "errno": s.choice(ERRNOS, help="effect: fail the call with this errno"),
    "short_write": s.boolean(default=False, help="effect: write half, return half"),
    "torn_write": s.boolean(default=False, help="effect: write half, return the full length"),
    "flip_bits": s.boolean(default=False, help="effect: flip a seeded bit of the data read or written"),
    "delay": s.duration(help="effect: sleep this long, then do the call"),
    "lie": s.boolean(default=False, help="effect: succeed without doing anything (an fsync that syncs nothing)"),
}, "a rule of the disk fault layer under one node", check=_check_disk, requires="disk", run=_run_disk)


def _run_power_cut(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.power_cut(step)


register("do", "power_cut", {
    "node": s.node_ref(required=True, help="a node declared with disk = \"journal\""),
    "restart": s.boolean(default=True, help="start the node again after the roll-back"),
}, "freeze and SIGKILL every process of the node, roll its files back to their last synced "
   "content, restart it", requires="disk", run=_run_power_cut)
