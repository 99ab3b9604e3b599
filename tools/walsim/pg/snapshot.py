"""Cluster snapshots: a primary and a standby built once the operator's way, copied for every run.

Building a standby costs a ``pg_basebackup`` (a checkpoint, a copy, a start);
a run that needs three nodes pays it twice before anything happens.  A
snapshot *image* is a primary and one standby of it, built by the operator's
path (initdb, ``pg_basebackup -R -X stream``), left streaming, then stopped
cleanly: the primary first (its walsender hands the shutdown checkpoint to
the standby before it exits), then the standby.  A copy of the primary image
is a valid primary, and a copy of the standby image is a valid standby of any
copy of that primary, or of another standby copy (a cascade): its WAL ends at
or before the primary's, on the same system and timeline, and the segment it
resumes from is still in the upstream's ``pg_wal``.  :class:`Cluster
<walsim.pg.cluster.Cluster>` uses images when made with ``snapshot=True``.

An image is keyed by the PostgreSQL installation (bindir and version), the
user the servers run as, the role names, the initdb options and the
primary's settings, and cached across commands like the initdb template, in
``$WALSIM_SNAPSHOT_CACHE`` (default ``<tempdir>/walsim-snapshots-<uid>``).
That directory, and every entry in it, must be a real directory owned by the
user walsim runs as with no access for anyone else: another user who
creates it first (the temporary directory is shared) is refused, never
trusted.  An image is built under a lock and published by an atomic rename;
its passwords are stored beside it (0600), and every copy gets fresh ones
(:meth:`Cluster._rotate_passwords <walsim.pg.cluster.Cluster._rotate_passwords>`).

Copying a data directory is about a thousand files: on a file system
without reflinks (ext4) under load that is most of the time a cluster takes.
So each image keeps a few *spare* copies made ahead of need
(``$WALSIM_SNAPSHOT_SPARES`` clusters' worth, default 2: that many primaries
and twice as many standbys).  :func:`take` moves a spare into place with one
``rename`` (same file system; otherwise it copies), and :func:`refill`, run in
a background thread after a cluster took spares, copies new ones under a lock
while the cluster runs.  Spares live inside the image's private directory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from walsim.core.errors import ClusterError
from walsim.pg.pgbin import PgBin
from walsim.pg.runas import RunAs

CACHE_ENV = "WALSIM_SNAPSHOT_CACHE"
SPARES_ENV = "WALSIM_SNAPSHOT_SPARES"
#: spare copies per image, in clusters' worth (a primary and two standbys each)
DEFAULT_SPARES = 2
ROLES = ("primary", "standby")
#: bumped when the layout of an image changes (old entries are then never used)
FORMAT = 1


class SnapshotError(ClusterError):
    """The snapshot cache is unusable (not ours, too open) or an image could not be built or copied."""


@dataclass(frozen=True)
class Image:
    """A cached primary and standby pair."""

    dir: Path
    key: str
    superuser_password: str
    replication_password: str
    #: the settings the image's nodes had (walsim.conf), for the copies
    primary_settings: dict[str, Any]
    standby_settings: dict[str, Any]
    #: where the standby image's WAL ends, and the primary segment file that holds it
    end_lsn: str
    resume_segment: str

    @property
    def primary_data(self) -> Path:
        return self.dir / "primary"

    @property
    def standby_data(self) -> Path:
        return self.dir / "standby"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(tempfile.gettempdir()) / f"walsim-snapshots-{os.geteuid()}"


def private_dir(path: Path, create: bool = True) -> Path:
    """``path`` as a directory only the current user can create, enter or change.

    Created with mode 0700 when missing (its parent must exist).  An existing
    one must be a directory (not a symbolic link) owned by the current user
    with no permission bits for group or others; anything else raises
    :class:`SnapshotError`, since files found there will be copied into data
    directories and their passwords trusted."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise SnapshotError(f"cannot create the snapshot directory {path}: {exc.strerror}") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SnapshotError(f"snapshot directory {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SnapshotError(f"snapshot directory {path} is not a directory (a symbolic link or a file); "
                            f"remove it or set {CACHE_ENV}")
    if st.st_uid != os.geteuid():
        raise SnapshotError(f"snapshot directory {path} belongs to uid {st.st_uid}, not to uid "
                            f"{os.geteuid()} that walsim runs as: refusing to use it (another user "
                            f"may have created it); remove it or set {CACHE_ENV}")
    if st.st_mode & 0o077:
        raise SnapshotError(f"snapshot directory {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                            f"it must give no access to group or others (chmod 700 it)")
    return path


def snapshot_key(pg: PgBin, runas: RunAs, superuser: str, replication_user: str,
                 initdb_options: Sequence[str], settings: Mapping[str, Any]) -> str:
    """The cache key of an image: every input that shapes its data directories."""
    material = {
        "format": FORMAT, "bindir": str(pg.bindir), "version": pg.version_string, "user": runas.user,
        "superuser": superuser, "replication_user": replication_user,
        "initdb": list(initdb_options),
        "settings": {k: settings[k] for k in sorted(settings)},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:24]


def copy_data(src: Path, dest: Path, timeout: float = 300) -> None:
    """Copy a data directory with ownership and modes (``cp -a``), sharing blocks where
    the file system can (``--reflink=auto``) and leaving zeroes as holes (unused WAL)."""
    if dest.exists():
        raise SnapshotError(f"cannot copy a snapshot into {dest}: it exists")
    argv = ["cp", "-a", "--reflink=auto", "--sparse=always", os.fspath(src), os.fspath(dest)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise SnapshotError(f"copying {src} to {dest} took more than {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise SnapshotError(f"copying {src} to {dest} failed: cp exited with status {proc.returncode}: "
                            f"{proc.stderr.decode(errors='replace').strip()}")


def _load(entry: Path, key: str) -> Image:
    private_dir(entry, create=False)
    try:
        meta = json.loads((entry / "meta.json").read_text())
        secrets = json.loads((entry / "secrets.json").read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"snapshot {entry} is damaged ({exc}); remove it") from None
    return Image(entry, key, secrets["superuser"], secrets["replication"], meta["primary_settings"],
                 meta["standby_settings"], meta["end_lsn"], meta["resume_segment"])


#: builds an image's files into a fresh directory: ``primary/``, ``standby/``,
#: and returns (metadata, secrets) to store beside them
Builder = Callable[[Path], "tuple[dict[str, Any], dict[str, str]]"]


def ensure_image(key: str, build: Builder) -> tuple[Image, bool]:
    """The image for ``key``, built by ``build`` if the cache has none; and whether it was built.

    Built under an exclusive lock per key (concurrent explorations wait for
    one build), in a private work directory renamed into place when complete."""
    root = cache_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    private_dir(root)
    final = root / key
    lock = root / f"{key}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if (final / "complete").exists():
            return _load(final, key), False
        if final.exists():
            private_dir(final, create=False)
            shutil.rmtree(final)
        work = root / f"{key}.building-{os.getpid()}"
        if work.exists():
            shutil.rmtree(work)
        private_dir(work)
        try:
            meta, secrets = build(work)
            _write_private(work / "secrets.json", json.dumps(secrets))
            _write_private(work / "meta.json", json.dumps(dict(meta, format=FORMAT), indent=1, default=str))
            _write_private(work / "complete", "")
            os.rename(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return _load(final, key), True
    finally:
        os.close(fd)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ------------------------------------------------------------------ spares

def spares_wanted() -> dict[str, int]:
    """How many spare copies of each role an image keeps (``$WALSIM_SNAPSHOT_SPARES``)."""
    try:
        n = int(os.environ.get(SPARES_ENV, DEFAULT_SPARES))
    except ValueError:
        n = DEFAULT_SPARES
    n = max(0, min(n, 16))
    return {"primary": n, "standby": 2 * n}


def _spare_dir(image: Image, role: str) -> Path:
    return image.dir / "spares" / role


def spares(image: Image, role: str) -> list[Path]:
    """The ready spare copies of one role of an image."""
    try:
        return sorted(p for p in _spare_dir(image, role).iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return []


def take(image: Image, role: str, dest: Path) -> bool:
    """Move a spare copy of ``role`` to ``dest`` (which must not exist); False when there
    is none or it lives on another file system (then the caller copies)."""
    for spare in spares(image, role):
        try:
            os.rename(spare, dest)
            return True
        except FileNotFoundError:
            continue  # another process took it first
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
    return False


def refill(image: Image, timeout: float = 300) -> int:
    """Copy spares until the image has as many as wanted; returns how many were made.
    Under a per-image lock taken without waiting: when another process is refilling,
    this one does nothing."""
    wanted = spares_wanted()
    if not any(wanted.values()):
        return 0
    base = image.dir / "spares"
    private_dir(base)
    fd = os.open(image.dir / "spares.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    made = 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        for role in ROLES:
            d = private_dir(base / role)
            for stale in d.glob(".building-*"):  # left by a process that died while copying
                shutil.rmtree(stale, ignore_errors=True)
            while len(spares(image, role)) < wanted[role]:
                work = d / f".building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                copy_data(image.primary_data if role == "primary" else image.standby_data, work, timeout)
                os.rename(work, d / uuid.uuid4().hex)
                made += 1
    finally:
        os.close(fd)
    return made


_REFILLS: dict[Path, threading.Thread] = {}
_REFILLS_LOCK = threading.Lock()


def refill_in_background(image: Image) -> None:
    """Start :func:`refill` in a daemon thread (at most one per image per process)."""
    with _REFILLS_LOCK:
        running = _REFILLS.get(image.dir)
        if running is not None and running.is_alive():
            return

        def work() -> None:
            try:
                refill(image)
            except (OSError, SnapshotError):
                pass  # spares are an optimisation: a copy is made when none is left

        thread = threading.Thread(target=work, name="walsim-snapshot-refill", daemon=True)
        _REFILLS[image.dir] = thread
        thread.start()


def wait_refills(timeout: float) -> None:
    """Wait (at most ``timeout`` seconds in all) for this process's background refills."""
    deadline = time.monotonic() + timeout
    with _REFILLS_LOCK:
        threads = list(_REFILLS.values())
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
