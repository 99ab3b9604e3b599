"""One PostgreSQL server of a walsim :class:`~walsim.pg.cluster.Cluster`.

Nodes are created by the cluster (``cluster.create_primary`` /
``cluster.create_standby``); this module drives them: start and stop,
signals to individual processes, promotion, re-pointing, pg_rewind, and
observation (LSNs, timelines, ``pg_stat_replication``, logs).

Files of a node ``pg1`` under the cluster's base directory::

    pg1/data/              the data directory (PGDATA), owned by the PostgreSQL user
    pg1/data/walsim.conf   settings walsim manages, included from postgresql.conf
    pg1/postgresql.log     server log (stderr of the postmaster) and the output of
                           initdb, pg_basebackup, pg_ctl and pg_rewind for this node

Hooks for other components:

* :attr:`Node.environment` — extra environment of the postmaster (e.g.
  ``LD_PRELOAD`` of the disk fault library, libfaketime's ``FAKETIME``),
  applied at every start.  Files postgres must load go in
  ``cluster.run_dir``.
* :meth:`Node.conninfo` — a libpq conninfo string (with the cluster's
  passfile) usable by any program that runs as root or as the PostgreSQL
  user; ``replication=True`` gives the physical replication connection.
* :meth:`Node.repoint` — point a standby at another node or at any
  ``host:port`` (the network fault proxy, the reference sender).
* :meth:`Node.postmaster_pid` and :meth:`Node.pids` — pids by pid file and
  parent pid, never by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal as _signal
import subprocess
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from walsim.pg import procs, versions
from walsim.core import supervise
from walsim.core.errors import ClusterError, ServerStartError
from walsim.pg.legacy import LegacySettingWarning, translate_recovery_conf, translate_settings
from walsim.core.lsn import Lsn
from walsim.core.timeouts import Deadline, scaled, wait_until

if TYPE_CHECKING:
    from walsim.pg.cluster import Cluster
    from walsim.pg.ports import PortReservation
    from walsim.pg.snapshot import Image

STOP_SIGNALS = {"smart": _signal.SIGTERM, "fast": _signal.SIGINT, "immediate": _signal.SIGQUIT}
LSN_FUNCTIONS = {
    "insert": "pg_current_wal_insert_lsn()",
    "write": "pg_current_wal_lsn()",
    "flush": "pg_current_wal_flush_lsn()",
    "receive": "pg_last_wal_receive_lsn()",
    "replay": "pg_last_wal_replay_lsn()",
}
CATCHUP_MODES = ("sent", "write", "flush", "replay")
SYNC_COMMIT_LEVELS = ("off", "local", "remote_write", "on", "remote_apply")
PROMOTE_METHODS = ("pg_ctl", "function", "trigger_file")
#: settings walsim writes for the node itself (callers cannot override them in settings=)
MANAGED = ("port", "cluster_name", "unix_socket_directories")
#: settings whose copy in postgresql.auto.conf (written by pg_basebackup -R / pg_rewind -R)
#: walsim removes, so that walsim.conf is the one place that says where a standby streams from
UPSTREAM_KEYS = ("primary_conninfo", "primary_slot_name")
SHMEM_IN_USE = re.compile(r"pre-existing shared memory block .* is still in use")
PORT_CONFLICT = re.compile(r"could not bind IPv4 address|could not create any TCP/IP sockets|"
                           r"Address already in use")


def format_value(value: object) -> str:
    """A postgresql.conf value: booleans as on/off, numbers bare, everything else quoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if any(c in text for c in "\n\r\0"):
        raise ClusterError(f"setting value {text!r} contains a line break or NUL, "
                           f"which postgresql.conf cannot hold")
    # Inside quotes postgresql.conf treats backslash as an escape (\n, \t, octal).
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


