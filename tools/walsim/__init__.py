"""walsim: a test-and-simulation harness for PostgreSQL physical streaming replication.

The names a user needs are importable from here (loaded on first use, so that
``import walsim.core.lsn`` stays cheap)::

    from walsim import Cluster, load_scenario, run_scenario, WalsimError

The package is layered; each layer imports only the ones below it
(``docs/architecture.md``)::

    core -> pg -> sim -> scenario -> faults -> run -> judge -> api -> pytest_plugin -> conform -> commands -> cli
"""

from __future__ import annotations

from typing import Any

from walsim.core.version import __version__

#: public name -> the module that defines it
_EXPORTS = {
    "Cluster": "walsim.pg.cluster",
    "Node": "walsim.pg.node",
    "WalsimError": "walsim.core.errors",
    "Lsn": "walsim.core.lsn",
    "load_scenario": "walsim.api",
    "parse_scenario": "walsim.api",
    "run_scenario": "walsim.api",
    "open_run": "walsim.api",
    "vocabulary": "walsim.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'walsim' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)
