"""initdb once, copy many times.

Running ``initdb`` costs seconds; copying its result costs a fraction of that
(PostgreSQL's own test suites do the same since version 16).  A template is
keyed by the PostgreSQL installation (bindir and ``postgres --version``), the
user the server runs as, and the initdb options; it lives in
``$WALSIM_INITDB_CACHE`` (default ``<tempdir>/walsim-initdb-cache-<user>``),
is built under a lock (safe across pytest-xdist workers) and published by an
atomic rename.

The cache is trusted only if it is private: the root directory must be a
real directory (not a symbolic link) owned by the user PostgreSQL runs as,
mode 0700 (:func:`walsim.core.safefs.private_dir`).  A directory at the
predictable default path that another local user created first (with a
``complete`` marker and a data directory of their own in it) is refused
with an error naming it, never copied and started (issue 16, item 10).

Every copy gets its own superuser password (:func:`set_superuser_password`,
single-user mode right after the copy): the password the template was
built with opens no cluster copied from it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from walsim.core.diskspace import free_bytes, human, is_enospc, mount_point, tree_size
from walsim.core.errors import CommandError, DiskFullError
from walsim.core.safefs import private_dir
from walsim.pg.pgbin import PgBin
from walsim.pg.runas import RunAs

CACHE_ENV = "WALSIM_INITDB_CACHE"


def cache_root(runas: RunAs) -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(tempfile.gettempdir()) / f"walsim-initdb-cache-{runas.user}"


def initdb_argv(pg: PgBin, data_dir: Path, pwfile: Path, superuser: str, options: list[str]) -> list[str]:
    return [str(pg.path("initdb")), "-D", str(data_dir), "-U", superuser, "--pwfile", str(pwfile)] + options


def run_initdb(pg: PgBin, runas: RunAs, data_dir: Path, password: str, superuser: str,
               options: list[str], log: Path, timeout: float) -> None:
    """initdb into ``data_dir`` (created, owned by the PostgreSQL user) with ``password``."""
    pwfile = data_dir.parent / f".{data_dir.name}.pw"
    runas.write_file(pwfile, password + "\n", 0o600)
    try:
        runas.run(initdb_argv(pg, data_dir, pwfile, superuser, options), what=f"initdb of {data_dir}",
                  log=log, cwd=data_dir.parent, timeout=timeout, env=pg.env)
    finally:
        pwfile.unlink(missing_ok=True)


def template_key(pg: PgBin, runas: RunAs, superuser: str, options: list[str]) -> str:
    h = hashlib.sha256()
    for part in [str(pg.bindir), pg.version_string, runas.user, superuser, *options]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


def ensure_template(pg: PgBin, runas: RunAs, superuser: str, options: list[str], log: Path,
                    timeout: float) -> tuple[Path, str]:
    """The template data directory for these options, built if missing, and its superuser password."""
    root = cache_root(runas)
    private_dir(root, owner=runas.uid, what="initdb template cache",
                hint=f"or set {CACHE_ENV} to a directory of your own")
    key = template_key(pg, runas, superuser, options)
    final = root / key
    lock_path = root / f"{key}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (final / "complete").exists():
            if final.exists():
                shutil.rmtree(final)
            work = root / f"{key}.building-{os.getpid()}"
            if work.exists():
                shutil.rmtree(work)
            runas.makedirs(work, 0o700)
            password = secrets.token_hex(16)
            runas.write_file(work / "superuser.pw", password, 0o600)
            run_initdb(pg, runas, work / "data", password, superuser, options, log, timeout)
            (work / "version").write_text(pg.version_string + "\n" + " ".join(options) + "\n")
            (work / "complete").write_text("")
            os.rename(work, final)
        password = (final / "superuser.pw").read_text().strip()
        return final / "data", password
    finally:
        os.close(fd)


def copy_template(runas: RunAs, template: Path, data_dir: Path, log: Path, timeout: float) -> None:
    """Copy a template data directory (as the PostgreSQL user, modes preserved).
    A full disk raises :class:`DiskFullError` saying how much the copy needs."""
    try:
        runas.run(["cp", "-a", str(template), str(data_dir)], what=f"copying the initdb template to {data_dir}",
                  log=log, timeout=timeout)
    except CommandError as exc:
        if not is_enospc(exc):
            raise
        raise DiskFullError(f"disk full: copying the initdb template to {data_dir} needs "
                            f"{human(tree_size(template))}; {human(free_bytes(data_dir.parent))} free on "
                            f"{mount_point(data_dir.parent)} (WALSIM_WORKDIR chooses where clusters are made)"
                            ) from None


def set_superuser_password(pg: PgBin, runas: RunAs, data_dir: Path, superuser: str, password: str,
                           encryption: str, log: Path, timeout: float) -> None:
    """Give the superuser of a stopped data directory a new password (single-user
    mode: no listening socket, no other connection while it runs)."""
    stmt = "ALTER ROLE {} PASSWORD '{}';\n".format('"' + superuser.replace('"', '""') + '"',
                                                    password.replace("'", "''"))
    runas.run([str(pg.path("postgres")), "--single", "-D", str(data_dir), "-c", "fsync=off",
               "-c", f"password_encryption={encryption}", "-c", "log_min_messages=warning", "postgres"],
              what=f"setting a fresh superuser password in {data_dir}", log=log, timeout=timeout,
              input=stmt.encode())
