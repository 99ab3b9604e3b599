"""Exploration: seeded fault schedules drawn from a scenario's fault space, run many at once,
failures shrunk to a minimal scenario (``walsim-cli explore``; docs/explore.md).

Modules: :mod:`~walsim.explore.schedule` (drawing and writing schedules),
:mod:`~walsim.explore.tomlw` (the TOML writer), :mod:`~walsim.explore.shrink`
(shrinking, independent of how a candidate is run), :mod:`~walsim.explore.pool`
(runs in parallel worker processes, each with its own cluster, ports and netd),
:mod:`~walsim.explore.worker` (one run), :mod:`~walsim.explore.explorer`
(an exploration and its output directory), :mod:`~walsim.explore.index`
(the HTML index), :mod:`~walsim.explore.merge` (combining shards).
"""
