"""The disk fault layer: libwalsim-disk under chosen nodes, and its step kinds.

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

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from walsim.core.errors import HarnessError
from walsim.core.paths import find_program, library, library_candidates, not_found, program_candidates
from walsim.faults.base import FaultLayer, apply_step, node_ref_check
from walsim.scenario import schema as s
from walsim.scenario.registry import step_kind
from walsim.sim.disk import LIBRARY_NAME, OPERATIONS, DiskFaults

if TYPE_CHECKING:  # pragma: no cover
    from walsim.scenario.model import NodeSpec, Step

LAYER = "disk"
ERRNOS = ("EIO", "ENOSPC", "EDQUOT", "EROFS")
EFFECTS = ("errno", "short_write", "torn_write", "flip_bits", "delay", "lie")


def _disk_mode(v: Any, _n: s.Names) -> str | None:
    if v is True:
        return "rules"
    if v is False:
        return None
    if v == "journal":
        return "journal"
    raise s.Invalid(f"expected true, false or \"journal\", got {v!r}")


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


def _under_layer(node: str, mode: Any) -> str | None:
    if mode is None:
        return (f"{node} is not under the disk fault layer: set disk = true (or \"journal\") "
                f"in [nodes.{node}]")
    return None


def _journaled(node: str, mode: Any) -> str | None:
    if mode != "journal":
        return f"a power cut needs the undo journal: set disk = \"journal\" in [nodes.{node}]"
    return None


def rule_words(v: Mapping[str, Any]) -> dict[str, Any]:
    """The validated step values as :meth:`walsim.sim.disk.DiskFaults.add` arguments."""
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


KINDS = [
    step_kind("fault", "disk", {
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
    }, "a rule of the disk fault layer under one node", check=_check_disk,
        check_nodes=node_ref_check("disk", _under_layer), layer=LAYER, run=apply_step, target="node"),
    step_kind("do", "power_cut", {
        "node": s.node_ref(required=True, help="a node declared with disk = \"journal\""),
        "restart": s.boolean(default=True, help="start the node again after the roll-back"),
    }, "freeze and SIGKILL every process of the node, roll its files back to their last synced "
       "content, restart it", check_nodes=node_ref_check("disk", _journaled), layer=LAYER, run=apply_step),
]


class DiskLayer(FaultLayer):
    """libwalsim-disk preloaded into the nodes declared with ``disk``."""

    name = LAYER
    facility = "disk"
    kinds = KINDS
    node_fields = {
        "disk": s.Field(_disk_mode, False, None,
                        "load the disk fault layer: true (rules) or \"journal\" (rules and power cuts)",
                        "true or \"journal\""),
    }

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.disks: dict[str, DiskFaults] = {}
        self._rule_node: dict[str, str] = {}

    @classmethod
    def unavailable(cls) -> str | None:
        if find_program("walsim-diskctl") is None:
            return not_found("walsim-diskctl", program_candidates("walsim-diskctl"))
        if not library(LIBRARY_NAME).is_file():
            return not_found(LIBRARY_NAME, library_candidates(LIBRARY_NAME))
        return None

    def prepare_node(self, spec: "NodeSpec") -> bool:
        mode = spec.options.get("disk")
        if not mode:
            return False
        node = self.ctx.node(spec.name)
        self.disks[spec.name] = DiskFaults.load(node, journal=mode == "journal", seed=self.ctx.seed)
        self.ctx.events.event("disk_layer", node=spec.name, journal=mode == "journal")
        return True

    def _disk(self, node: str) -> DiskFaults:
        if node not in self.disks:
            raise HarnessError(f"{node} is not under the disk fault layer")
        return self.disks[node]

    def apply(self, step: "Step") -> dict[str, Any]:
        node = step.values["node"]
        if step.kind == "power_cut":
            return self._power_cut(node, step.values["restart"])
        words = rule_words(step.values)
        self._disk(node).add(step.id, **words)
        self._rule_node[step.id] = node
        return words

    def _power_cut(self, node: str, restart: bool) -> dict[str, Any]:
        report = self._disk(node).power_cut()
        detail = {"undone_writes": report.writes, "undone_bytes": report.bytes, "files": report.files,
                  "directory_entries": report.entries, "unrecoverable": report.unrecoverable}
        self.ctx.events.event("power_cut", node=node, **detail)
        if restart:
            self.ctx.node(node).start()
        return detail

    def heal(self, fault_id: str) -> None:
        node = self._rule_node.pop(fault_id, None)
        if node is not None:
            self._disk(node).delete(fault_id)

    def collect(self, faults_dir: Path) -> None:
        for name, disk in self.disks.items():
            try:
                if disk.trace_path.exists():
                    shutil.copy(disk.trace_path, faults_dir / f"disk-{name}.jsonl")
            except OSError as exc:
                self.ctx.events.event("disk_trace_error", node=name, error=str(exc))
