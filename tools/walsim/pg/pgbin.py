"""Find the PostgreSQL installation to use, for any supported major version.

Without a version: the ``PG_BINDIR`` environment variable (or an explicit
``bindir``), else the major named by ``WALSIM_PG``, else ``pg_config
--bindir`` (``pg_config`` on ``PATH``), else the newest
``/usr/lib/postgresql/*/bin``.

With a version N (``PgBin(version=17)``, ``WALSIM_PG=17``): ``PG_BINDIR_17``,
else the server ``make deps-versions`` installed in walsim's server cache
(:mod:`walsim.pg.pgcache`), else ``/usr/lib/postgresql/17/bin`` (Debian and
PGDG packages), else ``pg_config --bindir`` when it is of that major.  Every
directory found must hold ``postgres``, ``initdb`` and ``pg_ctl`` of major N:
a directory of another major is an error, never used silently.

The server packages of the npm registry carry no client programs
(``pg_basebackup``, ``pg_rewind``, ``psql`` ...).  :meth:`PgBin.path` looks
for a client program in the server's own directory first, then in the other
installations it knows, and takes one only where that program of that major
works with this server (:func:`walsim.pg.versions.client_compatible`):
Debian's ``pg_basebackup`` 15 backs up 13-15, its ``psql`` talks to all.
:meth:`PgBin.has` asks without failing.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from walsim.core.errors import PgBinariesNotFound
from walsim.pg import pgcache, versions

PG_BINDIR_ENV = "PG_BINDIR"
DEBIAN_GLOB_ROOT = Path("/usr/lib/postgresql")
#: the server programs an installation must have
REQUIRED = ("postgres", "initdb", "pg_ctl")


def _missing(bindir: Path) -> list[str]:
    return [p for p in REQUIRED if not os.access(bindir / p, os.X_OK)]


def bindir_env_name(major: int) -> str:
    return f"{PG_BINDIR_ENV}_{major}"


def find_bindir(bindir: str | os.PathLike[str] | None = None, *, debian_root: Path = DEBIAN_GLOB_ROOT,
                env: dict[str, str] | None = None) -> Path:
    """The directory of the PostgreSQL programs, of whatever major (see the module docstring)."""
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
        path = _pg_config_bindir(pg_config, tried)
        if path is not None:
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


def _pg_config_bindir(pg_config: str, tried: list[str]) -> Path | None:
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        tried.append(f"{pg_config} --bindir: failed ({exc})")
        return None
    return Path(out)


def _version_of(bindir: Path, extra_env: dict[str, str]) -> str:
    try:
        proc = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                              timeout=30, env={**os.environ, **extra_env})
    except (OSError, subprocess.SubprocessError) as exc:
        raise PgBinariesNotFound(f"{bindir}/postgres --version failed: {exc}") from None
    if proc.returncode != 0:
        raise PgBinariesNotFound(f"{bindir}/postgres --version failed (exit {proc.returncode}): "
                                 f"{proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def _major_of(version_string: str, where: Path) -> int:
    m = re.search(r"\(PostgreSQL\) (\d+)", version_string)
    if not m:
        raise PgBinariesNotFound(f"cannot parse the version of {where}/postgres: {version_string!r}")
    return int(m.group(1))


def _cache_env(bindir: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH for an installation made by make deps-versions (its bundled libraries)."""
    install = bindir.parent
    if (install / pgcache.MARKER).exists():
        return pgcache.library_env(install)
    return {}


def find_version(major: int, *, env: dict[str, str] | None = None,
                 debian_root: Path = DEBIAN_GLOB_ROOT) -> Path:
    """The bindir of PostgreSQL ``major`` (see the module docstring)."""
    environ = os.environ if env is None else env
    major = versions.check_major(major)
    tried: list[str] = []

    def accept(path: Path, source: str, explicit: bool) -> Path | None:
        missing = _missing(path)
        if missing:
            if explicit:
                raise PgBinariesNotFound(f"{source}: {path} lacks {', '.join(missing)} "
                                         f"(needs {', '.join(REQUIRED)})")
            tried.append(f"{source}: lacks {', '.join(missing)}")
            return None
        found = _major_of(_version_of(path, _cache_env(path)), path)
        if found != major:
            raise PgBinariesNotFound(f"{source}: {path}/postgres is PostgreSQL {found}, not {major}")
        return path

    name = bindir_env_name(major)
    if environ.get(name):
        return accept(Path(environ[name]), f"{name}={environ[name]}", True)  # type: ignore[return-value]
    tried.append(f"{name}: not set")
    install, item = pgcache.installed_for_major(major)
    if install is not None:
        got = accept(install / "bin", f"server cache {install}", False)
        if got is not None:
            return got
    elif item is not None:
        tried.append(f"server cache {pgcache.cache_root()}: no {item.version} (run `make deps-versions`)")
    else:
        tried.append(f"server cache: {pgcache.MANIFEST.name} lists no {major}")
    debian = debian_root / str(major) / "bin"
    if debian.is_dir():
        got = accept(debian, str(debian), False)
        if got is not None:
            return got
    else:
        tried.append(f"{debian}: none")
    pg_config = shutil.which("pg_config", path=environ.get("PATH"))
    if pg_config:
        path = _pg_config_bindir(pg_config, tried)
        if path is not None and not _missing(path):
            found = _major_of(_version_of(path, {}), path)
            if found == major:
                return path
            tried.append(f"{pg_config} --bindir: {path} is PostgreSQL {found}")
    hint = ("`make deps` (Debian's postgresql-15)" if major == versions.DEFAULT else
            f"`make deps-versions` (PostgreSQL {major} from the npm registry) or install "
            f"postgresql-{major} from the PGDG repository")
    raise PgBinariesNotFound(f"PostgreSQL {major} not found; searched: " + "; ".join(tried)
                             + f". Install it with {hint}, or set {name} to its bin directory.")


