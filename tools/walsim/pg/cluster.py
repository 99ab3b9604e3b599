"""PostgreSQL replication clusters built the way an operator builds them.

>>> from walsim.pg.cluster import Cluster
>>> with Cluster() as c:                                   # doctest: +SKIP
...     pg1 = c.create_primary("pg1")
...     pg2 = c.create_standby("pg2", upstream=pg1)
...     pg1.execute("CREATE TABLE t (x int)")
...     pg1.wait_for_catchup(pg2)

A :class:`Cluster` owns one base directory (``--workdir``; by default a new
``walsim-*`` directory under the system temporary directory, or under
``$WALSIM_WORKDIR``), the port reservations of its nodes, a ``run_dir`` where
files the servers must read are put, and a passfile with the passwords of
the superuser and of the replication role.  When walsim runs as root, all of
it belongs to the PostgreSQL user (see :mod:`walsim.pg.runas`).

Primaries are made by ``initdb`` (data checksums, scram-sha-256 over TCP)
or by copying a cached initdb template, then configured as the PostgreSQL
documentation's "Log-Shipping Standby Servers" chapter says: ``wal_level =
replica``, ``max_wal_senders``, ``wal_keep_size``, ``hot_standby``,
``wal_log_hints``, a ``host replication`` line in pg_hba.conf and a role
``WITH REPLICATION LOGIN PASSWORD``.  Standbys are made by ``pg_basebackup -R
-X stream --checkpoint=fast`` from their upstream, or, where no
``pg_basebackup`` works with the server's major (the npm servers of 16-18
carry none, Debian's 15 backs up 13-15 only), by ``walsim-receiver
--base-backup -R`` over the replication protocol.

Any supported major (13 to 18): ``Cluster(version=17)`` finds PostgreSQL 17
(see :mod:`walsim.pg.pgbin`); what differs between majors is in
:mod:`walsim.pg.versions`.  Where walsim has to do something else than asked
on a major (a promotion by trigger file on 16+, a rewind without that
major's ``pg_rewind``), it says so in the node's log and through
:attr:`Cluster.on_note` (the run engine records those notes as events).

With ``snapshot=True`` a cluster copies its nodes from a cached snapshot
image instead (:mod:`walsim.pg.snapshot`): a primary and a standby built
once by the path above and stopped cleanly; every copy gets fresh passwords
at its first start, and :meth:`Cluster.start_nodes` starts standbys in
parallel.  The operator's path stays the default.

Every node has a loopback address of its own (:mod:`walsim.pg.addresses`):
it listens there and its processes connect from there; pg_hba.conf admits
walsim's 127.0.0.1 and every member's address, and is rewritten on every
node when a member gets an address.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from walsim.pg import addresses as addrs
from walsim.pg import procs
from walsim.core import paths, supervise
from walsim.core.errors import ClusterError, UnknownNode, WaitTimeout
from walsim.core.lsn import Lsn
from walsim.core.paths import library
from walsim.pg.legacy import translate_recovery_conf
from walsim.pg.node import MANAGED, UPSTREAM_KEYS, Node
from walsim.pg.pgbin import PgBin
from walsim.pg.ports import PortAllocator
from walsim.pg.runas import RunAs
from walsim.pg.snapshot import Image, copy_data, ensure_image, refill_in_background, snapshot_key, take
from walsim.pg.template import copy_template, ensure_template, run_initdb, set_superuser_password
from walsim.core.timeouts import scaled, wait_until

WORKDIR_ENV = "WALSIM_WORKDIR"
KEEP_ENV = "WALSIM_KEEP"
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,30}")
AUTH_METHODS = ("scram-sha-256", "md5")
#: how standbys get their data: pg_basebackup where one works with the server, else walsim-receiver
BACKUP_METHODS = ("auto", "pg_basebackup", "walsim-receiver")

#: settings of every primary (a standby inherits its upstream's); see docs/clusters.md
DEFAULT_SETTINGS: dict[str, object] = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "replica",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_keep_size": "128MB",
    "hot_standby": True,
    "wal_log_hints": True,
    "max_connections": 40,
    "shared_buffers": "32MB",
    "log_line_prefix": "%m [%p] %b: ",
    "log_timezone": "UTC",  # the judge places log lines on the run's clock
    "log_replication_commands": True,
    "wal_retrieve_retry_interval": "500ms",
}

def listen_addresses(host: str) -> str:
    """A node listens on its own address and on 127.0.0.1, so that configurations and
    clients that name 127.0.0.1 (or localhost) reach it as before; walsim, its links and
    :meth:`Node.conninfo` use the node's own address."""
    return host if host == addrs.HARNESS_ADDRESS else f"{host},{addrs.HARNESS_ADDRESS}"


