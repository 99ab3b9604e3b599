"""The PostgreSQL major versions walsim supports (one list, for every layer).

What differs between them, and how a major's binaries are found, is in
:mod:`walsim.pg.versions` and :mod:`walsim.pg.pgbin`; the scenario layer
validates ``[cluster] version`` against :data:`SUPPORTED`.
"""

from __future__ import annotations

#: every major version walsim builds clusters of and speaks the WAL of
SUPPORTED: tuple[int, ...] = (13, 14, 15, 16, 17, 18)
#: the version of Debian 12's packages (``make deps``), the default
DEFAULT = 15
