"""Python client of walsim-netd, the deterministic protocol-aware TCP fault proxy.

:class:`Netd` starts the daemon as a managed process (stopped on
:meth:`Netd.stop`, on leaving a ``with`` block, and at interpreter exit) and
speaks its control protocol: one command per line on a UNIX socket, one reply
line ``ok <json>`` or ``err <reason>``::

    with Netd.start(workdir, seed=7) as netd:
        host, port = netd.add_link("pg2", "127.0.0.1", primary.port)
        standby = cluster.create_standby("pg2", primary, via=(host, port))
        netd.add_fault("f1", link="pg2", kind="stall", dir="down")
        ...
        netd.heal("pg2")
        print(netd.stats())

The scenario engine drives it through the network fault layer
(:mod:`walsim.faults.net`).

Errors from the daemon raise :class:`NetdError` with its reason; the daemon's
state is unchanged by a refused command.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from walsim.core import supervise
from walsim.core.errors import NetdError
from walsim.core.paths import find_program, not_found, program, program_candidates
from walsim.core.timeouts import scaled, wait_until

__all__ = ["Netd", "NetdError", "netd_binary", "format_fault", "replay", "wait_conn"]


def netd_binary() -> Path:
    """The walsim-netd program (see :func:`walsim.core.paths.program`)."""
    return program("walsim-netd")


def _word(key: str, value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{key}={text!r}: values cannot be empty or contain spaces")
    return f"{key}={text}"


def format_fault(fault_id: str, link: str, kind: str, **params: object) -> str:
    """The control line ``fault add id=.. link=.. kind=.. key=value...``.

    ``None`` values are left out; booleans become ``1``/``0``; a list or tuple
    (``src=["pg1", "pg2"]``) becomes a comma-separated value.
    """
    words = ["fault", "add", _word("id", fault_id), _word("link", link), _word("kind", kind)]
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (list, tuple)):
            if not value or any("," in str(v) for v in value):
                raise ValueError(f"{key}={value!r}: a list of one or more names without commas")
            value = ",".join(str(v) for v in value)
        words.append(_word(key, value))
    return " ".join(words)


class Netd:
    """A running walsim-netd and its control connection."""

    def __init__(self, proc: subprocess.Popen[bytes], control: Path, trace: Path | None,
                 seed: int, log: Path, workdir: Path, owns_workdir: bool) -> None:
        self.proc = proc
        self.control = control
        self.trace_path = trace
        self.seed = seed
        self.log_path = log
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self._sock: socket.socket | None = None
        self._buf = b""
        atexit.register(self.stop)

    # ------------------------------------------------------------ life cycle
    @classmethod
    def start(cls, workdir: str | os.PathLike[str] | None = None, *, seed: int = 0,
              trace: bool = True, links: Mapping[str, tuple[str, str]] | None = None,
              faults: Iterable[str] = (), tls: str = "refuse", binary: Path | None = None,
              valgrind: bool = False, timeout: float | None = None,
              extra_args: Sequence[str] = (), max_files: int | None = None,
              die_with_parent: bool = False) -> "Netd":
        """Start the daemon.

        ``workdir`` holds the control socket, the trace (``netd-trace.jsonl``)
        and the daemon's log (``netd.log``); a temporary directory is made
        (and removed on :meth:`stop`) when it is None.  ``links`` maps a name
        to ``(listen "host:port", upstream "host:port")``; ``faults`` are
        rule strings for ``--fault``; ``extra_args`` more options (e.g.
        ``--startup-timeout``); ``max_files`` the descriptor limit (soft and
        hard) the daemon starts with; ``die_with_parent``: the daemon gets
        SIGTERM when the calling thread ends (test fixtures: a killed test
        worker runs no finalizer; a run has its supervisor instead).
        """
        owns = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="walsim-netd-")) if owns else Path(workdir)
        if owns:
            supervise.register_dir(wd, "walsim-netd work directory")
        wd.mkdir(parents=True, exist_ok=True)
        if binary is None and find_program("walsim-netd") is None:
            raise NetdError(not_found("walsim-netd", program_candidates("walsim-netd")))
        binary = binary or netd_binary()
        if not binary.exists():
            raise NetdError(f"{binary} does not exist: run make first")
        control = wd / "netd.sock"
        trace_path = wd / "netd-trace.jsonl" if trace else None
        log = wd / "netd.log"
        argv = [str(binary), "--control", str(control), "--seed", str(seed), "--tls", tls]
        if trace_path is not None:
            argv += ["--trace", str(trace_path)]
        for name, (listen, upstream) in (links or {}).items():
            argv += ["--link", f"{name}={listen},{upstream}"]
        for f in faults:
            argv += ["--fault", f]
        argv += list(extra_args)
        hooks: list[Callable[[], None]] = []
        if max_files is not None:
            hooks.append(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files)))
        if die_with_parent:
            hooks.append(supervise.die_with_parent())

        def preexec() -> None:
            for hook in hooks:
                hook()
        if valgrind:
            argv = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect", *argv]
        with open(log, "ab") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=preexec if hooks else None)
        netd = cls(proc, control, trace_path, seed, log, wd, owns)
        supervise.register_process(proc.pid, "walsim-netd")

        def ready() -> bool:
            if proc.poll() is not None:
                raise NetdError(f"walsim-netd exited with status {proc.returncode}: "
                                f"{log.read_text(errors='replace').strip()}")
            try:
                netd.command("ping")
                return True
            except (OSError, NetdError):
                netd._disconnect()
                return False
        try:
            wait_until(ready, what="walsim-netd control socket", timeout=scaled(timeout, 30), logs=[log])
        except BaseException:
            netd.stop()
            raise
        return netd

    def __enter__(self) -> "Netd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float | None = None) -> int | None:
        """Ask the daemon to shut down (SIGTERM, then SIGKILL); returns its exit status."""
        if self.proc.poll() is None:
            try:
                self.command("shutdown")
            except (OSError, NetdError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(timeout, 10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._disconnect()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._owns_workdir = False
        atexit.unregister(self.stop)
        return self.proc.returncode

    # ------------------------------------------------------------ protocol
    def _connect(self) -> socket.socket:
        if self._sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(scaled(10))
            s.connect(str(self.control))
            self._sock = s
            self._buf = b""
        return self._sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def raw(self, line: str) -> str:
        """Send one control line and return the reply line as the daemon wrote it."""
        if "\n" in line:
            raise ValueError("one command per call (no newline)")
        s = self._connect()
        try:
            s.sendall(line.encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise NetdError(f"walsim-netd closed the control connection after {line!r}")
                self._buf += chunk
        except OSError:
            self._disconnect()
            raise
        reply, _, self._buf = self._buf.partition(b"\n")
        return reply.decode()

    def command(self, line: str) -> Any:
        """Send a command; return the decoded JSON of ``ok`` or raise NetdError."""
        reply = self.raw(line)
        if reply.startswith("ok"):
            body = reply[2:].strip()
            return json.loads(body) if body else None
        if reply.startswith("err"):
            raise NetdError(f"{line.split(' ', 2)[0]}: {reply[3:].strip()}")
        raise NetdError(f"unexpected reply to {line!r}: {reply!r}")

    # ------------------------------------------------------------ commands
    def add_link(self, name: str, upstream_host: str, upstream_port: int, *,
                 listen_host: str = "127.0.0.1", listen_port: int = 0,
                 tls: str | None = None, proto: str | None = None) -> tuple[str, int]:
        """Add a link; returns the (host, port) clients should connect to.
        ``proto="raw"``: any TCP protocol, byte-level faults only (docs/netd.md,
        "Raw links")."""
        line = f"link add {_word('name', name)} listen={listen_host}:{listen_port} " \
               f"upstream={upstream_host}:{upstream_port}"
        if tls is not None:
            line += " " + _word("tls", tls)
        if proto is not None:
            line += " " + _word("proto", proto)
        res = self.command(line)
        return listen_host, int(res["port"])

    def add_node(self, name: str, addr: str) -> dict[str, Any]:
        """Connections from IPv4 address ``addr`` come from node ``name`` (``node add``)."""
        return self.command(f"node add {_word('name', name)} {_word('addr', addr)}")

    def del_node(self, name: str) -> None:
        self.command(f"node del {_word('name', name)[5:]}")

    def nodes(self) -> list[dict[str, Any]]:
        """The source nodes: ``[{"name", "addr"}]``."""
        return self.command("nodes")

    def del_link(self, name: str) -> None:
        self.command(f"link del {name}")

    def add_fault(self, fault_id: str, *, link: str, kind: str, **params: object) -> dict[str, Any]:
        """Install a fault (see docs/netd.md for kinds and parameters)."""
        return self.command(format_fault(fault_id, link, kind, **params))

    def del_fault(self, fault_id: str) -> None:
        self.command(f"fault del {fault_id}")

    def faults(self) -> list[dict[str, Any]]:
        return self.command("fault list")

    def heal(self, link: str | None = None) -> int:
        """Remove every fault (of one link); returns how many were removed."""
        res = self.command("heal" + (f" link={link}" if link else ""))
        return int(res["removed"])

    def links(self) -> list[dict[str, Any]]:
        return self.command("links")

    def stats(self, link: str | None = None) -> dict[str, Any]:
        return self.command("stats" + (f" link={link}" if link else ""))

    def conns(self, link: str) -> list[dict[str, Any]]:
        """Live connections of a link with their protocol state and counters."""
        for entry in self.stats(link)["links"]:
            if entry["name"] == link:
                return entry["conns"]
        return []

    def trace(self) -> list[dict[str, Any]]:
        """The trace so far (one dict per JSON line)."""
        if self.trace_path is None or not self.trace_path.exists():
            return []
        out = []
        for line in self.trace_path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out


def replay(prefix: str | os.PathLike[str], *, seed: int, faults: Iterable[str] = (),
           trace: str | os.PathLike[str] | None = None, output: str | os.PathLike[str] | None = None,
           link: str = "replay", chunk: int | None = None, binary: Path | None = None) -> dict[str, Any]:
    """Run ``walsim-netd --replay-input`` and return its JSON summary."""
    argv = [str(binary or netd_binary()), "--replay-input", str(prefix), "--seed", str(seed),
            "--replay-link", link]
    if trace is not None:
        argv += ["--trace", str(trace)]
    if output is not None:
        argv += ["--replay-output", str(output)]
    if chunk is not None:
        argv += ["--replay-chunk", str(chunk)]
    for f in faults:
        argv += ["--fault", f]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(120))
    if res.returncode == 2:
        raise NetdError(res.stderr.strip())
    return json.loads(res.stdout)


def wait_conn(netd: Netd, link: str, *, app: str | None = None, streaming: bool = False,
              timeout: float | None = None) -> dict[str, Any]:
    """Wait until a connection (of ``app``) is on ``link``; with ``streaming``, until
    it has passed XLogData downstream.  Returns its stats entry."""
    def probe() -> dict[str, Any] | None:
        for c in netd.conns(link):
            if app is not None and c["app"] != app:
                continue
            if streaming and c["down"]["by_type"]["w"] == 0:
                continue
            return c
        return None
    return wait_until(probe, what=f"a connection on netd link {link}", timeout=timeout,
                      logs=[netd.log_path])

