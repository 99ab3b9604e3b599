"""What a run started, recorded where a process that outlives it can find it,
and a per-run supervisor that tears it down when the CLI dies.

``walsim-cli run`` used to be the only process that knew what it had started:
``kill -HUP`` (an SSH session closing) or ``kill -KILL`` left the postmasters
(reparented to pid 1), walsim-netd with its ports, the cluster directory and
``/tmp/walsim-netd-*`` behind (issue 16, item 1).  Now:

* A **registry** is a private directory ``runs/<name>`` in the user's
  runtime directory (:func:`walsim.core.safefs.runtime_dir`) holding
  ``owner.json`` (the owning process's pid and start time, the run
  directory) and ``registry.jsonl``, one JSON line per process or directory
  the run started, appended with one ``write(2)`` each (``O_APPEND``), so a
  line is never torn and what was written before a SIGKILL is all there.
* Every layer that starts something registers it, through three functions
  that do nothing outside a run: :func:`register_process` (pid, start time,
  whether to signal its whole process group, the stop signal),
  :func:`register_dir` and :func:`forget_dir` (kept after all, e.g.
  ``--keep``).  walsim's own layers call them: :class:`walsim.pg.node.Node`
  for each postmaster (its process group, SIGQUIT), :class:`walsim.pg.cluster.Cluster`
  for its base directory, :class:`walsim.sim.netd.Netd` for the daemon and
  its work directory, the pgbench workloads; a fault layer or a manager
  adapter (Patroni, etcd, repmgrd...) that starts a program calls
  :func:`register_process` right after starting it.  The registry to use is
  named by ``$WALSIM_REGISTRY`` (inherited by child processes, so a helper
  program written in Python can register too).
* A **supervisor** process per run (:class:`RunSupervisor`) is started in a
  new session (so the terminal's SIGINT and SIGHUP do not reach it) and
  holds the read end of a pipe whose write end only the CLI has (the
  descriptor is not inherited by anything the CLI starts).  When the pipe
  reaches end-of-file without the CLI having said ``done`` — the CLI is gone,
  whatever killed it — the supervisor stops every registered process by pid
  (checked against its start time, so a recycled pid is never hit: SIGCONT,
  the stop signal, then SIGKILL of what is left after the grace), removes
  every registered directory, notes what it did in the run directory
  (``supervisor.json``) and marks ``run.json`` interrupted.  It runs as the
  user the CLI runs as (root on CI): it needs no change of user, and the
  processes running as ``postgres`` are stopped by a process that may
  signal them.
* :func:`collect_garbage` (``walsim-cli gc``) does the same for every
  registry whose owner and supervisor are both gone (a machine that lost
  power, a supervisor killed along with the CLI by ``kill -9 -PGID``).

The normal path does not depend on any of this: the engine tears down in
order and says ``done``; the supervisor then only checks that nothing
registered is left (and stops it if something is).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from walsim.core.errors import RunInProgress
from walsim.core.exitstatus import INTERRUPTED
from walsim.core.safefs import private_dir, runtime_dir

REGISTRY_ENV = "WALSIM_REGISTRY"
DEFAULT_GRACE = 3.0


# ------------------------------------------------------------------ /proc

def _stat(pid: int) -> tuple[int, int, str] | None:
    """(start time, process group, state) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19]), int(rest[2]), rest[0]


def process_starttime(pid: int) -> int:
    st = _stat(pid)
    return st[0] if st else 0


def alive(pid: int, starttime: int) -> bool:
    st = _stat(pid)
    return st is not None and (not starttime or st[0] == starttime)


def _group(pgid: int) -> list[tuple[int, int]]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pgid:
                out.append((int(entry.name), st[0]))
    return out


