"""Directories and files walsim reuses, checked before they are trusted.

walsim runs as root on CI machines and shared workstations.  Anything it
finds at a predictable path under a world-writable directory (``/tmp``) may
have been planted by another local user: a symbolic link pointing at a
root-owned file, a directory holding a ``complete`` marker and a data
directory to be copied and started.  These helpers are the one place where
such paths are created and checked (docs/security.md, "A local unprivileged
user"):

* :func:`private_dir` — a directory only its owner can enter or change:
  created 0700 when missing; an existing one must be a real directory (not
  a symbolic link), owned by the expected user, with no access for group or
  others.  Anything else raises :class:`UnsafePathError` naming the path,
  what is wrong and how to fix it.
* :func:`runtime_dir` — the per-user runtime directory for walsim's own
  state (port locks, run registrations): ``$WALSIM_RUNTIME_DIR``, else
  ``$XDG_RUNTIME_DIR/walsim``, else ``<tempdir>/walsim-<uid>``, each checked
  by :func:`private_dir`.
* :func:`open_nofollow` — open a file in such a directory without following
  a symbolic link and check the file is a regular file owned by the user.

Other layers (the snapshot cache, the template cache, the supervisor)
call these instead of writing their own checks.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from walsim.core.errors import UnsafePathError

RUNTIME_ENV = "WALSIM_RUNTIME_DIR"


def _describe_owner(uid: int) -> str:
    try:
        import pwd
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def check_private(path: Path, *, owner: int | None = None, what: str = "directory",
                  hint: str = "", deny: int = 0o077) -> os.stat_result:
    """Check that ``path`` is a directory (not a link) owned by ``owner`` (default:
    the effective user) with none of the permission bits ``deny`` (default: no
    access at all for group or others; ``0o022``: readable by others, as a
    directory of programs the PostgreSQL user runs must be, but writable by no
    one else)."""
    owner = os.geteuid() if owner is None else owner
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePathError(f"{what} {path} does not exist") from None
    extra = f"; {hint}" if hint else ""
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a file"
        raise UnsafePathError(f"{what} {path} is not a directory ({kind}): refusing to use it (another "
                              f"user may have planted it){extra}")
    if st.st_uid != owner:
        raise UnsafePathError(f"{what} {path} belongs to {_describe_owner(st.st_uid)}, not to "
                              f"{_describe_owner(owner)}: refusing to use it (another user may have "
                              f"created it); remove it{extra}")
    if st.st_mode & deny & 0o022:
        raise UnsafePathError(f"{what} {path} is writable by group or others (mode "
                              f"{stat.S_IMODE(st.st_mode):04o}): refusing to use it; chmod go-w it{extra}")
    if st.st_mode & deny:
        raise UnsafePathError(f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must give no "
                              f"access to group or others (chmod 700 it){extra}")
    return st


def private_dir(path: str | os.PathLike[str], *, owner: int | None = None, create: bool = True,
                what: str = "directory", hint: str = "") -> Path:
    """``path`` as a directory only ``owner`` (default: the effective user) can use.

    Created with mode 0700 (and chowned to ``owner``) when missing and
    ``create``; its parent must exist.  Then checked by :func:`check_private`."""
    p = Path(path)
    if create:
        try:
            os.mkdir(p, 0o700)
            if owner is not None and owner != os.geteuid():
                os.chown(p, owner, -1)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafePathError(f"cannot create {what} {p}: {exc.strerror}") from None
    check_private(p, owner=owner, what=what, hint=hint)
    return p


def runtime_dir() -> Path:
    """The effective user's private directory for walsim's own state (created 0700)."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return private_dir(env, what="runtime directory", hint=f"or set {RUNTIME_ENV}")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        try:
            check_private(Path(xdg), what="XDG_RUNTIME_DIR")
            return private_dir(Path(xdg) / "walsim", what="runtime directory",
                               hint=f"or set {RUNTIME_ENV}")
        except UnsafePathError:
            pass  # an XDG_RUNTIME_DIR of another user (sudo): the fallback below
    return private_dir(Path(tempfile.gettempdir()) / f"walsim-{os.geteuid()}", what="runtime directory",
                       hint=f"or set {RUNTIME_ENV}")


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` with ``O_NOFOLLOW | O_CLOEXEC``, then a check that what was opened
    is a regular file owned by the effective user; the descriptor, or
    :class:`UnsafePathError` (a symbolic link, another user's file)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symbolic link
            raise UnsafePathError(f"{path} is a symbolic link: refusing to follow it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise UnsafePathError(f"{path} is not a regular file of {_describe_owner(os.geteuid())} "
                              f"(owner {_describe_owner(st.st_uid)}): refusing to use it")
    return fd