class Node:
    """A PostgreSQL server: a data directory, a port, a log, and the postmaster walsim started.

    Attributes most callers use: :attr:`name`, :attr:`host`, :attr:`port`,
    :attr:`data_dir`, :attr:`log_file`, :attr:`settings`,
    :attr:`environment`, :attr:`upstream` (the node a standby streams from,
    None for a primary or when streaming from an address), :attr:`upstream_address`.
    """

    def __init__(self, cluster: "Cluster", name: str, reservation: "PortReservation | None", *,
                 port: int | None = None, port_fixed: bool = False, durable: bool = False) -> None:
        self.cluster = cluster
        self.name = name
        #: the node's own loopback address (it listens and connects from there; see
        #: "Node addresses" in docs/clusters.md), 127.0.0.1 without node addresses
        self.host = "127.0.0.1"
        #: (auth method, allow_from, extra lines) of the pg_hba.conf walsim writes for it;
        #: None when walsim did not write it (a node someone else configures)
        self.hba: tuple[str, str, tuple[str, ...]] | None = None
        self.base_dir = cluster.base_dir / name
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgresql.log"
        self.durable = durable
        #: settings written to walsim.conf (by set_settings); applied at start/reload
        self.settings: dict[str, object] = {}
        #: extra environment of the postmaster, applied at every start (LD_PRELOAD, FAKETIME...)
        self.environment: dict[str, str] = {}
        self.upstream: Node | None = None
        self.upstream_address: tuple[str, int] | None = None
        self.slot_name: str | None = None
        #: how the node's data was made: None (initdb/template), "pg_basebackup" or "walsim-receiver"
        self.backup_method: str | None = None
        self._reservation: PortReservation | None = reservation
        if reservation is None and port is None:
            raise ValueError("Node needs a port reservation or a port")
        #: the TCP port (on 127.0.0.1); may change at start if another program took it
        self.port: int = reservation.port if reservation is not None else int(port)  # type: ignore[arg-type]
        self._port_fixed = port_fixed
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused: list[tuple[int, int]] = []
        #: every PostgreSQL pid seen for this node, with its start time (for straggler cleanup)
        self._known: dict[int, int] = {}
        #: the snapshot image the data directory was copied from (None: initdb or pg_basebackup)
        self.image: "Image | None" = None
        #: the HA manager that starts and stops this node's PostgreSQL (None: walsim does)
        self.managed_by: str | None = None

    def __repr__(self) -> str:
        return f"<Node {self.name} port={self.port} {self.status()}>"

    # ================================================================ naming
    @property
    def run_dir(self) -> Path:
        return self.cluster.run_dir

    def conninfo(self, replication: bool = False, *, dbname: str = "postgres",
                 user: str | None = None, application_name: str | None = None,
                 host: str | None = None, port: int | None = None, **extra: object) -> str:
        """libpq conninfo of this node, authenticating with the cluster's passfile.

        ``replication=True`` gives a physical replication connection as the
        cluster's replication role (what ``pg_receivewal``, a standby or
        ``walsim-receiver`` use); otherwise a normal connection as the
        superuser.  ``host``/``port`` override the address (e.g. to go
        through a proxy); a ``port`` other than the node's without ``host`` is
        a proxy on 127.0.0.1 (where walsim's proxies listen), not the node's own
        address.
        """
        if host is None and port is not None and int(port) != int(self.port):
            host = "127.0.0.1"
        params: dict[str, Any] = {
            "host": host or self.host,
            "port": port or self.port,
            "user": user or (self.cluster.replication_user if replication else self.cluster.superuser),
            "passfile": str(self.cluster.passfile),
        }
        if replication:
            params["replication"] = "true"
            params["dbname"] = "replication"
        else:
            params["dbname"] = dbname
        if application_name:
            params["application_name"] = application_name
        params.update({k: v for k, v in extra.items() if v is not None})
        return make_conninfo(**params)

    # ============================================================= settings
    def set_settings(self, settings: Mapping[str, object], *, apply: str | None = "reload") -> None:
        """Change settings (written to ``walsim.conf``); ``None`` as a value removes a key.

        ``apply``: ``"reload"`` (default; reload if running), ``"restart"``
        (restart if running) or None (only write the file; takes effect at
        the next start).  Legacy keys (``wal_keep_segments``,
        ``trigger_file``) are translated with a :class:`LegacySettingWarning`.
        """
        if apply not in ("reload", "restart", None):
            raise ValueError(f"apply must be 'reload', 'restart' or None, not {apply!r}")
        # PostgreSQL's setting names are case-insensitive; walsim keys are lower case.
        settings = {str(k).strip().lower(): v for k, v in settings.items()}
        for key in settings:
            if key in MANAGED:
                raise ClusterError(f"{self.name}: {key} is managed by walsim and cannot be set "
                                   f"(the node's port is node.port)")
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", key):
                raise ClusterError(f"{self.name}: {key!r} is not a setting name")
        removed = [k for k, v in settings.items() if v is None]
        given = {k: v for k, v in settings.items() if v is not None}
        translated, notices = translate_settings(given, self._wal_segment_bytes()
                                                 if "wal_keep_segments" in given else 16 << 20)
        for value in translated.values():
            format_value(value)  # reject what postgresql.conf cannot hold before changing anything
        self._notice(notices)
        self._drop_unsupported(translated)
        for k in removed:
            self.settings.pop(k, None)
        self.settings.update(translated)
        self._write_conf()
        if apply == "reload" and self.is_running():
            self.reload()
        elif apply == "restart" and self.is_running():
            self.restart()

    def append_conf(self, text: str, filename: str = "postgresql.conf") -> None:
        """Append raw lines to a configuration file of the data directory.

        Lines appended to postgresql.conf come after the include of
        walsim.conf, so they win over :meth:`set_settings`.  Takes effect at
        the next reload/start.
        """
        path = self.data_dir / filename
        if not self.data_dir.is_dir():
            raise ClusterError(f"{self.name}: no data directory at {self.data_dir}")
        with open(path, "a") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        self.cluster.runas.chown(path)

    def _notice(self, notices: Iterable[str]) -> None:
        for text in notices:
            warnings.warn(f"{self.name}: {text}", LegacySettingWarning, stacklevel=3)
            try:
                with open(self.log_file, "a") as f:
                    f.write(f"walsim: notice: {text}\n")
            except OSError:
                pass

    def _conf_text(self) -> str:
        lines = [f"# Written by walsim for node {self.name}; rewritten at every start.",
                 "# Change with Node.set_settings(); lines appended to postgresql.conf win.",
                 f"port = {self.port}",
                 f"cluster_name = {format_value(self.name)}",
                 "unix_socket_directories = ''"]
        for key, value in self.settings.items():
            lines.append(f"{key} = {format_value(value)}")
        return "\n".join(lines) + "\n"

    def _write_conf(self) -> None:
        """Write walsim.conf, make postgresql.conf include it, and drop the
        upstream keys pg_basebackup/pg_rewind put in postgresql.auto.conf."""
        if not self.data_dir.is_dir():
            return
        runas = self.cluster.runas
        runas.write_file(self.data_dir / "walsim.conf", self._conf_text(), 0o600)
        main = self.data_dir / "postgresql.conf"
        text = main.read_text()
        if "include_if_exists = 'walsim.conf'" not in text:
            with open(main, "a") as f:
                f.write("\n# walsim: settings managed by walsim (see docs/clusters.md)\n"
                        "include_if_exists = 'walsim.conf'\n")
        auto = self.data_dir / "postgresql.auto.conf"
        if auto.exists() and any(k in self.settings for k in UPSTREAM_KEYS):
            lines = auto.read_text().splitlines(keepends=True)
            kept = [ln for ln in lines if not re.match(r"\s*(%s)\s*=" % "|".join(UPSTREAM_KEYS), ln)]
            if kept != lines:
                runas.write_file(auto, "".join(kept), 0o600)

    def _wal_segment_bytes(self) -> int:
        if not (self.data_dir / "global" / "pg_control").exists():
            return 16 << 20
        pg = self.cluster.pg
        if self.is_running():
            value = self.scalar("SELECT setting::bigint * CASE unit WHEN '8kB' THEN 8192 "
                                "WHEN 'B' THEN 1 ELSE 1048576 END FROM pg_settings "
                                "WHERE name = 'wal_segment_size'")
            return int(value) if value else 16 << 20
        if pg.has("pg_controldata"):
            program = pg.path("pg_controldata")
            out = self.cluster.runas.run([program, "-D", self.data_dir], what=f"{self.name}: reading pg_control",
                                         env=pg.env_for(program)).stdout.decode()
            m = re.search(r"Bytes per WAL segment:\s+(\d+)", out)
            return int(m.group(1)) if m else 16 << 20
        # 15+ computes wal_segment_size from pg_control for postgres -C on a stopped server
        out = self.cluster.runas.run([pg.path("postgres"), "-C", "wal_segment_size", "-D", self.data_dir],
                                     what=f"{self.name}: postgres -C wal_segment_size", env=pg.env).stdout.decode()
        m = re.fullmatch(r"\s*(\d+)\s*(MB|GB|kB|B)?\s*", out)
        if not m:
            return 16 << 20
        return int(m.group(1)) * {"GB": 1 << 30, "MB": 1 << 20, "kB": 1 << 10, "B": 1, None: 1 << 20}[m.group(2)]

    # ======================================================== upstream / standby
    def _primary_conninfo(self) -> str:
        if self.upstream_address is not None:
            host, port = self.upstream_address
        elif self.upstream is not None:
            host, port = self.upstream.host, self.upstream.port
        else:
            raise ClusterError(f"{self.name} has no upstream")
        # What pg_basebackup -R writes, plus application_name (the name the
        # upstream's pg_stat_replication and synchronous_standby_names use).
        return make_conninfo(host=host, port=port, user=self.cluster.replication_user,
                             passfile=str(self.cluster.passfile), application_name=self.name)

    def _set_upstream(self, upstream: "Node | None", via: tuple[str, int] | None,
                      slot: str | bool | None) -> None:
        """Record where this standby streams from and write primary_conninfo.

        ``slot``: None keeps the current slot name, False stops using a slot,
        True uses the node's name, a string that name.  When the upstream is a
        running node, the slot is created there if missing (physical slots
        are not copied to standbys, so after a failover the new primary has
        none until someone creates it)."""
        self.upstream = upstream
        self.upstream_address = (via[0], int(via[1])) if via is not None else None
        if slot is False:
            self.slot_name = None
        elif slot is True:
            self.slot_name = self.name.replace("-", "_").lower()
        elif slot is not None:
            self.slot_name = slot
        self.settings["primary_conninfo"] = self._primary_conninfo()
        if self.slot_name:
            self.settings["primary_slot_name"] = self.slot_name
            if upstream is not None and upstream.is_running():
                upstream.ensure_slot(self.slot_name)
        else:
            self.settings.pop("primary_slot_name", None)

    def ensure_slot(self, name: str) -> bool:
        """Create the physical replication slot ``name`` here unless it exists
        (reserving WAL at once); returns True if it was created."""
        exists = self.scalar("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [name])
        if exists:
            return False
        self.execute("SELECT pg_create_physical_replication_slot(%s, true)", [name])
        return True

    def repoint(self, target: "Node | str", port: int | None = None, *, slot: str | bool | None = None,
                apply: str = "reload", timeout: float | None = None) -> None:
        """Stream from another node, or from ``host:port`` (a proxy, a reference sender).

        ``node.repoint(other_node)``, ``node.repoint("127.0.0.1", 6543)``.
        PostgreSQL 15 re-reads ``primary_conninfo`` on reload and restarts the
        WAL receiver with it, so a running standby is reloaded (``apply="restart"``
        to restart instead).  ``slot``: None keeps the node's slot name (and
        creates the slot on a new upstream node that lacks it), False stops
        using a slot, True or a name sets ``primary_slot_name``.
        """
        if isinstance(target, Node):
            if port is not None:
                raise ValueError("repoint(node) takes no port")
            if target is self:
                raise ClusterError(f"{self.name} cannot stream from itself")
            self._set_upstream(target, None, slot)
        else:
            if port is None:
                raise ValueError("repoint(host, port): port missing")
            self._set_upstream(None, (target, port), slot)
        self._write_conf()
        if not (self.data_dir / "standby.signal").exists():
            self.cluster.runas.write_file(self.data_dir / "standby.signal", "", 0o600)
            if self.is_running():
                # A primary cannot become a standby by reload.
                apply = "restart"
        if self.is_running():
            if apply == "restart":
                self.restart(timeout=timeout)
            else:
                self.reload()
        self.cluster._save_state()

    # =========================================================== life cycle
    def status(self) -> str:
        """``uninitialized``, ``stopped``, ``running``, ``paused`` (SIGSTOP),
        ``zombie`` (dead but not reaped) or ``crashed`` (pid file left by a
        postmaster that is gone)."""
        if not (self.data_dir / "PG_VERSION").exists():
            return "uninitialized"
        if self._proc is not None:
            info = procs.stat(self._proc.pid)
            if info is not None and info.state == "Z":
                return "zombie"
        pid = self._pidfile_pid()
        if pid is None:
            return "stopped"
        info = procs.stat(pid)
        if info is None or info.state in ("Z", "X"):
            return "zombie" if info is not None else "crashed"
        if info.state == "T":
            return "paused"
        return "running"

    def is_running(self) -> bool:
        return self.status() in ("running", "paused")

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _pidfile_pid(self) -> int | None:
        lines = self._pidfile_lines()
        try:
            return int(lines[0]) if lines else None
        except ValueError:
            return None

    def postmaster_pid(self) -> int | None:
        """Pid of the running postmaster (from postmaster.pid), None if not running."""
        pid = self._pidfile_pid()
        if pid is not None and procs.alive(pid):
            return pid
        return None

    def _postmaster_env(self) -> dict[str, str]:
        env = dict(self.cluster.pg.env)
        for key, value in self.environment.items():
            # a library path of the node's own (a fault layer) goes before the installation's
            env[key] = f"{value}:{env[key]}" if key == "LD_LIBRARY_PATH" and key in env else value
        return self.cluster.runas.environment(env)

    def log_position(self) -> int:
        """Current size of the node log: pass it as ``since`` to :meth:`wait_for_log`."""
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _translate_recovery_conf_file(self) -> None:
        path = self.data_dir / "recovery.conf"
        if not path.exists():
            return
        settings, signal_file, notices = translate_recovery_conf(path.read_text(), source=str(path))
        self._apply_recovery_settings(settings, signal_file, notices)
        done = path.with_name("recovery.conf.walsim-translated")
        os.replace(path, done)

    def _drop_unsupported(self, settings: dict[str, object]) -> None:
        """Remove settings the node's major does not have, with a note
        (``promote_trigger_file`` on 16+: a trigger_file promotion then uses
        pg_ctl promote)."""
        major = self.cluster.major
        if "promote_trigger_file" in settings and not versions.has_promote_trigger_file(major):
            value = settings.pop("promote_trigger_file")
            self.cluster.note("setting_dropped", self,
                              f"PostgreSQL {major} has no promote_trigger_file (removed in 16); "
                              f"promote_trigger_file = {value!r} is not written, and a promotion by "
                              f"trigger file uses pg_ctl promote", setting="promote_trigger_file")

    def _apply_recovery_settings(self, settings: Mapping[str, object], signal_file: str | None,
                                 notices: list[str]) -> None:
        self._notice(notices)
        settings = dict(settings)
        self._drop_unsupported(settings)
        self.settings.update(settings)
        if signal_file:
            self.cluster.runas.write_file(self.data_dir / signal_file, "", 0o600)

    def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start the postmaster (as the PostgreSQL user, with :attr:`environment`).

        With ``wait``, returns when it accepts connections (``ready`` in
        postmaster.pid); raises :class:`ServerStartError` quoting the log if
        it exits first.  When the port turns out to be taken by another
        program and the port was chosen by walsim, retries with a new port.
        """
        if self.managed_by is not None:
            raise ClusterError(f"{self.name} is managed by {self.managed_by}: walsim does not start "
                               "its PostgreSQL (the manager does)")
        status = self.status()
        if status in ("running", "paused"):
            raise ClusterError(f"{self.name} is already running (pid {self.postmaster_pid()})")
        if status == "uninitialized":
            raise ClusterError(f"{self.name}: no data directory at {self.data_dir}")
        self._reap()
        self._wait_leftovers()
        self._translate_recovery_conf_file()
        if self._reservation is None:
            self._reserve_port(self.port if self._port_fixed else None)
        for attempt in range(5):
            self._write_conf()
            offset = self.log_position()
            self._spawn()
            try:
                if wait:
                    self._wait_ready(offset, timeout)
                else:
                    self._wait_started(offset, timeout)
                self._check_all_bound(offset)
                break
            except ServerStartError as exc:
                excerpt = exc.log_excerpt or ""
                if SHMEM_IN_USE.search(excerpt) and attempt < 4:
                    # Backends of a crashed postmaster that walsim never saw
                    # still hold the old shared memory; they exit on their own
                    # once they notice the postmaster died.
                    self._wait_leftovers()
                    time.sleep(0.2 * (attempt + 1))
                    continue
                conflict = PORT_CONFLICT.search(excerpt)
                if not conflict or self._port_fixed or attempt == 4:
                    raise
                old = self.port
                self._reserve_port(None)
                with open(self.log_file, "a") as f:
                    f.write(f"walsim: port {old} was taken by another program; retrying on {self.port}\n")
        if wait:
            self.cluster._started(self)
        self.cluster._save_state()

    def _check_all_bound(self, offset: int) -> None:
        """A node listens on two addresses (its own and 127.0.0.1): PostgreSQL starts
        when it could bind only one of them, so a port another program holds on
        the other is a conflict too.  Stop the server at once and report it as a
        failed start (which retries on a new port when walsim chose the port)."""
        excerpt = self.log_since(offset)
        missed = re.findall(r'could not bind IPv[46] address "([^"]+)"', excerpt)
        if not missed:
            return
        pid = self.postmaster_pid()
        if pid is not None:
            os.kill(pid, _signal.SIGQUIT)
            self._wait_gone(pid, "postmaster", None)
            self._reap()
        raise ServerStartError(f"{self.name}: port {self.port} is taken on {', '.join(missed)} by another "
                               f"program", log_excerpt=excerpt)

    def _wait_leftovers(self, grace: float = 10) -> None:
        """Before a start: wait for the processes of a previous (crashed)
        incarnation to exit, then SIGKILL the ones that do not, by recorded pid."""
        left = {p: st for p, st in self._known.items() if procs.alive(p, st)}
        if left:
            deadline = Deadline(grace)
            while any(procs.alive(p, st) for p, st in left.items()) and not deadline.expired():
                time.sleep(0.02)
            for pid, st in left.items():
                if procs.kill_if_same(pid, st, _signal.SIGKILL):
                    with open(self.log_file, "a") as f:
                        f.write(f"walsim: killed pid {pid} left over from a previous postmaster\n")
            wait_until(lambda: [p for p, st in left.items() if procs.alive(p, st)],
                       what=f"{self.name}: leftover processes {sorted(left)} to exit",
                       done=lambda v: not v, timeout=grace, logs=[self.log_file])
        self._known.clear()

    def _reserve_port(self, port: int | None) -> None:
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None
        self._reservation = self.cluster.ports.reserve(port)
        self.port = self._reservation.port
        if self.upstream_address is None:
            for other in self.cluster.nodes.values():
                if other.upstream is self and "primary_conninfo" in other.settings:
                    other.settings["primary_conninfo"] = other._primary_conninfo()
                    other._write_conf()

    def _spawn(self) -> None:
        runas = self.cluster.runas
        with open(self.log_file, "ab") as log:
            runas.chown(self.log_file)
            # A new session: Ctrl-C in the terminal reaches walsim, which stops
            # the node in order, never the postmaster directly.
            self._proc = runas.popen([self.cluster.pg.path("postgres"), "-D", self.data_dir],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env=self._postmaster_env(), cwd=self.base_dir,
                                     start_new_session=True)
        info = procs.stat(self._proc.pid)
        if info is not None:
            self._known[info.pid] = info.starttime
            # its own session: the whole process group, immediate shutdown, if walsim dies
            supervise.register_process(info.pid, f"postmaster of {self.name}", starttime=info.starttime,
                                       group=True, stop="QUIT")
        self.cluster._register_live(self)

    def _start_failure(self, offset: int, why: str) -> ServerStartError:
        excerpt = self.log_since(offset)
        lines = [ln for ln in excerpt.splitlines() if re.search(r"FATAL|ERROR|PANIC|LOG:  |could not", ln)]
        shown = "\n".join("    " + ln for ln in (lines or excerpt.splitlines())[-12:])
        return ServerStartError(f"{self.name}: {why}; PostgreSQL's log ({self.log_file}) says:\n{shown}",
                                log_excerpt=excerpt, log_file=str(self.log_file))

    def _wait_started(self, offset: int, timeout: float | None) -> None:
        assert self._proc is not None
        proc = self._proc

        def probe() -> bool:
            if proc.poll() is not None:
                raise self._start_failure(offset, f"postmaster exited with status {proc.returncode} "
                                                  f"while starting")
            return self._pidfile_pid() == proc.pid

        wait_until(probe, what=f"{self.name}: postmaster.pid of pid {proc.pid}", timeout=timeout,
                   logs=[self.log_file])

    def _wait_ready(self, offset: int, timeout: float | None) -> None:
        assert self._proc is not None
        proc = self._proc

        def probe() -> str:
            if proc.poll() is not None:
                raise self._start_failure(offset, f"postmaster exited with status {proc.returncode} "
                                                  f"while starting")
            lines = self._pidfile_lines()
            if len(lines) >= 8 and lines[0].strip() == str(proc.pid):
                return lines[7].strip()
            return "no postmaster.pid yet"

        # A short poll: reading postmaster.pid costs nothing, and a start takes ~0.1 s.
        wait_until(probe, what=f"{self.name} to accept connections (postmaster.pid status 'ready')",
                   done=lambda s: s in ("ready", "standby"), timeout=timeout, logs=[self.log_file],
                   max_interval=0.05)
        self._record_children()

    def stop(self, mode: str = "fast", *, timeout: float | None = None) -> None:
        """Stop the server: ``smart`` (SIGTERM), ``fast`` (SIGINT) or
        ``immediate`` (SIGQUIT), the signals ``pg_ctl stop -m`` sends; waits
        until the postmaster and its children are gone.  A paused node is
        resumed first; a stopped or crashed node is left as is."""
        if mode not in STOP_SIGNALS:
            raise ValueError(f"stop mode must be one of {', '.join(STOP_SIGNALS)}, not {mode!r}")
        pid = self.postmaster_pid()
        if pid is None:
            self._reap()
            return
        self._record_children()
        if self._paused:
            self.resume()
        os.kill(pid, STOP_SIGNALS[mode])
        self._wait_gone(pid, f"{self.name} to stop ({mode})", timeout)

    def _wait_gone(self, pid: int, what: str, timeout: float | None) -> None:
        def gone() -> object:
            alive = [p for p, st in self._known.items() if procs.alive(p, st)]
            return not alive or alive

        wait_until(gone, what=what, done=lambda v: v is True, timeout=timeout, logs=[self.log_file])
        # Reap only now that the postmaster is known to be dead: reaping inside
        # the loop could run just before it exits and leave a zombie behind.
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                raise ClusterError(f"{self.name}: postmaster {pid} exited but could not be reaped") from None
        self._reap()
        self._known.clear()

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None

    def restart(self, mode: str = "fast", *, timeout: float | None = None) -> None:
        self.stop(mode, timeout=timeout)
        self.start(timeout=timeout)

    def reload(self) -> None:
        """Re-read the configuration (SIGHUP to the postmaster, as ``pg_ctl reload``)."""
        pid = self.postmaster_pid()
        if pid is None:
            raise ClusterError(f"{self.name} is not running; cannot reload")
        self._write_conf()
        os.kill(pid, _signal.SIGHUP)

    def reload_and_wait(self, timeout: float | None = None) -> None:
        """Reload and return once the postmaster has re-read its files
        (``pg_conf_load_time()`` of a new session moved): a connection made after
        this meets the new pg_hba.conf."""
        before = self.scalar("SELECT pg_conf_load_time()")
        self.reload()
        wait_until(lambda: self.scalar("SELECT pg_conf_load_time()"), what=f"{self.name} to reload",
                   done=lambda t: t is not None and t > before, timeout=timeout,
                   logs=[self.log_file], tolerate=(psycopg.OperationalError,))

    def _record_children(self) -> list[procs.ProcInfo]:
        pid = self.postmaster_pid()
        if pid is None:
            return []
        info = procs.stat(pid)
        if info is not None:
            self._known[pid] = info.starttime
        kids = procs.children(pid)
        for k in kids:
            self._known[k.pid] = k.starttime
        return kids

    def pids(self, kind: str) -> list[int]:
        """Pids of the node's processes of one kind: ``postmaster``,
        ``walsender``, ``walreceiver``, ``startup``, ``checkpointer``,
        ``bgwriter``, ``walwriter``, ``backend`` (client backends), ...

        Found as children of the postmaster (pid file) classified by their
        process title, so this works on a paused node too.
        """
        k = procs.normalize_kind(kind)
        pm = self.postmaster_pid()
        if pm is None:
            return []
        if k == "postmaster":
            return [pm]
        return sorted(c.pid for c in self._record_children()
                      if procs.classify(c.title, self.name) == k)

    def pid(self, kind: str, timeout: float | None = None) -> int:
        """The pid of the one process of ``kind`` (waits until it exists)."""
        found = wait_until(lambda: self.pids(kind), what=f"a {kind} process on {self.name}",
                           timeout=timeout, logs=[self.log_file])
        if len(found) > 1:
            raise ClusterError(f"{self.name} has {len(found)} {kind} processes ({found}); use pids()")
        return found[0]

    def kill(self, sig: int = _signal.SIGKILL, process: str = "postmaster", *,
             wait: bool = True, timeout: float | None = None) -> list[int]:
        """Send ``sig`` to every process of kind ``process`` (see :meth:`pids`).

        ``kill()`` is ``kill -9`` of the postmaster; with ``wait`` it returns
        once the postmaster and the children it had are gone (the data
        directory is then left as a crash leaves it); for SIGSTOP/SIGCONT,
        once the processes are (no longer) stopped.  Returns the pids
        signalled.
        """
        kind = procs.normalize_kind(process)
        self._record_children()
        targets = self.pids(kind)
        if not targets:
            raise ClusterError(f"{self.name} has no {kind} process to signal ({self.status()})")
        for pid in targets:
            st = self._known.get(pid)
            if st is None or not procs.kill_if_same(pid, st, sig):
                continue
        if sig in (_signal.SIGSTOP, _signal.SIGCONT) and wait:
            self._wait_stopped(targets, sig == _signal.SIGSTOP, timeout)
        if sig == _signal.SIGKILL and wait:
            if kind == "postmaster":
                self._wait_gone(targets[0], f"{self.name}: postmaster and children to exit after SIGKILL",
                                timeout)
            else:
                wait_until(lambda: [p for p in targets if procs.alive(p)],
                           what=f"{self.name}: {kind} {targets} to exit after SIGKILL",
                           done=lambda v: not v, timeout=timeout, logs=[self.log_file])
        return targets

    def _wait_stopped(self, pids: Sequence[int], stopped: bool, timeout: float | None = None) -> None:
        """Signals are delivered asynchronously: wait until every pid that
        still lives is (or is no longer) in the stopped state."""
        def states() -> dict[int, str]:
            return {p: info.state for p in pids if (info := procs.stat(p)) is not None
                    and info.state not in ("Z", "X")}

        wait_until(states, what=f"{self.name}: pids {list(pids)} to be {'stopped' if stopped else 'running'}",
                   done=lambda st: all((v == "T") == stopped for v in st.values()),
                   timeout=timeout, logs=[self.log_file])

    def pause(self) -> None:
        """Freeze the whole node: SIGSTOP the postmaster, then every child."""
        pm = self.postmaster_pid()
        if pm is None:
            raise ClusterError(f"{self.name} is not running; cannot pause")
        if self._paused:
            return
        stopped: list[tuple[int, int]] = []
        if procs.kill_if_same(pm, procs.stat(pm).starttime, _signal.SIGSTOP):  # type: ignore[union-attr]
            stopped.append((pm, procs.stat(pm).starttime))  # type: ignore[union-attr]
        for child in self._record_children():
            if procs.kill_if_same(child.pid, child.starttime, _signal.SIGSTOP):
                stopped.append((child.pid, child.starttime))
        self._paused = stopped
        self._wait_stopped([p for p, _ in stopped], True)

    def resume(self) -> None:
        """SIGCONT every process :meth:`pause` stopped (children first)."""
        for pid, st in reversed(self._paused):
            procs.kill_if_same(pid, st, _signal.SIGCONT)
        pids = [p for p, _ in self._paused]
        self._paused = []
        self._wait_stopped(pids, False)

    # =============================================================== queries
    def connect(self, *, dbname: str = "postgres", autocommit: bool = True,
                timeout: float | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection as the superuser (autocommit by default)."""
        return psycopg.connect(self.conninfo(dbname=dbname), autocommit=autocommit,
                               connect_timeout=max(2, int(scaled(timeout, 30))), **kwargs)

    def query(self, query: str | sql.Composable, params: Sequence[Any] | Mapping[str, Any] | None = None,
              *, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Rows of a query (parameters bound by psycopg, never interpolated)."""
        with self.connect(dbname=dbname) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []

    def query_dicts(self, query: str | sql.Composable,
                    params: Sequence[Any] | Mapping[str, Any] | None = None,
                    *, dbname: str = "postgres") -> list[dict[str, Any]]:
        with self.connect(dbname=dbname, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []

    def scalar(self, query: str | sql.Composable, params: Sequence[Any] | Mapping[str, Any] | None = None,
               *, dbname: str = "postgres") -> Any:
        """The first column of the first row (None when no row)."""
        rows = self.query(query, params, dbname=dbname)
        return rows[0][0] if rows else None

    def execute(self, statement: str | sql.Composable,
                params: Sequence[Any] | Mapping[str, Any] | None = None, *, dbname: str = "postgres") -> None:
        """Run a statement in its own autocommit transaction."""
        with self.connect(dbname=dbname) as conn:
            conn.execute(statement, params)  # type: ignore[arg-type]

    # ========================================================== observation
    def in_recovery(self) -> bool:
        return bool(self.scalar("SELECT pg_is_in_recovery()"))

    def lsn(self, kind: str = "write") -> Lsn | None:
        """``insert``, ``write``, ``flush`` (primary) or ``receive``, ``replay`` (standby) LSN."""
        if kind not in LSN_FUNCTIONS:
            raise ValueError(f"lsn kind must be one of {', '.join(LSN_FUNCTIONS)}, not {kind!r}")
        value = self.scalar(f"SELECT {LSN_FUNCTIONS[kind]}::text")
        return Lsn.parse(value) if value is not None else None

    def timeline(self) -> int:
        """The timeline this node writes (primary) or receives/replays (standby).

        On a primary, the timeline of the current WAL insert position; on a
        standby, the timeline of the WAL the receiver last got, or of the last
        checkpoint when no receiver runs.
        """
        row = self.query("""
            SELECT pg_is_in_recovery(),
                   CASE WHEN NOT pg_is_in_recovery()
                        THEN ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int
                   END,
                   (SELECT received_tli FROM pg_stat_wal_receiver),
                   (SELECT timeline_id FROM pg_control_checkpoint())""")[0]
        in_rec, primary_tli, received_tli, checkpoint_tli = row
        if not in_rec:
            return int(primary_tli)
        return int(received_tli or checkpoint_tli)

    def switch_wal(self) -> Lsn:
        """``pg_switch_wal()``: close the current WAL segment; returns the switch record's end."""
        return Lsn.parse(self.scalar("SELECT pg_switch_wal()::text"))

    def checkpoint(self) -> None:
        """``CHECKPOINT`` (a restartpoint on a standby)."""
        self.execute("CHECKPOINT")

    def replication_status(self) -> list[dict[str, Any]]:
        """Rows of ``pg_stat_replication`` (one per walsender), as dicts."""
        return self.query_dicts("SELECT * FROM pg_stat_replication ORDER BY application_name, pid")

    def wal_receiver_status(self) -> dict[str, Any] | None:
        """The row of ``pg_stat_wal_receiver``, None when no WAL receiver runs."""
        rows = self.query_dicts("SELECT * FROM pg_stat_wal_receiver")
        return rows[0] if rows and rows[0].get("pid") is not None else None

    def walsender_pid(self, standby: "Node | str") -> int | None:
        """Pid of the walsender serving ``standby`` (by application_name)."""
        app = standby.name if isinstance(standby, Node) else standby
        return self.scalar("SELECT pid FROM pg_stat_replication WHERE application_name = %s", [app])

    def table_checksum(self, table: str, *, dbname: str = "postgres") -> str:
        """md5 over the table's rows in a deterministic order (``schema.table`` allowed)."""
        ident = sql.Identifier(*table.split(".", 1))
        q = sql.SQL("SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ':' || "
                    "count(*) FROM {} AS t").format(ident)
        return str(self.scalar(q, dbname=dbname))

    def wait_for_catchup(self, standby: "Node | str", mode: str = "replay", lsn: Lsn | str | None = None,
                         *, timeout: float | None = None) -> Lsn:
        """Wait until ``standby`` (a node or an application_name) streaming
        from this node has reached ``lsn`` in ``mode`` (``sent``, ``write``,
        ``flush``, ``replay``), according to this node's pg_stat_replication.

        The target defaults to this node's current write LSN (replay LSN on a
        standby).  Returns the target.
        """
        if mode not in CATCHUP_MODES:
            raise ValueError(f"mode must be one of {', '.join(CATCHUP_MODES)}, not {mode!r}")
        app = standby.name if isinstance(standby, Node) else standby
        if lsn is None:
            target = self.lsn("replay") if self.in_recovery() else self.lsn("write")
            assert target is not None
        else:
            target = Lsn(lsn) if not isinstance(lsn, Lsn) else lsn

        def probe() -> tuple[str, str | None] | None:
            rows = self.query(sql.SQL("SELECT state, {}::text FROM pg_stat_replication "
                                      "WHERE application_name = %s").format(sql.Identifier(f"{mode}_lsn")),
                              [app])
            return rows[0] if rows else None

        def done(row: tuple[str, str | None] | None) -> bool:
            return row is not None and row[0] == "streaming" and row[1] is not None \
                and Lsn.parse(row[1]) >= target

        logs = [self.log_file] + ([standby.log_file] if isinstance(standby, Node) else [])
        wait_until(probe, what=f"{app} to reach {mode}_lsn >= {target} in {self.name}'s "
                               f"pg_stat_replication (state, {mode}_lsn)",
                   done=done, timeout=timeout, logs=logs, tolerate=(psycopg.OperationalError,))
        return target

    def wait_for_replay(self, lsn: Lsn | str, *, timeout: float | None = None) -> None:
        """Wait until this standby has replayed ``lsn`` (by its own pg_last_wal_replay_lsn)."""
        target = Lsn(lsn) if not isinstance(lsn, Lsn) else lsn
        wait_until(lambda: self.lsn("replay"), what=f"{self.name} to replay up to {target}",
                   done=lambda v: v is not None and v >= target, timeout=timeout,
                   logs=[self.log_file], tolerate=(psycopg.OperationalError,))

    def wait_for_log(self, pattern: str, since: int = 0, *, timeout: float | None = None) -> re.Match[str]:
        """Wait until the node log, from byte offset ``since``, matches ``pattern``."""
        rx = re.compile(pattern, re.MULTILINE)

        def probe() -> re.Match[str] | None:
            return rx.search(self.log_since(since))

        return wait_until(probe, what=f"/{pattern}/ in {self.log_file} after offset {since}",
                          timeout=timeout, logs=[self.log_file])  # type: ignore[return-value]

    def wait_for_streaming(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Wait until this standby's WAL receiver is ``streaming``; returns its row."""
        return wait_until(self.wal_receiver_status, what=f"{self.name}'s pg_stat_wal_receiver.status "
                                                         f"= streaming",
                          done=lambda r: r is not None and r.get("status") == "streaming",
                          timeout=timeout, logs=[self.log_file], tolerate=(psycopg.OperationalError,))

    # ================================================================ roles
    def set_synchronous_standbys(self, spec: str | Sequence[str] | None, *,
                                 synchronous_commit: str | None = None) -> None:
        """Set ``synchronous_standby_names`` (``"FIRST 1 (a, b)"``, ``"ANY 2 (a, b, c)"``,
        a list of names meaning ``FIRST 1 (...)``, or None/"" for asynchronous) and reload."""
        if spec is None:
            value = ""
        elif isinstance(spec, str):
            value = spec
        else:
            value = "FIRST 1 (" + ", ".join('"' + s.replace('"', '""') + '"' for s in spec) + ")"
        changes: dict[str, object] = {"synchronous_standby_names": value}
        if synchronous_commit is not None:
            if synchronous_commit not in SYNC_COMMIT_LEVELS:
                raise ValueError(f"synchronous_commit must be one of {', '.join(SYNC_COMMIT_LEVELS)}")
            changes["synchronous_commit"] = synchronous_commit
        self.set_settings(changes)
        if self.is_running():
            wait_until(lambda: self.scalar("SHOW synchronous_standby_names"),
                       what=f"{self.name} to reload synchronous_standby_names = {value!r}",
                       done=lambda v: v == value, logs=[self.log_file])

    def set_synchronous_commit(self, level: str) -> None:
        """Set the node-wide ``synchronous_commit`` (``off``, ``local``, ``remote_write``,
        ``on``, ``remote_apply``) and reload."""
        if level not in SYNC_COMMIT_LEVELS:
            raise ValueError(f"synchronous_commit must be one of {', '.join(SYNC_COMMIT_LEVELS)}")
        self.set_settings({"synchronous_commit": level})

    def promote(self, method: str = "pg_ctl", *, timeout: float | None = None) -> int:
        """Promote this standby and return its new timeline.

        ``pg_ctl`` runs ``pg_ctl promote -w``; ``function`` calls
        ``pg_promote(wait => true)``; ``trigger_file`` creates the
        ``promote_trigger_file`` (configured first, with a reload, if the node
        has none); PostgreSQL 16 removed that setting, so there it runs
        ``pg_ctl promote`` and says so (:meth:`Cluster.note`).  Returns once
        the node is out of recovery.
        """
        if method not in PROMOTE_METHODS:
            raise ValueError(f"promote method must be one of {', '.join(PROMOTE_METHODS)}, not {method!r}")
        if not self.in_recovery():
            raise ClusterError(f"{self.name} is not a standby (not in recovery); cannot promote")
        secs = scaled(timeout)
        runas = self.cluster.runas
        major = self.cluster.major
        if method == "trigger_file" and not versions.has_promote_trigger_file(major):
            self.cluster.note("promote_method_mapped", self,
                              f"PostgreSQL {major} has no promote_trigger_file (removed in 16): "
                              f"promoting {self.name} with pg_ctl promote instead of a trigger file",
                              asked="trigger_file", used="pg_ctl")
            method = "pg_ctl"
        if method == "pg_ctl":
            runas.run([self.cluster.pg.path("pg_ctl"), "promote", "-D", self.data_dir, "-w",
                       "-t", str(max(1, int(secs)))], what=f"{self.name}: pg_ctl promote",
                      log=self.log_file, timeout=secs + 10, env=self.cluster.pg.env)
        elif method == "function":
            ok = self.scalar("SELECT pg_promote(true, %s)", [max(1, int(secs))])
            if not ok:
                raise ClusterError(f"{self.name}: pg_promote() returned false (promotion not "
                                   f"finished within {secs:.0f}s); see {self.log_file}")
        else:
            trigger = self.settings.get("promote_trigger_file")
            if not trigger:
                trigger = str(self.base_dir / "promote.trigger")
                self.set_settings({"promote_trigger_file": trigger})
                wait_until(lambda: self.scalar("SHOW promote_trigger_file"),
                           what=f"{self.name} to reload promote_trigger_file", done=lambda v: v == trigger,
                           logs=[self.log_file])
            runas.write_file(str(trigger), "", 0o600)
        wait_until(self.in_recovery, what=f"{self.name} to leave recovery after promotion ({method})",
                   done=lambda v: v is False, timeout=timeout, logs=[self.log_file],
                   tolerate=(psycopg.OperationalError,))
        self.upstream = None
        self.upstream_address = None
        for key in UPSTREAM_KEYS:
            self.settings.pop(key, None)
        self._write_conf()
        self.cluster._save_state()
        return self.timeline()

    def rewind(self, source: "Node", *, timeout: float | None = None) -> None:
        """Run ``pg_rewind`` against the running ``source`` so that this
        stopped node (an old primary) can follow it; configures it as a
        standby of ``source`` (not started).  A node that crashed is first
        brought to a consistent state by pg_rewind itself (single-user mode)."""
        if self.is_running():
            raise ClusterError(f"{self.name} is running; stop it before pg_rewind")
        if not source.is_running():
            raise ClusterError(f"pg_rewind source {source.name} is not running")
        self._reap()
        secs = scaled(timeout, 300)
        pg = self.cluster.pg
        if not pg.has("pg_rewind"):
            self._rebuild_from(source, secs)
            return
        if not source.in_recovery():
            # A freshly promoted primary writes its new timeline to pg_control
            # only at its next checkpoint; without one pg_rewind compares the
            # old timeline and wrongly concludes "no rewind required".
            source.execute("CHECKPOINT")
        program = pg.path("pg_rewind")
        self.cluster.runas.run(
            [program, "--target-pgdata", self.data_dir,
             "--source-server", source.conninfo(), "--write-recovery-conf", "--progress"],
            what=f"{self.name}: pg_rewind from {source.name}", log=self.log_file,
            cwd=self.base_dir, timeout=secs, env={**self.cluster.source_environment(self.name),
                                                  **pg.env_for(program)})
        # pg_rewind copied the source's config files; walsim.conf is rewritten for this node.
        self._set_upstream(source, None, None)
        self._write_conf()
        self.cluster.runas.write_file(self.data_dir / "standby.signal", "", 0o600)
        self.cluster._save_state()

    def _rebuild_from(self, source: "Node", timeout: float) -> None:
        """The rewind of a major without ``pg_rewind``: throw the data
        directory away and take a fresh base backup of ``source``."""
        major = self.cluster.major
        self.cluster.note("rewind_fallback", self,
                          f"no pg_rewind for PostgreSQL {major}: rebuilding {self.name} from a fresh "
                          f"base backup of {source.name} instead of rewinding it", source=source.name)
        settings = dict(self.settings)
        shutil.rmtree(self.data_dir)
        self.backup_method = self.cluster.take_base_backup(self, source, slot_name=None,
                                                           durable=self.durable, timeout=timeout)
        self.settings = settings
        if self.hba is not None:
            # the backup brought the source's pg_hba.conf: this node's own again
            self.cluster.runas.write_file(self.data_dir / "pg_hba.conf", self.cluster._hba(*self.hba), 0o600)
        self._set_upstream(source, None, None)
        self._write_conf()
        self.cluster.runas.write_file(self.data_dir / "standby.signal", "", 0o600)
        self.cluster._save_state()

    def demote(self, new_upstream: "Node", *, timeout: float | None = None, start: bool = True) -> None:
        """Turn an old primary into a standby of ``new_upstream``: stop (fast),
        pg_rewind, configure streaming, start."""
        if self.is_running():
            self.stop("fast", timeout=timeout)
        self.rewind(new_upstream, timeout=timeout)
        if start:
            self.start(timeout=timeout)

    # =============================================================== teardown
    def _teardown(self, timeout: float | None = None) -> list[str]:
        """Stop this node at any cost (immediate, then SIGKILL of every known pid).
        Returns complaints (empty when everything went as expected)."""
        problems = []
        if self._paused:
            self.resume()
        # Processes frozen by kill(SIGSTOP, process=...) would never act on the
        # shutdown signal: thaw every child first.
        pm_now = self.postmaster_pid()
        if pm_now is not None:
            for child in [procs.stat(pm_now)] + self._record_children():
                if child is not None and child.state == "T":
                    procs.kill_if_same(child.pid, child.starttime, _signal.SIGCONT)
        try:
            if self.postmaster_pid() is not None:
                self.stop("immediate", timeout=timeout if timeout is not None else 30)
        except Exception as exc:  # noqa: BLE001 - teardown must go on
            problems.append(f"{self.name}: immediate stop failed: {exc}")
        leftovers = [(p, st) for p, st in self._known.items() if procs.alive(p, st)]
        pm = self._pidfile_pid()
        if pm is not None:
            info = procs.stat(pm)
            if info is not None and info.state not in ("Z", "X") and "postgres" in info.title:
                leftovers.append((pm, info.starttime))
        for pid, st in leftovers:
            procs.kill_if_same(pid, st, _signal.SIGCONT)
            if procs.kill_if_same(pid, st, _signal.SIGKILL):
                problems.append(f"{self.name}: killed straggler pid {pid}")
        deadline = Deadline(10)
        while any(procs.alive(p, st) for p, st in leftovers) and not deadline.expired():
            time.sleep(0.05)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name}: postmaster {self._proc.pid} did not exit")
            self._proc = None
        self._known.clear()
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None
        return problems

    def release_port(self) -> None:
        """Give back the port reservation (the node keeps its port number for a later start)."""
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None