def processes_in(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """(pid, start time) of live processes whose working directory is ``path`` or
    below it, or whose command line names it (this process excepted)."""
    root = os.path.realpath(path)
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/") or root in cmd.split() or f"{root}/" in cmd:
            st = _stat(int(entry.name))
            if st is not None:
                out.append((int(entry.name), st[0]))
    return out


def _kill(pid: int, starttime: int, sig: int) -> bool:
    if not alive(pid, starttime):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


# ------------------------------------------------------------------ the registry

@dataclass
class Entry:
    kind: str                       #: ``process`` or ``dir``
    what: str
    pid: int = 0
    starttime: int = 0
    group: bool = False
    stop: str = "TERM"
    grace: float = DEFAULT_GRACE
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Registry:
    """One run's record of what it started (a private directory)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(cls, label: str, rundir: Path | None = None) -> "Registry":
        runs = private_dir(runtime_dir() / "runs", what="run registry directory")
        name = f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in label)[:60]}-{os.getpid()}-" \
               f"{secrets.token_hex(3)}"
        reg = cls(private_dir(runs / name, what="run registry"))
        reg._write_owner({"pid": os.getpid(), "starttime": process_starttime(os.getpid()),
                          "rundir": str(rundir) if rundir else None, "label": label,
                          "created": time.time()})
        return reg

    def _write_owner(self, data: dict[str, Any]) -> None:
        tmp = self.path / "owner.json.tmp"
        tmp.write_text(json.dumps(data) + "\n")
        os.replace(tmp, self.path / "owner.json")

    def owner(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "owner.json").read_text())
        except (OSError, ValueError):
            return {}

    def set_supervisor(self, pid: int) -> None:
        data = self.owner()
        data["supervisor"] = {"pid": pid, "starttime": process_starttime(pid)}
        self._write_owner(data)

    # ---------------------------------------------------------------- lines
    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path / "registry.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                     | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def add_process(self, pid: int, what: str, *, starttime: int | None = None, group: bool = False,
                    stop: str = "TERM", grace: float = DEFAULT_GRACE) -> None:
        st = process_starttime(pid) if starttime is None else starttime
        self._append({"op": "process", "what": what, "pid": pid, "starttime": st, "group": group,
                      "stop": stop, "grace": grace})

    def add_dir(self, path: str | os.PathLike[str], what: str) -> None:
        self._append({"op": "dir", "what": what, "path": os.fspath(path)})

    def forget_dir(self, path: str | os.PathLike[str]) -> None:
        self._append({"op": "forget_dir", "path": os.fspath(path)})

    def entries(self) -> list[Entry]:
        """Registered processes and directories, in registration order (forgotten ones left out)."""
        try:
            lines = (self.path / "registry.jsonl").read_text().splitlines()
        except OSError:
            return []
        out: list[Entry] = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # cannot happen with O_APPEND writes; never stop cleaning for it
            if rec.get("op") == "process":
                out.append(Entry("process", rec["what"], pid=int(rec["pid"]), starttime=int(rec["starttime"]),
                                 group=bool(rec.get("group")), stop=str(rec.get("stop", "TERM")),
                                 grace=float(rec.get("grace", DEFAULT_GRACE))))
            elif rec.get("op") == "dir":
                out.append(Entry("dir", rec["what"], path=rec["path"]))
            elif rec.get("op") == "forget_dir":
                out = [e for e in out if not (e.kind == "dir" and e.path == rec["path"])]
        return out

    def leftovers(self) -> list[str]:
        """What is still there: live registered processes (and their group) and directories."""
        left = []
        for e in self.entries():
            if e.kind == "process":
                members = _group(e.pid) if e.group and alive(e.pid, e.starttime) else []
                if alive(e.pid, e.starttime) or members:
                    left.append(f"{e.what} (pid {e.pid})")
            elif os.path.lexists(e.path):
                left.append(f"{e.what} {e.path}")
        return left

    # ---------------------------------------------------------------- cleanup
    def cleanup(self, say: Callable[[str], None] = lambda msg: None) -> list[str]:
        """Stop every registered process (latest first) and remove every registered
        directory; returns what was done, one line each."""
        done: list[str] = []
        owner_pid = int(self.owner().get("pid") or 0)  # the CLI, when alive (normal path), is never a stray
        procs = [e for e in self.entries() if e.kind == "process"]
        for e in reversed(procs):
            targets = [(e.pid, e.starttime)] if alive(e.pid, e.starttime) else []
            if e.group and targets:
                targets = list(dict.fromkeys(targets + _group(e.pid)))
            if not targets:
                continue
            sig = getattr(signal, f"SIG{e.stop}", signal.SIGTERM)
            for pid, st in targets:
                _kill(pid, st, signal.SIGCONT)  # a paused process must hear the signal
            _kill(e.pid, e.starttime, sig)
            if e.group and e.stop != "QUIT":
                # a postmaster forwards SIGQUIT to its children; other programs' get it directly
                for pid, st in targets[1:]:
                    _kill(pid, st, sig)
            deadline = time.monotonic() + e.grace
            while time.monotonic() < deadline and any(alive(p, s) for p, s in targets):
                time.sleep(0.02)
            killed = [p for p, s in targets if _kill(p, s, signal.SIGKILL)]
            line = f"stopped {e.what} (pid {e.pid}{', its process group' if e.group else ''}) with SIG{e.stop}"
            if killed:
                line += f"; SIGKILL to {killed} after {e.grace:g} s"
            done.append(line)
            say(line)
        for e in reversed([e for e in self.entries() if e.kind == "dir"]):
            # Anything still working in the directory is the run's too, registered or
            # not (a postmaster a manager started, its backends: their cwd is the data
            # directory): stopped before the directory goes.
            strays = [(p, st) for p, st in processes_in(e.path) if p != owner_pid]
            if strays:
                for pid, st in strays:
                    _kill(pid, st, signal.SIGCONT)
                    _kill(pid, st, signal.SIGTERM)
                deadline = time.monotonic() + DEFAULT_GRACE
                while time.monotonic() < deadline and any(alive(p, s) for p, s in strays):
                    time.sleep(0.02)
                killed = [p for p, s in strays if _kill(p, s, signal.SIGKILL)]
                line = f"stopped {len(strays)} process(es) working in {e.what} {e.path}" + \
                    (f"; SIGKILL to {killed}" if killed else "")
                done.append(line)
                say(line)
            if os.path.lexists(e.path):
                if os.path.islink(e.path):
                    os.unlink(e.path)
                else:
                    for _ in range(3):  # a process exiting may still have written a file
                        shutil.rmtree(e.path, ignore_errors=True)
                        if not os.path.lexists(e.path):
                            break
                        time.sleep(0.1)
                line = f"removed {e.what} {e.path}"
                done.append(line)
                say(line)
        return done

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------------ outside a run

#: prctl(2): the signal a process gets when the thread that started it ends
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child ``sig`` when the thread that starts it
    ends, for what is started outside a run's supervisor: a pytest worker
    killed without running its finalizers (SIGTERM to an xdist master) used to
    leave its walsim-netd running.  Linux ties the signal to the starting
    *thread*: start the child from one that lives as long as the child should
    (pytest's fixtures run in the main thread)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: nothing is loaded after fork
    parent = os.getpid()

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os.kill(os.getpid(), sig)
    return preexec


# ------------------------------------------------------------------ registration from anywhere

def current() -> Registry | None:
    """The registry of the run this process (or its parent) is part of, or None."""
    path = os.environ.get(REGISTRY_ENV)
    return Registry(path) if path and os.path.isdir(path) else None


def register_process(pid: int, what: str, *, starttime: int | None = None, group: bool = False,
                     stop: str = "TERM", grace: float = DEFAULT_GRACE) -> None:
    """Record a process the current run started (nothing outside a run).  ``group``:
    stop its whole process group (it was started in a new session); ``stop``: the
    signal name without ``SIG`` (``QUIT`` for a postmaster: immediate shutdown)."""
    reg = current()
    if reg is not None:
        try:
            reg.add_process(pid, what, starttime=starttime, group=group, stop=stop, grace=grace)
        except OSError:
            pass  # recording is a safety net; a full disk must not fail the start itself


def register_dir(path: str | os.PathLike[str], what: str) -> None:
    """Record a directory the current run created and removes at its end."""
    reg = current()
    if reg is not None:
        try:
            reg.add_dir(path, what)
        except OSError:
            pass


def forget_dir(path: str | os.PathLike[str]) -> None:
    """The directory is to be kept after all (``--keep``)."""
    reg = current()
    if reg is not None:
        try:
            reg.forget_dir(path)
        except OSError:
            pass


# ------------------------------------------------------------------ the supervisor process

#: held while a run of this process is under a supervisor: ``$WALSIM_REGISTRY`` is
#: the process's, so a second run at the same time (another thread) would
#: register its servers in the first run's registry, and the first run's
#: supervisor would stop them when that run ends
_ONE_RUN = threading.Lock()


class RunSupervisor:
    """Context manager around one run: a registry, ``$WALSIM_REGISTRY`` set, and
    the supervisor process watching the CLI through a pipe.  One at a time per
    process (:class:`RunInProgress` otherwise)."""

    #: the label of the run holding ``_ONE_RUN``
    _current: str | None = None

    def __init__(self, label: str, rundir: Path | None = None) -> None:
        self.label = label
        self.rundir = rundir
        self.registry: Registry | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._old_env: str | None = None

    def __enter__(self) -> "RunSupervisor":
        if not _ONE_RUN.acquire(blocking=False):
            raise RunInProgress(
                f"cannot start {self.label}: {RunSupervisor._current or 'another run'} is in progress in this "
                f"process (pid {os.getpid()}); a run's registry of what it started is per process "
                f"(${REGISTRY_ENV}), so run scenarios in parallel as separate processes "
                "(walsim-cli run, pytest -n, walsim-cli explore --jobs)")
        RunSupervisor._current = self.label
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        RunSupervisor._current = None
        _ONE_RUN.release()

    def _start(self) -> None:
        self.registry = Registry.create(self.label, self.rundir)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2])] +
                                            [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "walsim.core.supervise", "watch", str(self.registry.path)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, env=env, cwd="/")
        self.registry.set_supervisor(self.proc.pid)
        self._old_env = os.environ.get(REGISTRY_ENV)
        os.environ[REGISTRY_ENV] = str(self.registry.path)

    def __exit__(self, *exc: object) -> None:
        try:
            self._finish()
        finally:
            self._release()

    def _finish(self) -> None:
        if self._old_env is None:
            os.environ.pop(REGISTRY_ENV, None)
        else:
            os.environ[REGISTRY_ENV] = self._old_env
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"done\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _mark_interrupted(rundir: Path, done: list[str]) -> None:
    """supervisor.json in the run directory; run.json says the run was interrupted."""
    try:
        (rundir / "supervisor.json").write_text(json.dumps(
            {"reason": "walsim-cli exited without tearing down (killed?)", "time": time.time(),
             "actions": done}, indent=1) + "\n")
        info_path = rundir / "run.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        if "exit_status" not in info:
            info.update(exit_status=INTERRUPTED, interrupted=True,
                        harness_error=info.get("harness_error") or "interrupted: walsim-cli was killed; "
                        "the supervisor tore the run down")
            tmp = info_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2) + "\n")
            os.replace(tmp, info_path)
    except OSError:
        pass


def watch(registry_path: Path) -> int:
    """The supervisor's main loop: wait for the CLI's pipe to close."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    reg = Registry(registry_path)
    said_done = False
    while True:
        try:
            line = sys.stdin.buffer.readline()
        except OSError:
            line = b""
        if not line:
            break
        if line.strip() == b"done":
            said_done = True
    done = reg.cleanup()
    rundir = reg.owner().get("rundir")
    if not said_done and rundir:
        _mark_interrupted(Path(rundir), done)
    reg.remove()
    return 0


# ------------------------------------------------------------------ garbage collection

@dataclass
class Leftover:
    registry: Registry
    owner: dict[str, Any]
    actions: list[str]


def registries(root: Path | None = None) -> Iterator[Registry]:
    base = (root or runtime_dir()) / "runs"
    if not base.is_dir():
        return
    for d in sorted(base.iterdir()):
        if d.is_dir() and not d.is_symlink():
            yield Registry(d)


def collect_garbage(*, dry_run: bool = False, say: Callable[[str], None] = lambda msg: None,
                    root: Path | None = None) -> list[Leftover]:
    """Clean the registries of dead runs (owner and supervisor both gone)."""
    out = []
    for reg in registries(root):
        owner = reg.owner()
        sup = owner.get("supervisor") or {}
        if owner.get("pid") and alive(int(owner["pid"]), int(owner.get("starttime", 0))):
            continue
        if sup.get("pid") and alive(int(sup["pid"]), int(sup.get("starttime", 0))):
            continue
        if dry_run:
            out.append(Leftover(reg, owner, reg.leftovers()))
            continue
        actions = reg.cleanup(say)
        if owner.get("rundir"):
            _mark_interrupted(Path(owner["rundir"]), actions)
        reg.remove()
        out.append(Leftover(reg, owner, actions))
    return out


def find_registry_of(path: Path, root: Path | None = None) -> Registry | None:
    """The registry that recorded directory ``path`` (e.g. a cluster's base directory)."""
    target = os.path.realpath(path)
    for reg in registries(root):
        if any(e.kind == "dir" and os.path.realpath(e.path) == target for e in reg.entries()):
            return reg
    return None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "watch":
        return watch(Path(argv[1]))
    print("usage: python3 -m walsim.core.supervise watch REGISTRY_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
