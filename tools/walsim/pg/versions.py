"""The PostgreSQL major versions walsim supports and what differs between them.

Every version-dependent decision of the package asks this module, so that a
difference is written down once, with the source that defines it:

* ``promote_trigger_file`` exists up to 15; PostgreSQL 16 removed it
  (release notes of 16, "Remove the promote_trigger_file server variable").
* The low-level backup functions are ``pg_start_backup``/``pg_stop_backup``
  up to 14 and ``pg_backup_start``/``pg_backup_stop`` from 15 (release notes
  of 15).
* ``BASE_BACKUP`` takes the parenthesized option list and sends the backup
  as CopyData messages of a single COPY stream (``n``/``d``/``p``/``m``) from
  15 on; 13 and 14 take bare keywords and send one COPY stream per
  tablespace (``src/backend/replication/basebackup.c`` of each version,
  ``src/bin/pg_basebackup/pg_basebackup.c``).
* The frontend/backend protocol 3.2 (variable-length cancel key) is served
  from 18 (``src/include/libpq/pqcomm.h``: ``PG_PROTOCOL_LATEST``).
* Client programs of another major: ``pg_basebackup`` of major M backs up
  servers up to M; ``pg_rewind``, ``pg_waldump`` and ``pg_controldata``
  need the server's own major (they read its catalog/control/WAL formats;
  ``pg_controldata`` only needs the same ``PG_CONTROL_VERSION``: 1300 for
  13-16, 1700 for 17, 1800 for 18).
"""

from __future__ import annotations

import os
import re

from walsim.core.errors import PgBinariesNotFound
from walsim.core.pgmajors import DEFAULT, SUPPORTED
#: ``WALSIM_PG=N`` selects the version of the test suites' clusters
VERSION_ENV = "WALSIM_PG"

#: PG_CONTROL_VERSION per major (src/include/catalog/pg_control.h)
CONTROL_VERSION = {13: 1300, 14: 1300, 15: 1300, 16: 1300, 17: 1700, 18: 1800}


def check_major(value: object, *, what: str = "PostgreSQL version") -> int:
    """``value`` (an int or text such as ``"17"``) as a supported major, else a
    :class:`PgBinariesNotFound` naming what was given and what is supported."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text) or int(text) not in SUPPORTED:
        raise PgBinariesNotFound(f"{what} {text!r} is not supported; walsim supports "
                                 f"{', '.join(map(str, SUPPORTED))}")
    return int(text)


def from_environment(env: dict[str, str] | None = None) -> int | None:
    """The major named by ``WALSIM_PG`` (None when unset or empty)."""
    environ = os.environ if env is None else env
    value = environ.get(VERSION_ENV, "").strip()
    if not value:
        return None
    return check_major(value, what=f"{VERSION_ENV}=")


def has_promote_trigger_file(major: int) -> bool:
    """Whether the server has the ``promote_trigger_file`` setting (removed in 16)."""
    return major <= 15


def backup_functions(major: int) -> tuple[str, str]:
    """Names of the low-level backup start/stop functions of ``major``."""
    return ("pg_backup_start", "pg_backup_stop") if major >= 15 else ("pg_start_backup", "pg_stop_backup")


def client_compatible(program: str, client_major: int, server_major: int) -> bool:
    """Whether ``program`` of ``client_major`` works with a server (or data
    directory) of ``server_major`` (see the module docstring)."""
    if program in ("pg_basebackup", "pg_receivewal"):
        return server_major <= client_major
    if program == "pg_controldata":
        return CONTROL_VERSION.get(client_major) == CONTROL_VERSION.get(server_major)
    if program in ("psql", "pg_isready", "pgbench"):
        return True
    return client_major == server_major