class PgBin:
    """The PostgreSQL programs of one installation (and the client programs that go with it)."""

    def __init__(self, bindir: str | os.PathLike[str] | None = None, *, version: int | str | None = None) -> None:
        wanted = versions.check_major(version) if version is not None else None
        if bindir is not None:
            self.bindir = find_bindir(bindir)
        elif wanted is not None:
            self.bindir = find_version(wanted)
        else:
            # WALSIM_PG chooses the major; PG_BINDIR, when set too, must be of that major
            wanted = versions.from_environment()
            if wanted is not None and not os.environ.get(PG_BINDIR_ENV):
                self.bindir = find_version(wanted)
            else:
                self.bindir = find_bindir(None)
        #: environment the programs of :attr:`bindir` need (the bundled libraries of a cached server)
        self.env: dict[str, str] = _cache_env(self.bindir)
        if wanted is not None and self.major != wanted:
            raise PgBinariesNotFound(f"{self.bindir}/postgres is PostgreSQL {self.major}, not {wanted}"
                                     + (f" (from {PG_BINDIR_ENV})" if bindir is None else ""))

    def __repr__(self) -> str:
        return f"PgBin({str(self.bindir)!r})"

    @functools.cached_property
    def version_string(self) -> str:
        """``postgres --version`` output, e.g. ``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``."""
        return _version_of(self.bindir, self.env)

    @property
    def major(self) -> int:
        return _major_of(self.version_string, self.bindir)

    @functools.cached_property
    def version(self) -> str:
        """The exact server version, e.g. ``17.10``."""
        m = re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", self.version_string)
        return m.group(1) if m else str(self.major)

    # ------------------------------------------------------------ programs
    def _others(self) -> list[Path]:
        """Other installations on this machine, newest first: the Debian/PGDG
        layout, PG_BINDIR and pg_config, and the server cache."""
        seen: list[Path] = []
        for d in sorted(DEBIAN_GLOB_ROOT.glob("*/bin") if DEBIAN_GLOB_ROOT.is_dir() else [], reverse=True):
            seen.append(d)
        if os.environ.get(PG_BINDIR_ENV):
            seen.append(Path(os.environ[PG_BINDIR_ENV]))
        pg_config = shutil.which("pg_config")
        if pg_config:
            path = _pg_config_bindir(pg_config, [])
            if path is not None:
                seen.append(path)
        return [d for d in dict.fromkeys(seen) if d.resolve() != self.bindir.resolve()]

    def _find(self, program: str) -> tuple[Path | None, list[str]]:
        own = self.bindir / program
        if os.access(own, os.X_OK):
            return own, []
        tried = [f"{self.bindir}: no {program}"]
        for d in self._others():
            cand = d / program
            if not os.access(cand, os.X_OK):
                continue
            try:
                client_major = _major_of(_client_version(cand), d)
            except PgBinariesNotFound as exc:
                tried.append(str(exc))
                continue
            if versions.client_compatible(program, client_major, self.major):
                return cand, tried
            tried.append(f"{cand} is of PostgreSQL {client_major}, which does not work with "
                         f"PostgreSQL {self.major}")
        return None, tried

    def has(self, program: str) -> bool:
        """Whether :meth:`path` would find ``program``."""
        return self._find(program)[0] is not None

    def path(self, program: str) -> Path:
        """``program`` of this installation, else a compatible one of another installation."""
        found, tried = self._find(program)
        if found is None:
            raise PgBinariesNotFound(f"{program} for PostgreSQL {self.major} not found: "
                                     + "; ".join(tried))
        return found

    def env_for(self, program: Path) -> dict[str, str]:
        """The extra environment ``program`` (a path :meth:`path` returned) needs."""
        return self.env if program.parent.resolve() == self.bindir.resolve() else {}


@functools.lru_cache(maxsize=64)
def _client_version(program: Path) -> str:
    proc = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise PgBinariesNotFound(f"{program} --version failed (exit {proc.returncode})")
    return proc.stdout.strip()
