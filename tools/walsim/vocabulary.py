"""The registry of step kinds a scenario may use.

A step is a TOML table with exactly one *category key* whose value names the
kind: ``do = "promote"``, ``fault = "delay"``, ``heal = "f1"``,
``wait = "catchup"``, ``load = "start"``.  Each kind registers its fields
(:mod:`walsim.schema`), an optional cross-field check, the facility it needs
at run time (``cluster``, ``netd``, ``disk``, ``clock``) and the function that executes
it.  Fault layers plug in by registering more kinds: the loader and the engine
need no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from walsim import schema as s

if TYPE_CHECKING:  # pragma: no cover
    from walsim.engine import RunContext
    from walsim.scenario import Step

CATEGORIES = ("do", "fault", "heal", "wait", "load")

#: keys every step may carry besides its category key and its kind's fields
COMMON_FIELDS: dict[str, s.Field] = {
    "id": s.string(pattern=r"[A-Za-z][A-Za-z0-9_.-]*",
                   help="a name for the step, referenced by verdicts (and, for faults, by heal)"),
    "note": s.string(help="free text shown in the report's timeline"),
}

#: the default deadline of a wait, in seconds (scaled by WALSIM_TIMEOUT_MULT)
DEFAULT_WAIT_TIMEOUT = 60.0

Check = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
Runner = Callable[["RunContext", "Step"], "dict[str, Any] | None"]


@dataclass
class StepKind:
    category: str
    name: str
    fields: dict[str, s.Field]
    doc: str
    check: Check | None = None
    requires: str = "cluster"
    run: Runner | None = None
    # for faults: the keys that describe the fault window in the report
    extra: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[tuple[str, str], StepKind] = {}


def register(category: str, name: str, fields: Mapping[str, s.Field], doc: str,
             check: Check | None = None, requires: str = "cluster",
             run: Runner | None = None) -> StepKind:
    if category not in CATEGORIES:
        raise ValueError(f"unknown step category {category!r}")
    kind = StepKind(category, name, dict(fields), doc, check, requires, run)
    _REGISTRY[(category, name)] = kind
    return kind


def implements(category: str, name: str) -> Callable[[Runner], Runner]:
    """Decorator attaching the run function of an already registered kind."""
    def deco(fn: Runner) -> Runner:
        _REGISTRY[(category, name)].run = fn
        return fn
    return deco


def lookup(category: str, name: str) -> StepKind | None:
    load_all()
    return _REGISTRY.get((category, name))


def kinds(category: str | None = None) -> list[StepKind]:
    load_all()
    return [k for (c, _), k in sorted(_REGISTRY.items()) if category in (None, c)]


_loaded = False


def load_all() -> None:
    """Import the modules that register kinds (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import walsim.steps_builtin  # noqa: F401  (do/wait/workload/heal kinds)
    import walsim.steps_net  # noqa: F401  (network faults through walsim-netd)
    import walsim.steps_disk  # noqa: F401  (disk faults through libwalsim-disk)
    import walsim.steps_clock  # noqa: F401  (clock skew through libfaketime)
