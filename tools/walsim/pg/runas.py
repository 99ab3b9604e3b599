"""Run PostgreSQL programs as an unprivileged user when walsim runs as root.

``initdb`` and ``postgres`` refuse to run as root.  When the harness is root,
every PostgreSQL program is started with ``subprocess`` ``user=``/``group=``
(and no supplementary groups) as the user named by ``WALSIM_PG_USER``
(default ``postgres``), in directories that user owns.  When the harness is
not root, programs run as the current user and no switching happens.

Argument vectors only: nothing here ever builds a shell command line.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from typing import Any
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from walsim.core import supervise
from walsim.core.errors import ClusterError, CommandError

PG_USER_ENV = "WALSIM_PG_USER"
DEFAULT_PG_USER = "postgres"


@dataclass(frozen=True)
class RunAs:
    """Who PostgreSQL programs run as, and how to start them that way."""

    user: str
    uid: int
    gid: int
    home: str
    #: True when walsim is root and switches to ``user`` for every program
    switch: bool

    @classmethod
    def resolve(cls, user: str | None = None) -> "RunAs":
        """The identity to use: ``user``, else ``$WALSIM_PG_USER``, else
        ``postgres`` when root; the current user when not root."""
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, False)
        name = user or os.environ.get(PG_USER_ENV) or DEFAULT_PG_USER
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ClusterError(
                f"walsim runs as root and PostgreSQL refuses root, but the user {name!r} "
                f"to run PostgreSQL as does not exist (set {PG_USER_ENV} or create it, "
                f"e.g. `useradd --system {name}`)") from None
        if entry.pw_uid == 0:
            raise ClusterError(f"{PG_USER_ENV}={name!r} is root; PostgreSQL refuses to run as root")
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, True)

    # ------------------------------------------------------------ processes
    def popen_kwargs(self) -> dict[str, object]:
        """Extra ``subprocess`` keyword arguments that drop to ``user``."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment for PostgreSQL programs.

        Inherits the harness environment without libpq/PostgreSQL variables
        (``PG*``, which would silently redirect programs), with HOME set to
        the user's home, then ``extra`` on top.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.pop("LD_PRELOAD", None)
        env["HOME"] = self.home if self.switch else env.get("HOME", self.home)
        env.setdefault("LC_ALL", "C")
        if self.switch:
            env["USER"] = env["LOGNAME"] = self.user
        if extra:
            env.update(extra)
        return env

    def popen(self, argv: Sequence[str | os.PathLike[str]], **kwargs: object) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` as the PostgreSQL user."""
        kwargs = {**self.popen_kwargs(), "close_fds": True, **kwargs}
        kwargs.setdefault("env", self.environment())
        return subprocess.Popen([os.fspath(a) for a in argv], **kwargs)  # type: ignore[call-overload]

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        what: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log: Path | None = None,
        timeout: float | None = None,
        check: bool = True,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a program to completion as the PostgreSQL user.

        Its output goes to ``log`` (appended, when given) or is captured.  On
        a non-zero exit (``check``) raises :class:`CommandError` naming
        ``what``, the program, its exit status and the end of its output.
        """
        args = [os.fspath(a) for a in argv]
        full_env = self.environment(env)
        if log is not None:
            with open(log, "ab") as out:
                out.write(f"walsim: running {' '.join(args)}\n".encode())
                out.flush()
                start = out.tell()
                try:
                    proc = _run_registered(args, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                           cwd=cwd, timeout=timeout, input=input,
                                           close_fds=True, **self.popen_kwargs())
                except subprocess.TimeoutExpired:
                    raise CommandError(f"{what}: {args[0]} did not finish within {timeout:.0f}s; "
                                       f"output in {log}", argv=args, returncode=None) from None
            output = _tail_from(log, start)
        else:
            try:
                proc = _run_registered(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       env=full_env, cwd=cwd, timeout=timeout, input=input,
                                       close_fds=True, **self.popen_kwargs())
            except subprocess.TimeoutExpired:
                raise CommandError(f"{what}: {args[0]} did not finish within {timeout:.0f}s",
                                   argv=args, returncode=None) from None
            output = proc.stdout.decode(errors="replace")
        if check and proc.returncode != 0:
            where = f" (full output in {log})" if log is not None else ""
            raise CommandError(
                f"{what} failed: {Path(args[0]).name} exited with status {proc.returncode}{where}:\n"
                f"{_last_lines(output)}", argv=args, returncode=proc.returncode, output=output)
        proc.stdout = output.encode() if log is not None else proc.stdout
        return proc

    # ---------------------------------------------------------------- files
    def chown(self, path: str | os.PathLike[str]) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def makedirs(self, path: str | os.PathLike[str], mode: int = 0o700) -> Path:
        """Create ``path`` (and missing parents) owned by the PostgreSQL user."""
        p = Path(path)
        missing = []
        q = p
        while not q.exists():
            missing.append(q)
            q = q.parent
        for d in reversed(missing):
            d.mkdir(mode=mode)
            os.chmod(d, mode)
            self.chown(d)
        return p

    def write_file(self, path: str | os.PathLike[str], data: str | bytes, mode: int = 0o600) -> None:
        """Write (atomically replace) a file owned by the PostgreSQL user."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.walsim-tmp")
        raw = data.encode() if isinstance(data, str) else data
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, raw)
            os.fchmod(fd, mode)
            if self.switch:
                os.fchown(fd, self.uid, self.gid)
        finally:
            os.close(fd)
        os.replace(tmp, p)

    def check_access(self, path: str | os.PathLike[str]) -> None:
        """Fail clearly if the PostgreSQL user cannot write in directory ``path``."""
        if not self.switch:
            if not os.access(path, os.W_OK | os.X_OK):
                raise ClusterError(f"directory {path} is not writable by {self.user}")
            return
        proc = subprocess.run(["test", "-w", os.fspath(path), "-a", "-x", os.fspath(path)],
                              close_fds=True, **self.popen_kwargs())  # type: ignore[call-overload]
        if proc.returncode != 0:
            raise ClusterError(
                f"the PostgreSQL user {self.user!r} cannot write in {path} (a parent directory "
                f"is probably not searchable by it); choose a work directory under a "
                f"world-searchable path such as the system temporary directory")


def _tail_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _last_lines(text: str, n: int = 20) -> str:
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join("    " + ln for ln in lines[-n:])


def _run_registered(args: list[str], *, input: bytes | None, timeout: float | None,
                    **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run`` with the child registered with the run's supervisor
    (:mod:`walsim.core.supervise`): a helper (initdb, ``cp -a`` of the template,
    pg_basebackup) still running when walsim is killed is stopped before the
    directory it writes into is removed."""
    kwargs["stdin"] = subprocess.PIPE if input is not None else subprocess.DEVNULL
    with subprocess.Popen(args, **kwargs) as proc:
        supervise.register_process(proc.pid, f"{Path(args[0]).name} (helper)")
        try:
            out, _ = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        except BaseException:
            proc.kill()
            raise
    return subprocess.CompletedProcess(args, proc.returncode, out, None)
