"""``walsim-cli cluster up|down|status``: the streaming-replication tutorial as one command.

``up`` builds a primary and N streaming standbys (optionally cascading and
synchronous), prints how to connect to each, and keeps them running until
Ctrl-C, SIGTERM or ``walsim-cli cluster down --dir D``.  ``status`` prints
one row per node (role, state, timeline, LSNs, lag, replication state).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from walsim.pg import procs
from walsim.core import supervise
from walsim.core.errors import UsageError
from walsim.pg.cluster import Cluster, wait_all_streaming
from walsim.core.errors import ClusterError, WalsimError
from walsim.core.lsn import Lsn
from walsim.pg.node import Node
from walsim.core.timeouts import wait_until
from walsim.commands._pgversion import add_pg_argument

NAME = "cluster"
HELP = "start, inspect and stop a PostgreSQL streaming replication cluster"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cluster_command", metavar="ACTION")
    up = sub.add_parser("up", help="create and run a primary with streaming standbys until Ctrl-C or down",
                        description="Create a primary and streaming standbys and keep them running "
                                    "until Ctrl-C, SIGTERM or `walsim-cli cluster down --dir D`.")
    up.add_argument("--standbys", type=int, default=2, metavar="N", help="number of standbys (default 2)")
    up.add_argument("--cascade", action="store_true",
                    help="chain the standbys: pg2 streams from pg1, pg3 from pg2, ...")
    up.add_argument("--sync", metavar="SPEC",
                    help="synchronous standbys: FIRST1, ANY2 (over all standbys) or a full "
                         "synchronous_standby_names value such as 'FIRST 1 (pg2, pg3)'")
    up.add_argument("--slots", action="store_true", help="give each standby a physical replication slot")
    up.add_argument("--durable", action="store_true", help="keep fsync on (default off)")
    up.add_argument("--snapshot", action="store_true",
                    help="copy the nodes from a cached snapshot image (built the operator's way once, "
                         "then reused) instead of initdb and pg_basebackup; standbys start in parallel")
    up.add_argument("--dir", type=Path, help="work directory (new or empty; default: a new one under "
                                             "the system temporary directory)")
    up.add_argument("--keep", action="store_true", help="keep the work directory after the cluster stops")
    up.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a postgresql.conf setting for every node (repeatable)")
    add_pg_argument(up, "build the cluster with PostgreSQL N")
    up.set_defaults(func=run_up)

    down = sub.add_parser("down", help="stop the cluster running in --dir",
                          description="Stop the cluster that `walsim-cli cluster up` runs in DIR: "
                                      "ask the `up` process to stop it, or, if that process has "
                                      "died, stop the nodes by their pid files.")
    down.add_argument("--dir", type=Path, required=True,
                      help="the work directory `cluster up` printed")
    down.add_argument("--keep", action="store_true",
                      help="when walsim has to stop the nodes itself, keep the work directory")
    down.set_defaults(func=run_down)

    status = sub.add_parser("status", help="print a table of the nodes of the cluster in --dir",
                            description="Print one line per node of the cluster in DIR: role, "
                                        "status, port, upstream, timeline, LSNs, lag, replication "
                                        "state.")
    status.add_argument("--dir", type=Path, required=True,
                        help="the work directory `cluster up` printed")
    status.set_defaults(func=run_status)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def sync_spec(text: str, standbys: list[str]) -> str:
    """``FIRST1`` / ``ANY 2`` over all standbys, or a full synchronous_standby_names
    value whose names must all be standbys of the cluster (or ``*``)."""
    m = re.fullmatch(r"\s*(FIRST|ANY)\s*(\d+)\s*", text, re.IGNORECASE)
    if m:
        k = int(m.group(2))
        if not 1 <= k <= len(standbys):
            raise UsageError(f"--sync {text}: {k} synchronous standbys requested but there are "
                             f"{len(standbys)} standbys")
        return f"{m.group(1).upper()} {k} ({', '.join(standbys)})"
    full = re.fullmatch(r"\s*(?:(?:FIRST|ANY)\s+)?\d+\s*\((.*)\)\s*", text, re.IGNORECASE)
    names_text = full.group(1) if full else text
    names = [n.strip().strip('"') for n in names_text.split(",")]
    unknown = [n for n in names if n != "*" and n not in standbys]
    if "(" in names_text or ")" in names_text or not names or unknown:
        raise UsageError(f"--sync {text!r}: expected FIRSTk, ANYk or a synchronous_standby_names value "
                         f"naming the standbys ({', '.join(standbys) or 'none'})"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    return text


def _parse_sets(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_up(args: argparse.Namespace) -> int:
    if args.standbys < 0:
        raise UsageError("--standbys must be 0 or more")
    settings = _parse_sets(args.set)
    names = [f"pg{i}" for i in range(2, args.standbys + 2)]
    spec = sync_spec(args.sync, names) if args.sync else None
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    old_hup = signal.signal(signal.SIGHUP, _interrupt)
    # the banner promises Ctrl-C: heard even when started with SIGINT ignored
    # (a background job of a script inherits it so, and Python then installs no handler)
    old_int = signal.signal(signal.SIGINT, _interrupt)
    cluster = None
    failed = True
    try:
        try:
            cluster = Cluster(args.dir, keep=args.keep, snapshot=args.snapshot,
                              version=args.pg)
        except ClusterError as exc:
            raise UsageError(str(exc)) from None
        pg1 = cluster.create_primary("pg1", settings=settings, durable=args.durable)
        standbys: list[Node] = []
        if args.snapshot and not args.cascade:
            # copies of one standby image, started together
            standbys = [cluster.create_standby(name, pg1, slot=args.slots, durable=args.durable, start=False)
                        for name in names]
            cluster.start_nodes(standbys)
        else:
            for name in names:
                upstream = standbys[-1] if args.cascade and standbys else pg1
                standbys.append(cluster.create_standby(name, upstream, slot=args.slots, durable=args.durable))
        if spec:
            pg1.set_synchronous_standbys(spec)
        wait_all_streaming(pg1, standbys)
        print(f"walsim: cluster ready in {cluster.base_dir} (PostgreSQL {cluster.pg.version})")
        for node in cluster:
            role = "primary" if node.upstream is None else f"standby of {node.upstream.name}"
            print(f"  {node.name:<5} {role:<18} psql \"{node.conninfo()}\"")
        if spec:
            print(f"  synchronous_standby_names = '{spec}'")
        print(f"walsim: status: walsim-cli cluster status --dir {cluster.base_dir}")
        print(f"walsim: stop:   Ctrl-C, or walsim-cli cluster down --dir {cluster.base_dir}", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        failed = False
        print("walsim: stopping the cluster", file=sys.stderr)
        return 0
    except WalsimError as exc:
        print(f"walsim-cli: error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGINT, old_int)
        if cluster is not None:
            # Stop in order so that the nodes shut down cleanly, then tear down.
            try:
                cluster.stop_all("fast")
            except WalsimError as exc:
                print(f"walsim: clean stop failed ({exc}); stopping immediately", file=sys.stderr)
                failed = True
            keep = args.keep or failed
            cluster.destroy(keep=keep)
            if keep:
                print(f"walsim: work directory kept: {cluster.base_dir}", file=sys.stderr)


def _attach(path: Path) -> Cluster:
    try:
        return Cluster.attach(path)
    except (ClusterError, OSError, ValueError, KeyError) as exc:
        raise UsageError(f"--dir {path}: {exc}") from None


def _clean_registry(path: Path) -> None:
    """What else the run that made this cluster registered (walsim-netd and its
    directory...), when that run is gone: stopped and removed, each listed."""
    reg = supervise.find_registry_of(path)
    if reg is None:
        return
    owner = reg.owner()
    if owner.get("pid") and supervise.alive(int(owner["pid"]), int(owner.get("starttime", 0))):
        return
    for line in reg.cleanup():
        print(f"walsim: {line}")
    reg.remove()


def run_down(args: argparse.Namespace) -> int:
    cluster = _attach(args.dir)
    owner = cluster.owner()
    if owner is not None:
        pid, starttime = owner
        if procs.kill_if_same(pid, starttime, signal.SIGTERM):
            wait_until(lambda: procs.alive(pid, starttime), what=f"walsim-cli cluster up (pid {pid}) to stop",
                       done=lambda alive: not alive, timeout=120, logs=[n.log_file for n in cluster])
            print(f"walsim: cluster in {args.dir} stopped")
            return 0
    # The process that started the cluster is gone: stop the nodes by their pid files.
    running = [n for n in cluster if n.postmaster_pid() is not None]
    for node in running:
        node.stop("fast")
    print(f"walsim: the owner of {args.dir} was gone; stopped {len(running)} node(s) by pid file")
    if not args.keep:
        _clean_registry(cluster.base_dir)
        shutil.rmtree(cluster.base_dir, ignore_errors=True)
    return 0


def _row(node: Node, primary_lsn: Lsn | None, upstream_rows: dict[str, dict[str, Any]]) -> list[str]:
    status = node.status()
    role = "primary" if node.upstream is None and node.upstream_address is None else "standby"
    if node.upstream is not None and node.upstream.upstream is not None:
        role = "cascade"
    tli = insert = replay = lag = state = "-"
    if status == "running":
        try:
            in_rec = node.in_recovery()
            role = ("standby" if role == "primary" else role) if in_rec else "primary"
            tli = str(node.timeline())
            if in_rec:
                lsn = node.lsn("replay")
                replay = str(lsn) if lsn is not None else "-"
                if primary_lsn is not None and lsn is not None:
                    lag = str(max(0, int(primary_lsn) - int(lsn)))
                rec = upstream_rows.get(node.name)
                state = f"{rec['state']}/{rec['sync_state']}" if rec else "not connected"
            else:
                insert = str(node.lsn("insert"))
                state = "writable"
        except WalsimError as exc:
            state = f"error: {exc}"
        except Exception as exc:  # noqa: BLE001 - a status table reports, never crashes
            state = f"error: {type(exc).__name__}: {str(exc).strip()}"
    upstream = node.upstream.name if node.upstream else (
        f"{node.upstream_address[0]}:{node.upstream_address[1]}" if node.upstream_address else "-")
    return [node.name, role, status, str(node.port), upstream, tli, insert, replay, lag, state]


def run_status(args: argparse.Namespace) -> int:
    cluster = _attach(args.dir)
    primary_lsn: Lsn | None = None
    rows_by_app: dict[str, dict[str, Any]] = {}
    for node in cluster:
        if node.status() != "running":
            continue
        try:
            if not node.in_recovery():
                primary_lsn = node.lsn("write")
            for r in node.replication_status():
                rows_by_app[r["application_name"]] = r
        except Exception:  # noqa: BLE001 - reported per node below
            pass
    header = ["node", "role", "status", "port", "upstream", "tli", "insert_lsn", "replay_lsn",
              "lag_bytes", "replication"]
    table = [header] + [_row(n, primary_lsn, rows_by_app) for n in cluster]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    owner = cluster.owner()
    alive = owner is not None and procs.alive(*owner)
    print(f"work directory: {cluster.base_dir}  (owner pid {owner[0] if owner else '?'}: "
          f"{'running' if alive else 'gone'})")
    return 0


__all__ = ["register", "run_up", "run_down", "run_status", "sync_spec"]