_LIVE: "weakref.WeakSet[Cluster]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def live_clusters() -> list["Cluster"]:
    """Clusters with nodes that may still be running (for cleanup hooks)."""
    with _LIVE_LOCK:
        return list(_LIVE)


def stop_all_live(keep: bool = True) -> list[str]:
    """Tear down every live cluster of this process (atexit, signal handlers)."""
    problems: list[str] = []
    for c in live_clusters():
        problems += c.destroy(keep=keep)
    return problems


atexit.register(stop_all_live)


class Cluster:
    """A set of nodes sharing a base directory, passwords and port allocator.

    Parameters: ``base_dir`` (created if missing; default: a fresh temporary
    directory), ``pg_bin`` (a :class:`PgBin` or a bindir; default: discovery
    per :mod:`walsim.pg.pgbin`), ``pg_user`` (the user servers run as when
    walsim is root), ``ports`` (a :class:`PortAllocator`), ``keep`` (keep
    the base directory after :meth:`destroy`), ``parent_dir`` (where the
    default base directory is created), ``template_cache`` (copy a
    cached initdb template instead of running initdb for every primary),
    ``replication_user`` (the replication role name), ``version`` (the
    PostgreSQL major, 13 to 18; default: ``WALSIM_PG``, else discovery),
    ``backup_method`` (how standbys are made, :data:`BACKUP_METHODS`),
    ``node_addresses`` (False: every node on 127.0.0.1, no bind library), ``snapshot`` (copy
    nodes from a cached snapshot image rather than running initdb and
    ``pg_basebackup``; see :mod:`walsim.pg.snapshot`).
    """

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, *,
                 pg_bin: PgBin | str | os.PathLike[str] | None = None, pg_user: str | None = None,
                 ports: PortAllocator | None = None, keep: bool = False, template_cache: bool = True,
                 replication_user: str = "replicator", superuser: str = "postgres",
                 prefix: str = "walsim-", parent_dir: str | os.PathLike[str] | None = None,
                 node_addresses: bool = True, version: int | str | None = None,
                 backup_method: str = "auto", snapshot: bool = False) -> None:
        if isinstance(pg_bin, PgBin):
            self.pg = pg_bin
            if version is not None and pg_bin.major != int(str(version)):
                raise ClusterError(f"Cluster(version={version}) with a PgBin of PostgreSQL {pg_bin.major} "
                                   f"({pg_bin.bindir})")
        else:
            self.pg = PgBin(pg_bin, version=version) if pg_bin is not None or version is not None else PgBin()
        if backup_method not in BACKUP_METHODS:
            raise ClusterError(f"backup_method must be one of {', '.join(BACKUP_METHODS)}, not {backup_method!r}")
        self.backup_method = backup_method
        #: called as on_note(kind, fields) for every version note (see note())
        self.on_note: Callable[[str, dict[str, Any]], None] | None = None
        self.runas = RunAs.resolve(pg_user)
        self.ports = ports or PortAllocator()
        self.keep = keep or bool(os.environ.get(KEEP_ENV))
        self.template_cache = template_cache
        self.snapshot = snapshot
        #: primaries copied from a snapshot image whose passwords change at their first start
        self._pending_rotation: dict[str, Image] = {}
        self._state_lock = threading.Lock()
        self.superuser = superuser
        self.replication_user = replication_user
        self.replication_password = secrets.token_hex(16)
        self._superuser_password: str | None = None
        #: every member on its own loopback address (see "Node addresses" in docs/clusters.md)
        self.node_addresses = node_addresses
        self._addresses: dict[str, str] = {}
        self._bind_library: Path | None = None
        if base_dir is None:
            parent = Path(parent_dir or os.environ.get(WORKDIR_ENV) or tempfile.gettempdir())
            parent.mkdir(parents=True, exist_ok=True)
            self.base_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        else:
            self.base_dir = Path(base_dir).absolute()
            if self.base_dir.exists() and any(self.base_dir.iterdir()):
                raise ClusterError(f"work directory {self.base_dir} is not empty; choose a new one")
            self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.keep:
            supervise.register_dir(self.base_dir, "cluster directory")
        os.chmod(self.base_dir, 0o755)
        self.runas.chown(self.base_dir)
        self.runas.check_access(self.base_dir)
        #: a directory owned by the PostgreSQL user for files the servers must read
        self.run_dir = self.runas.makedirs(self.base_dir / "run", 0o755)
        #: libpq password file (0600, owned by the PostgreSQL user)
        self.passfile = self.run_dir / "pgpass"
        self.nodes: dict[str, Node] = {}
        self.destroyed = False
        self._write_passfile()
        self._save_state()

    def __repr__(self) -> str:
        return f"<Cluster {self.base_dir} nodes={list(self.nodes)}>"

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.destroy(keep=self.keep or exc_type is not None)

    # ---------------------------------------------------------------- nodes
    def node(self, name: str) -> Node:
        """The node called ``name``; :class:`UnknownNode` lists the known names."""
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownNode(f"no node {name!r} in cluster {self.base_dir} "
                              f"(nodes: {', '.join(self.nodes) or 'none'})") from None

    __getitem__ = node

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes.values()))

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.upstream is None and n.upstream_address is None]

    @property
    def major(self) -> int:
        """The PostgreSQL major version of every node of this cluster."""
        return self.pg.major

    def note(self, kind: str, node: "Node | None", text: str, **fields: Any) -> None:
        """Say that walsim did something else than asked because of the version
        (``kind``: ``promote_method_mapped``, ``rewind_fallback``, ...): a line
        in the node's log, and :attr:`on_note` (the run's events)."""
        if node is not None:
            try:
                with open(node.log_file, "a") as f:
                    f.write(f"walsim: note: {text}\n")
            except OSError:
                pass
        if self.on_note is not None:
            self.on_note(kind, {"node": node.name if node is not None else None, "text": text,
                                "pg_major": self.major, **fields})

    def _check_new_name(self, name: str) -> None:
        if not NAME_RE.fullmatch(name):
            raise ClusterError(f"invalid node name {name!r}: letters, digits, _ and -, starting "
                               f"with a letter, at most 31 characters")
        if name in self.nodes or name == "run":
            raise ClusterError(f"cluster {self.base_dir} already has a node {name!r}")

    # ------------------------------------------------------------- addresses
    def address(self, name: str) -> str:
        """The loopback address of member ``name`` (a node, or another member an HA
        manager adds: its DCS, monitor, witness), assigned on first use.  Every
        walsim-written pg_hba.conf is extended (running nodes reload) when a new
        address is assigned.  Without node addresses: 127.0.0.1."""
        if not self.node_addresses:
            return addrs.HARNESS_ADDRESS
        if name not in self._addresses:
            self._addresses[name] = addrs.nth_address(len(self._addresses) + 1)
            self._refresh_hba()
            self._save_state()
        return self._addresses[name]

    def addresses(self) -> dict[str, str]:
        """``{member: address}`` of every member that has one, in assignment order."""
        return dict(self._addresses)

    def hba_addresses(self) -> list[str]:
        """The ranges pg_hba.conf admits: walsim's 127.0.0.1/32 and every member's /32."""
        return list(dict.fromkeys([f"{addrs.HARNESS_ADDRESS}/32"] +
                                  [f"{a}/32" for a in self._addresses.values()]))

    @property
    def source_binding(self) -> bool:
        """Do the members' programs connect from their own address (libwalsim-bind.so
        is built)?  Without it every connection comes from 127.0.0.1."""
        return self.node_addresses and self.bind_library() is not None

    def bind_library(self) -> Path | None:
        """libwalsim-bind.so, copied once into :attr:`run_dir` (readable by the servers'
        user wherever the build directory is); None when it is not built (the Python
        package used without ``make``: nodes keep their own listen address, but
        connect from 127.0.0.1)."""
        if self._bind_library is None:
            source = library(addrs.BIND_LIBRARY)
            if not source.is_file():
                return None
            dest = self.run_dir / addrs.BIND_LIBRARY
            tmp = dest.with_name(f".{addrs.BIND_LIBRARY}.tmp")
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o755)
            self.runas.chown(tmp)
            os.replace(tmp, dest)
            self._bind_library = dest
        return self._bind_library

    def source_environment(self, name: str) -> dict[str, str]:
        """Environment variables that make a program's connections come from member
        ``name``'s address (``LD_PRELOAD`` of the bind library, ``WALSIM_SOURCE_ADDR``):
        for every program that acts for it (an HA manager, a tool run for the node).
        Empty without node addresses or without the library (see :meth:`bind_library`)."""
        lib = self.bind_library() if self.node_addresses else None
        if lib is None:
            return {}
        return addrs.source_environment(os.fspath(lib), self.address(name))

    def _refresh_hba(self) -> None:
        """Rewrite the pg_hba.conf walsim wrote for each node with the current
        addresses; a running node reloads and is waited for (its postmaster has
        re-read the file before this returns, so the new member can connect)."""
        for node in list(self.nodes.values()):
            if node.hba is None or not (node.data_dir / "pg_hba.conf").exists():
                continue
            self.runas.write_file(node.data_dir / "pg_hba.conf", self._hba(*node.hba), 0o600)
            if node.is_running():
                node.reload_and_wait()

    def _new_node(self, name: str, port: int | None, durable: bool) -> Node:
        if self.destroyed:
            raise ClusterError(f"cluster {self.base_dir} was destroyed")
        self._check_new_name(name)
        reservation = self.ports.reserve(port)
        node = Node(self, name, reservation, port_fixed=port is not None, durable=durable)
        try:
            self.runas.makedirs(node.base_dir, 0o700)
            node.log_file.touch()
            self.runas.chown(node.log_file)
        except BaseException:
            reservation.release()
            raise
        self.nodes[name] = node
        if self.node_addresses:
            node.host = self.address(name)
            lib = self.bind_library()
            if lib is not None:
                addrs.apply_source_environment(node.environment, os.fspath(lib), node.host)
        return node

    def add_managed_node(self, name: str, *, managed_by: str, port: int | None = None) -> Node:
        """A node whose PostgreSQL an HA manager creates, starts and stops (walsim never
        does: :meth:`Node.start` refuses).  Its directory and port are reserved here; the
        servers it runs are still stopped by :meth:`destroy` if the manager leaves them."""
        node = self._new_node(name, port, durable=False)
        node.managed_by = managed_by
        self._register_live(node)
        self._save_state()
        return node

    def set_superuser_password(self, password: str) -> None:
        """The superuser's password (written to the passfile), for nodes a manager initialised."""
        self._superuser_password = password
        self._write_passfile()

    def _write_passfile(self) -> None:
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace(":", "\\:")
        lines = [f"*:*:*:{esc(self.replication_user)}:{esc(self.replication_password)}"]
        if self._superuser_password is not None:
            lines.append(f"*:*:*:{esc(self.superuser)}:{esc(self._superuser_password)}")
        self.runas.write_file(self.passfile, "\n".join(lines) + "\n", 0o600)

    def _initdb_options(self, durable: bool, auth: str, extra: Sequence[str]) -> list[str]:
        opts = ["--auth-host", auth, "--auth-local", "peer", "--data-checksums", "-E", "UTF8",
                "--locale", "C"]
        if not durable:
            opts.append("--no-sync")
        return opts + list(extra)

    def _hba(self, auth: str, allow_from: str, extra: Sequence[str]) -> str:
        lines = [
            "# pg_hba.conf written by walsim (see docs/clusters.md)",
            "# TYPE  DATABASE        USER            ADDRESS                 METHOD",
            "local   all             all                                     peer",
        ]
        ranges = [allow_from] + [r for r in self.hba_addresses() if r != allow_from] \
            if self.node_addresses else [allow_from]
        for r in ranges:
            lines += [f"host    all             all             {r:<23} {auth}",
                      f"host    replication     {self.replication_user:<15} {r:<23} {auth}"]
        return "\n".join(lines + list(extra)) + "\n"

    def create_primary(self, name: str = "pg1", *, settings: Mapping[str, object] | None = None,
                       durable: bool = False, port: int | None = None, auth: str = "scram-sha-256",
                       allow_from: str = "127.0.0.1/32", hba_lines: Sequence[str] = (),
                       initdb_options: Sequence[str] = (), environment: Mapping[str, str] | None = None,
                       start: bool = True, timeout: float | None = None) -> Node:
        """Create (and by default start) a primary.

        ``settings`` override :data:`DEFAULT_SETTINGS` (legacy
        ``wal_keep_segments`` is translated); ``fsync = off`` unless
        ``durable=True``; ``auth`` is the pg_hba method for TCP
        (``scram-sha-256`` or ``md5``, as in the legacy tutorial);
        ``allow_from`` the address range of the ``host`` lines.  The
        replication role is created once the server runs.
        """
        if auth not in AUTH_METHODS:
            raise ClusterError(f"auth must be one of {', '.join(AUTH_METHODS)}, not {auth!r}")
        node = self._new_node(name, port, durable)
        try:
            secs = scaled(timeout, 120)
            options = self._initdb_options(durable, auth, initdb_options)
            image = None
            if self.snapshot:
                image = self._primary_image(node, settings, durable, auth, initdb_options, options, secs)
            if image is not None:
                self._copy_image(image, "primary", node, secs)
                if durable:
                    os.sync()
                if self._superuser_password is None:
                    self._superuser_password = secrets.token_hex(16)
                # The copy still answers to the image's passwords: they change at its first start.
                self._pending_rotation[name] = image
                node.image = image
            elif self.template_cache:
                template, _template_password = ensure_template(self.pg, self.runas, self.superuser,
                                                               options, node.log_file, secs)
                if self._superuser_password is None:
                    self._superuser_password = secrets.token_hex(16)
                copy_template(self.runas, template, node.data_dir, node.log_file, secs)
                # The copy still has the template's password, which every cluster built
                # from the template would share: the cluster's own, before any start.
                set_superuser_password(self.pg, self.runas, node.data_dir, self.superuser,
                                       self._superuser_password, "md5" if auth == "md5" else "scram-sha-256",
                                       node.log_file, secs)
                if durable:
                    os.sync()
            else:
                if self._superuser_password is None:
                    self._superuser_password = secrets.token_hex(16)
                run_initdb(self.pg, self.runas, node.data_dir, self._superuser_password, self.superuser,
                           options, node.log_file, secs)
            self._write_passfile()
            node.hba = (auth, allow_from, tuple(hba_lines))
            self.runas.write_file(node.data_dir / "pg_hba.conf", self._hba(*node.hba), 0o600)
            conf: dict[str, object] = dict(DEFAULT_SETTINGS)
            conf["listen_addresses"] = listen_addresses(node.host)
            if not durable:
                conf["fsync"] = False
            if auth == "md5":
                conf["password_encryption"] = "md5"
            node.settings = conf
            node.set_settings(dict(settings or {}), apply=None)
            node.environment.update(environment or {})
            self._save_state()
            if start:
                node.start(timeout=timeout)
                self.create_replication_role(node)
        except BaseException:
            node._teardown()
            raise
        return node

    def _primary_image(self, node: Node, settings: Mapping[str, object] | None, durable: bool, auth: str,
                       extra_options: Sequence[str], options: list[str], secs: float) -> Image:
        """The snapshot image for a primary with these settings, built if the cache has none."""
        conf: dict[str, object] = dict(DEFAULT_SETTINGS)
        if not durable:
            conf["fsync"] = False
        if auth == "md5":
            conf["password_encryption"] = "md5"
        node.settings = conf
        node.set_settings(dict(settings or {}), apply=None)  # no data directory yet: nothing written
        key = snapshot_key(self.pg, self.runas, self.superuser, self.replication_user, options, node.settings)
        image, built = ensure_image(key, lambda work: self._build_image(work, settings, durable, auth,
                                                                       extra_options, secs))
        if built:
            with open(node.log_file, "a") as f:
                f.write(f"walsim: built snapshot image {image.dir}\n")
        return image

    def _build_image(self, work: Path, settings: Mapping[str, object] | None, durable: bool, auth: str,
                     extra_options: Sequence[str], secs: float) -> tuple[dict[str, Any], dict[str, str]]:
        """A primary and a streaming standby made the operator's way, stopped cleanly
        (primary first, so that the standby holds its shutdown checkpoint), copied into ``work``."""
        with Cluster(pg_bin=self.pg, pg_user=self.runas.user if self.runas.switch else None, ports=self.ports,
                     template_cache=self.template_cache, replication_user=self.replication_user,
                     superuser=self.superuser, prefix="walsim-snapshot-build-",
                     parent_dir=self.base_dir.parent) as build:
            p = build.create_primary("primary", settings=settings, durable=durable, auth=auth,
                                     initdb_options=extra_options, timeout=secs)
            s = build.create_standby("standby", p, timeout=secs)
            p.stop("fast", timeout=secs)
            control = _controldata(p)
            ckpt = Lsn.parse(control["Latest checkpoint location"])
            seg_bytes = int(control["Bytes per WAL segment"])
            try:
                wait_until(lambda: s.lsn("replay"), what=f"the snapshot standby to replay the primary's "
                           f"shutdown checkpoint {ckpt}", done=lambda v: v is not None and v >= ckpt,
                           timeout=10, logs=[s.log_file], tolerate=(psycopg.OperationalError,))
            except WaitTimeout:
                pass  # a standby behind its primary is still a valid standby of it
            s.stop("fast", timeout=secs)
            copy_data(p.data_dir, work / "primary", secs)
            copy_data(s.data_dir, work / "standby", secs)
            meta = {"primary_settings": p.settings,
                    "standby_settings": {k: v for k, v in s.settings.items() if k not in UPSTREAM_KEYS},
                    "end_lsn": str(ckpt), "resume_segment": _segment_name(1, int(ckpt), seg_bytes),
                    "version": self.pg.version_string}
            secrets_ = {"superuser": build._superuser_password or "", "replication": build.replication_password}
        return meta, secrets_

    def _copy_image(self, image: Image, role: str, node: Node, secs: float) -> None:
        """The data directory of ``node`` from a spare copy of the image (a rename),
        else a copy; then spares are made again in the background."""
        if not take(image, role, node.data_dir):
            copy_data(image.primary_data if role == "primary" else image.standby_data, node.data_dir, secs)
            how = "copied"
        else:
            how = "moved a spare copy of"
        with open(node.log_file, "a") as f:
            f.write(f"walsim: {how} the {role} of snapshot image {image.dir}\n")
        refill_in_background(image)

    def _standby_image(self, up: Node, node: Node) -> Image | None:
        """The image to copy a standby of ``up`` from, or None (pg_basebackup): only when
        ``up`` itself came from an image and still holds the WAL segment a copy resumes from."""
        image = up.image if self.snapshot else None
        if image is None:
            return None
        if not (up.data_dir / "pg_wal" / image.resume_segment).exists():
            with open(node.log_file, "a") as f:
                f.write(f"walsim: {up.name} no longer holds WAL segment {image.resume_segment} that a "
                        f"snapshot standby resumes from; taking a base backup instead\n")
            return None
        return image

    def _started(self, node: Node) -> None:
        """Called by :meth:`Node.start` once a node accepts connections."""
        image = self._pending_rotation.pop(node.name, None)
        if image is not None:
            try:
                self._rotate_passwords(node, image)
            except BaseException:
                self._pending_rotation[node.name] = image
                raise

    def _rotate_passwords(self, node: Node, image: Image) -> None:
        """Give a primary copied from ``image`` this cluster's own passwords (the
        passfile already holds them), connecting once with the image's."""
        with psycopg.connect(node.conninfo(), password=image.superuser_password, autocommit=True,
                             connect_timeout=max(2, int(scaled(None, 30)))) as conn:
            for role, password in ((self.superuser, self._superuser_password),
                                   (self.replication_user, self.replication_password)):
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                          sql.Literal(password)))

    def start_nodes(self, nodes: Sequence[Node], *, timeout: float | None = None) -> None:
        """Start several stopped nodes at once (one thread each); when some fail,
        raises the first failure after every start has finished."""
        if len(nodes) <= 1:
            for n in nodes:
                n.start(timeout=timeout)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            futures = [pool.submit(n.start, timeout=timeout) for n in nodes]
        errors = [exc for f in futures if (exc := f.exception()) is not None]
        if errors:
            raise errors[0]

    def create_replication_role(self, node: Node) -> None:
        """``CREATE ROLE <replication_user> WITH REPLICATION LOGIN PASSWORD ...`` (if missing)."""
        exists = node.scalar("SELECT 1 FROM pg_roles WHERE rolname = %s", [self.replication_user])
        if exists:
            return
        node.execute(sql.SQL("CREATE ROLE {} WITH REPLICATION LOGIN PASSWORD {}").format(
            sql.Identifier(self.replication_user), sql.Literal(self.replication_password)))

    def create_standby(self, name: str, upstream: Node | str, *, via: tuple[str, int] | None = None,
                       slot: bool | str = False, settings: Mapping[str, object] | None = None,
                       recovery_conf: str | Mapping[str, object] | None = None,
                       durable: bool | None = None, port: int | None = None,
                       environment: Mapping[str, str] | None = None, start: bool = True,
                       wait_streaming: bool | None = None, timeout: float | None = None,
                       backup_method: str | None = None) -> Node:
        """Create a standby of ``upstream`` (a primary or, for cascading, a standby).

        The data comes from ``pg_basebackup -R -X stream --checkpoint=fast``
        run against ``upstream`` (progress goes to the new node's log), or
        from ``walsim-receiver --base-backup`` (see :meth:`take_base_backup`;
        ``backup_method`` overrides the cluster's).  The
        standby then streams from ``upstream``, or from ``via=(host, port)``
        when given (a network proxy or a reference sender in between).
        ``slot=True`` (or a name) creates a physical slot on the upstream and
        sets ``primary_slot_name``.  ``recovery_conf`` accepts legacy
        recovery.conf contents (text or dict) and translates them.  With
        ``wait_streaming`` (default: when not ``via``), returns once
        ``pg_stat_wal_receiver`` says ``streaming``.
        """
        up = self.node(upstream) if isinstance(upstream, str) else upstream
        if up.cluster is not self:
            raise ClusterError(f"upstream {up.name} belongs to another cluster")
        if not up.is_running():
            raise ClusterError(f"upstream {up.name} is not running ({up.status()}); cannot take a base backup")
        durable = up.durable if durable is None else durable
        node = self._new_node(name, port, durable)
        try:
            slot_name = (name.replace("-", "_").lower() if slot is True else slot) or None
            if slot_name:
                if not up.ensure_slot(slot_name):
                    raise ClusterError(f"replication slot {slot_name!r} already exists on {up.name}")
            secs = scaled(timeout, 300)
            image = self._standby_image(up, node)
            if image is not None:
                self._copy_image(image, "standby", node, secs)
                if durable:
                    os.sync()
                node.image = image
                node.backup_method = "snapshot"
            else:
                node.backup_method = self.take_base_backup(node, up, slot_name=slot_name, durable=durable,
                                                           timeout=secs, method=backup_method)
            inherited = {k: v for k, v in up.settings.items()
                         if k not in UPSTREAM_KEYS and k not in MANAGED and k != "promote_trigger_file"}
            if inherited.get("listen_addresses") == listen_addresses(up.host):
                inherited["listen_addresses"] = listen_addresses(node.host)  # its own, not its upstream's
            node.settings = inherited
            if up.hba is not None:
                # the copy pg_basebackup made is the upstream's file: rewrite it as this node's
                node.hba = up.hba
                self.runas.write_file(node.data_dir / "pg_hba.conf", self._hba(*node.hba), 0o600)
            if durable:
                node.settings.pop("fsync", None)
            else:
                node.settings["fsync"] = False
            node.environment.update(environment or {})
            node._set_upstream(up, via, slot_name)
            if settings:
                node.set_settings(dict(settings), apply=None)
            if recovery_conf is not None:
                conf, signal_file, notices = translate_recovery_conf(recovery_conf)
                if "primary_conninfo" in conf:
                    node.upstream_address = None
                node._apply_recovery_settings(conf, signal_file, notices)
            node._write_conf()
            self._save_state()
            if start:
                node.start(timeout=timeout)
                if wait_streaming if wait_streaming is not None else via is None:
                    node.wait_for_streaming(timeout=timeout)
        except BaseException:
            node._teardown()
            raise
        return node

    def take_base_backup(self, node: Node, up: Node, *, slot_name: str | None = None,
                         durable: bool = False, timeout: float | None = None,
                         method: str | None = None) -> str:
        """Fill ``node``'s (absent) data directory with a base backup of the
        running ``up``, configured as a standby (standby.signal,
        primary_conninfo); returns the method used.

        ``auto``: ``pg_basebackup -R -X stream`` when a pg_basebackup that
        backs up this major exists (its own, or Debian's 15 for 13-15), else
        ``walsim-receiver --base-backup -R`` (BASE_BACKUP over the
        replication protocol in the server's own format; WAL fetched inside
        the archive, so the upstream's wal_keep_size must cover the backup)."""
        method = method or self.backup_method
        if method not in BACKUP_METHODS:
            raise ClusterError(f"backup method must be one of {', '.join(BACKUP_METHODS)}, not {method!r}")
        secs = scaled(timeout, 300)
        if method == "auto":
            method = "pg_basebackup" if self.pg.has("pg_basebackup") else "walsim-receiver"
        conninfo = self._backup_conninfo(up, node.name)
        if method == "pg_basebackup":
            program = self.pg.path("pg_basebackup")
            argv = [str(program), "-D", str(node.data_dir), "-R", "-X", "stream",
                    "--checkpoint=fast", "--progress", "--verbose", "-d", conninfo]
            env = self.pg.env_for(program)
        else:
            program = paths.program("walsim-receiver")
            if not os.access(program, os.X_OK):
                raise ClusterError(f"{node.name}: no pg_basebackup works with PostgreSQL {self.major} and "
                                   f"{program} is missing: build walsim (make) to take base backups "
                                   f"with walsim-receiver")
            argv = [str(program), "--base-backup", "-D", str(node.data_dir), "-R", "-c", "fast",
                    "--verbose", "-d", conninfo]
            env = {}
        if slot_name:
            argv += ["-S", slot_name]
        if not durable:
            argv.append("--no-sync")
        # it acts for the node: its connections come from the node's address
        self.runas.run(argv, what=f"{node.name}: base backup from {up.name} ({method})", log=node.log_file,
                       cwd=node.base_dir, timeout=secs, env={**self.source_environment(node.name), **env})
        return method

    def _backup_conninfo(self, up: Node, name: str) -> str:
        from psycopg.conninfo import make_conninfo
        return make_conninfo(host=up.host, port=up.port, user=self.replication_user,
                             passfile=str(self.passfile), application_name=name)

    # ------------------------------------------------------------- teardown
    def _register_live(self, node: Node) -> None:
        with _LIVE_LOCK:
            _LIVE.add(self)

    def stop_all(self, mode: str = "fast", *, timeout: float | None = None) -> None:
        """Stop every running node (standbys first)."""
        for node in sorted(self.nodes.values(), key=lambda n: n.upstream is None):
            node.stop(mode, timeout=timeout)

    def destroy(self, keep: bool | None = None) -> list[str]:
        """Stop every node at once (immediate; SIGKILL of stragglers by
        recorded pid), release the ports and remove the base directory unless
        ``keep``.  Returns the problems met (empty when all went well)."""
        problems: list[str] = []
        nodes = list(self.nodes.values())
        if len(nodes) > 1:
            # every node at once: an immediate stop waits for the postmaster's children
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                for found in pool.map(lambda n: n._teardown(), nodes):
                    problems += found
        else:
            for node in nodes:
                problems += node._teardown()
        with _LIVE_LOCK:
            _LIVE.discard(self)
        keep = self.keep if keep is None else keep
        if not keep and not self.destroyed:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        elif keep:
            supervise.forget_dir(self.base_dir)
        self.destroyed = True
        return problems

    # ---------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        return {
            "owner_pid": os.getpid(),
            "owner_starttime": _own_starttime(),
            "base_dir": str(self.base_dir),
            "bindir": str(self.pg.bindir),
            "pg_major": self.pg.major,
            "pg_version": self.pg.version,
            "pg_user": self.runas.user,
            "superuser": self.superuser,
            "replication_user": self.replication_user,
            "passfile": str(self.passfile),
            "node_addresses": self.node_addresses,
            "addresses": self._addresses,
            "nodes": [{
                "name": n.name, "port": n.port, "host": n.host, "data_dir": str(n.data_dir),
                "log_file": str(n.log_file),
                "upstream": n.upstream.name if n.upstream is not None else None,
                "upstream_address": list(n.upstream_address) if n.upstream_address else None,
                "slot_name": n.slot_name,
            } for n in self.nodes.values()],
        }

    def _save_state(self) -> None:
        with self._state_lock:  # nodes started in parallel save it at once
            if self.destroyed or not self.base_dir.is_dir():
                return
            tmp = self.base_dir / ".cluster.json.tmp"
            tmp.write_text(json.dumps(self.state(), indent=2) + "\n")
            os.replace(tmp, self.base_dir / "cluster.json")

    @classmethod
    def attach(cls, base_dir: str | os.PathLike[str]) -> "Cluster":
        """A Cluster object for an existing base directory (from its cluster.json),
        e.g. to inspect or stop a cluster another process started.  Its nodes
        hold no port reservations; destroying it never removes the directory
        unless asked."""
        base = Path(base_dir).absolute()
        try:
            state = json.loads((base / "cluster.json").read_text())
        except FileNotFoundError:
            raise ClusterError(f"{base} is not a walsim cluster directory (no cluster.json)") from None
        self = cls.__new__(cls)
        self.pg = PgBin(state["bindir"])
        self.backup_method = "auto"
        self.on_note = None
        self.runas = RunAs.resolve(state["pg_user"])
        self.ports = PortAllocator()
        self.keep = True
        self.template_cache = True
        self.snapshot = False
        self._pending_rotation = {}
        self._state_lock = threading.Lock()
        self.superuser = state["superuser"]
        self.replication_user = state["replication_user"]
        self.replication_password = ""
        self._superuser_password = None
        self.base_dir = base
        self.run_dir = base / "run"
        self.passfile = Path(state["passfile"])
        self.nodes = {}
        self.destroyed = False
        self.node_addresses = bool(state.get("node_addresses", False))
        self._addresses = dict(state.get("addresses") or {})
        self._bind_library = None
        for entry in state["nodes"]:
            node = Node(self, entry["name"], None, port=entry["port"], port_fixed=True)
            node.host = entry.get("host", node.host)
            node.slot_name = entry.get("slot_name")
            if entry.get("upstream_address"):
                node.upstream_address = tuple(entry["upstream_address"])  # type: ignore[assignment]
            self.nodes[node.name] = node
        for entry in state["nodes"]:
            if entry.get("upstream"):
                self.nodes[entry["name"]].upstream = self.nodes.get(entry["upstream"])
        return self

    def owner(self) -> tuple[int, int] | None:
        """(pid, start time) of the process that created the cluster, from cluster.json."""
        try:
            state = json.loads((self.base_dir / "cluster.json").read_text())
            return int(state["owner_pid"]), int(state["owner_starttime"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _controldata(node: Node) -> dict[str, str]:
    """``pg_controldata`` of a stopped node, as a mapping of its labels to values."""
    out = node.cluster.runas.run([node.cluster.pg.path("pg_controldata"), "-D", node.data_dir],
                                 what=f"{node.name}: reading pg_control").stdout.decode()
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines()) if v}


def _segment_name(timeline: int, lsn: int, seg_bytes: int) -> str:
    """The WAL file name of the segment holding ``lsn`` (as pg_walfile_name)."""
    per_id = 0x100000000 // seg_bytes
    segno = lsn // seg_bytes
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def _own_starttime() -> int | None:
    info = procs.stat(os.getpid())
    return info.starttime if info is not None else None


def wait_all_streaming(primary: Node, standbys: Sequence[Node], timeout: float | None = None) -> None:
    """Wait until every standby appears ``streaming`` in its upstream's pg_stat_replication."""
    for s in standbys:
        up = s.upstream or primary
        wait_until(lambda: [r["state"] for r in up.replication_status() if r["application_name"] == s.name],
                   what=f"{s.name} streaming in {up.name}'s pg_stat_replication", done=lambda v: v == ["streaming"],
                   timeout=timeout, logs=[up.log_file, s.log_file], tolerate=(psycopg.OperationalError,),
                   max_interval=0.1)


__all__ = ["Cluster", "Node", "DEFAULT_SETTINGS", "live_clusters", "stop_all_live", "wait_all_streaming"]
