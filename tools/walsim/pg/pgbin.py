"""Find the PostgreSQL installation to use.

Search order: the ``PG_BINDIR`` environment variable (or an explicit
``bindir``), else ``pg_config --bindir`` (``pg_config`` on ``PATH``), else the
newest ``/usr/lib/postgresql/*/bin``.  If none holds ``postgres`` and
``initdb``, :class:`PgBinariesNotFound` lists everything that was tried.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from walsim.core.errors import PgBinariesNotFound

PG_BINDIR_ENV = "PG_BINDIR"
DEBIAN_GLOB_ROOT = Path("/usr/lib/postgresql")
REQUIRED = ("postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata")


def _missing(bindir: Path) -> list[str]:
    return [p for p in REQUIRED if not os.access(bindir / p, os.X_OK)]


def find_bindir(bindir: str | os.PathLike[str] | None = None, *, debian_root: Path = DEBIAN_GLOB_ROOT,
                env: dict[str, str] | None = None) -> Path:
    """The directory of the PostgreSQL programs (see the module docstring)."""
    environ = os.environ if env is None else env
    tried: list[str] = []
    if bindir is None and environ.get(PG_BINDIR_ENV):
        bindir = environ[PG_BINDIR_ENV]
        source = f"{PG_BINDIR_ENV}={bindir}"
    else:
        source = f"bindir={bindir}"
    if bindir is not None:
        path = Path(bindir)
        missing = _missing(path)
        if not missing:
            return path
        # An explicit choice that is wrong is an error, never silently replaced.
        raise PgBinariesNotFound(f"{source}: {path} lacks {', '.join(missing)} "
                                 f"(needs {', '.join(REQUIRED)})")
    tried.append(f"{PG_BINDIR_ENV}: not set")
    pg_config = shutil.which("pg_config", path=environ.get("PATH"))
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout.strip()
        except (subprocess.SubprocessError, OSError) as exc:
            tried.append(f"{pg_config} --bindir: failed ({exc})")
        else:
            path = Path(out)
            missing = _missing(path)
            if not missing:
                return path
            tried.append(f"{pg_config} --bindir: {path} lacks {', '.join(missing)}")
    else:
        tried.append("pg_config: not on PATH")
    candidates = []
    for d in debian_root.glob("*/bin") if debian_root.is_dir() else []:
        m = re.fullmatch(r"(\d+)(?:\.(\d+))?", d.parent.name)
        if m:
            candidates.append(((int(m.group(1)), int(m.group(2) or 0)), d))
    for _, d in sorted(candidates, reverse=True):
        missing = _missing(d)
        if not missing:
            return d
        tried.append(f"{d}: lacks {', '.join(missing)}")
    if not candidates:
        tried.append(f"{debian_root}/*/bin: none")
    raise PgBinariesNotFound("no PostgreSQL installation found; searched: " + "; ".join(tried)
                             + f". Set {PG_BINDIR_ENV} to the directory holding postgres and initdb.")


class PgBin:
    """The PostgreSQL programs of one installation."""

    def __init__(self, bindir: str | os.PathLike[str] | None = None) -> None:
        self.bindir = find_bindir(bindir)

    def __repr__(self) -> str:
        return f"PgBin({str(self.bindir)!r})"

    def path(self, program: str) -> Path:
        p = self.bindir / program
        if not os.access(p, os.X_OK):
            raise PgBinariesNotFound(f"{program} not found in {self.bindir}")
        return p

    @functools.cached_property
    def version_string(self) -> str:
        """``postgres --version`` output, e.g. ``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``."""
        return subprocess.run([self.path("postgres"), "--version"], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    @property
    def major(self) -> int:
        m = re.search(r"\(PostgreSQL\) (\d+)", self.version_string)
        if not m:
            raise PgBinariesNotFound(f"cannot parse the version of {self.bindir}/postgres: "
                                     f"{self.version_string!r}")
        return int(m.group(1))
