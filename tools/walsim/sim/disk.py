"""Disk faults under one node: the Python side of ``libwalsim-disk.so``.

The library is preloaded into a node's postmaster (its children inherit it)
and acts on files under the node's data directory according to rules kept in
a shared region that ``walsim-diskctl`` manages.  This module loads it and
drives ``walsim-diskctl``::

    disk = DiskFaults.load(node, journal=True)   # before the node starts
    node.start()
    disk.add("wal-eio", path="pg_wal/0*", ops=["fsync", "fdatasync"], do="errno:EIO")
    ...
    disk.delete("wal-eio")
    report = disk.power_cut()                    # SIGKILL + roll back unsynced writes
    node.start()

Files (all under ``<node base dir>/disk``, owned by the PostgreSQL user):
the region, the undo journal, the undo directory and the JSON Lines trace of
every fired fault (:meth:`DiskFaults.trace`).  The library itself is copied
into ``cluster.run_dir``, because the PostgreSQL user cannot read the build
tree.  See docs/disk.md for the rule syntax and the crash model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walsim.core.errors import DiskFaultError
from walsim.core.paths import library, library_candidates, not_found, program, program_candidates
from walsim.core.timeouts import Deadline, wait_until
from walsim.pg.addresses import add_preload, remove_preload

if TYPE_CHECKING:
    from walsim.pg.node import Node

LIBRARY_NAME = "libwalsim-disk.so"
REGION_FILE = "walsim-disk.region"
TRACE_FILE = "walsim-disk.trace.jsonl"
REGION_ENV = "WALSIM_DISK_REGION"

OPERATIONS = ("open", "read", "write", "fsync", "fdatasync", "sync_file_range", "rename",
              "unlink", "truncate", "fallocate", "close", "sync", "any")


@dataclass(frozen=True)
class DiskRule:
    """One rule, as ``walsim-diskctl rule add`` takes it (see docs/disk.md).

    ``when``: ``always``, ``nth:N``, ``after:N``, ``range:LO-HI`` or
    ``prob:P``; ``do``: ``errno:NAME``, ``short[:KEEP]``, ``torn[:KEEP]``,
    ``flip[:BYTE[.BIT]]``, ``delay:MICROSECONDS`` or ``lie``; ``limit``: fire
    at most that many times (0: no limit).
    """

    id: str
    path: str
    ops: tuple[str, ...]
    do: str
    when: str = "always"
    limit: int = 0

    def words(self) -> list[str]:
        return [f"id={self.id}", f"path={self.path}", f"ops={','.join(self.ops)}",
                f"when={self.when}", f"do={self.do}", f"limit={self.limit}"]


@dataclass(frozen=True)
class RuleStats:
    id: str
    rule: str
    calls: int
    fired: int


@dataclass(frozen=True)
class RollbackReport:
    """What ``walsim-diskctl crash`` undid."""

    records: int
    writes: int
    bytes: int
    files: int
    entries: int
    unrecoverable: int
    text: str


_ROLLBACK = re.compile(r"(\d+) journal records; undid (\d+) writes \((\d+) bytes\) in (\d+) files "
                       r"and (\d+) directory entries; (\d+) unrecoverable")


class DiskFaults:
    """The disk fault layer of one node (see the module documentation)."""

    def __init__(self, node: "Node", *, build: Path | None = None) -> None:
        self.node = node
        #: ``build``: a build directory to take bin/walsim-diskctl and lib/ from;
        #: otherwise both are found by :mod:`walsim.core.paths`
        self.build = Path(build) if build else None
        self.diskctl = self.build / "bin" / "walsim-diskctl" if self.build else program("walsim-diskctl")
        #: directory of the region, journal, undo files and trace (outside the data directory)
        self.node_dir = node.base_dir / "disk"
        self.region = self.node_dir / REGION_FILE
        self.trace_path = self.node_dir / TRACE_FILE
        self.library = node.cluster.run_dir / LIBRARY_NAME

    # ------------------------------------------------------------ set-up
    @classmethod
    def load(cls, node: "Node", *, journal: bool = False, strict_dirs: bool = False,
             seed: int = 0, trace: Path | None = None, build: Path | None = None) -> "DiskFaults":
        """Prepare the layer for ``node``: copy the library into the run
        directory, create the shared region, and add ``LD_PRELOAD`` to the
        node's environment.  It takes effect at the node's next start (load it
        before the first start, or restart the node).

        ``journal`` records unsynced writes so that :meth:`power_cut` can
        roll them back; ``strict_dirs`` makes only a directory fsync keep a
        new directory entry (POSIX) instead of ext4's "fsync of the new file
        keeps it too"; ``seed`` feeds ``prob:`` triggers and seeded flips;
        ``trace`` names the trace file (default ``<node>/disk/walsim-disk.trace.jsonl``;
        it must be writable by the PostgreSQL user).
        """
        self = cls(node, build=build)
        if trace is not None:
            self.trace_path = Path(trace).absolute()
        source = self.build / "lib" / LIBRARY_NAME if self.build else library(LIBRARY_NAME)
        if not source.is_file():
            raise DiskFaultError(f"{source} does not exist; run `make` first" if self.build
                                 else not_found(LIBRARY_NAME, library_candidates(LIBRARY_NAME)))
        if not self.diskctl.is_file():
            raise DiskFaultError(f"{self.diskctl} does not exist; run `make` first" if self.build
                                 else not_found("walsim-diskctl", program_candidates("walsim-diskctl")))
        runas = node.cluster.runas
        tmp = self.library.with_name(f".{LIBRARY_NAME}.tmp")
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o755)
        runas.chown(tmp)
        os.replace(tmp, self.library)
        runas.makedirs(self.node_dir, 0o755)
        args = ["init", "--data-dir", os.fspath(node.data_dir), "--seed", str(seed)]
        if journal:
            args.append("--journal")
        if strict_dirs:
            args.append("--strict-dirs")
        if trace is not None:
            args += ["--trace", os.fspath(self.trace_path)]
        self._ctl(args)
        # beside libwalsim-bind.so and libfaketime, which the node may preload too
        add_preload(node.environment, os.fspath(self.library))
        node.environment[REGION_ENV] = os.fspath(self.region)
        return self

    def unload(self) -> None:
        """Stop preloading the library at the node's next start."""
        remove_preload(self.node.environment, os.fspath(self.library))
        self.node.environment.pop(REGION_ENV, None)

    def _ctl(self, args: Sequence[str]) -> str:
        argv = [os.fspath(self.diskctl), "--node-dir", os.fspath(self.node_dir), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, close_fds=True)
        if proc.returncode != 0:
            raise DiskFaultError(f"{self.node.name}: walsim-diskctl {' '.join(args)} failed "
                                 f"(exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    # ------------------------------------------------------------ rules
    def add(self, id: str, *, path: str, ops: Sequence[str] | str, do: str, when: str = "always",
            limit: int = 0, replace: bool = False) -> DiskRule:
        """Install a rule; the node's processes apply it from their next call.

        With ``replace``, a rule with the same id is changed in place (its
        counters restart) instead of being refused."""
        if isinstance(ops, str):
            ops = (ops,)
        rule = DiskRule(id=id, path=path, ops=tuple(ops), do=do, when=when, limit=limit)
        self._ctl(["rule", "set" if replace else "add", *rule.words()])
        return rule

    def delete(self, id: str) -> None:
        """Remove one rule (heal)."""
        self._ctl(["rule", "del", id])

    def clear(self) -> None:
        """Remove every rule."""
        self._ctl(["rule", "del", "all"])

    def rules(self) -> list[RuleStats]:
        """The installed rules with their shared counters."""
        out = []
        for line in self._ctl(["rule", "list", "--json"]).splitlines():
            d = json.loads(line)
            out.append(RuleStats(d["id"], d["rule"], int(d["calls"]), int(d["fired"])))
        return out

    def stats(self, id: str) -> RuleStats:
        for r in self.rules():
            if r.id == id:
                return r
        raise DiskFaultError(f"{self.node.name}: no disk rule {id!r}")

    def trace(self) -> list[dict[str, Any]]:
        """Every fault fired so far (one dict per JSON line)."""
        try:
            text = self.trace_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # ------------------------------------------------------------ power cut
    def set_journal(self, on: bool) -> None:
        """Start or stop recording unsynced writes."""
        self._ctl(["journal", "on" if on else "off"])

    def reset_journal(self) -> None:
        """Forget every recorded unsynced write (as if all were synced now)."""
        self._ctl(["journal", "reset"])

    def rollback(self, *, dry_run: bool = False) -> RollbackReport:
        """Roll the (dead) node's files back to their last synced state."""
        args = ["crash"] + (["--dry-run"] if dry_run else [])
        text = self._ctl(args).strip()
        m = _ROLLBACK.search(text)
        if m is None:
            raise DiskFaultError(f"{self.node.name}: unexpected walsim-diskctl output: {text!r}")
        vals = [int(g) for g in m.groups()]
        return RollbackReport(*vals, text=text)

    def processes(self) -> list[int]:
        """Pids of the live processes that have this node's region mapped,
        i.e. every process of the node that loaded the layer."""
        want = os.fspath(self.region.resolve())
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/maps") as f:
                    if not any(line.rstrip("\n").endswith(want) for line in f):
                        continue
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if state not in ("Z", "X"):
                found.append(int(entry))
        return found

    def power_cut(self, *, timeout: float | None = None) -> RollbackReport:
        """Cut the power of the node: freeze every process of the node
        (SIGSTOP, so that none completes another write or fsync), SIGKILL
        them, then lose everything that was not synced (:meth:`rollback`).

        Killing only the postmaster is not a power cut: its children go on
        until they notice, and may finish a flush in the meantime."""
        deadline = Deadline(timeout, 60)
        stopped: set[int] = set()
        while True:
            # the postmaster may fork between two scans: scan until stable
            pids = set(self.processes()) - stopped
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            stopped |= pids
            if deadline.expired():
                raise DiskFaultError(f"{self.node.name}: processes {sorted(pids)} keep appearing")
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(self.processes, what=f"{self.node.name}: every process to exit after SIGKILL",
                   done=lambda v: not v, timeout=timeout, logs=[self.node.log_file])
        self.node.stop()            # reaps the postmaster; nothing left to signal
        return self.rollback()
