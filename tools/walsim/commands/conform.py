"""``walsim-cli conform sender|receiver``: check a replication sender or
receiver against the PostgreSQL protocol of 13 to 18 (docs/conformance.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "conform"
HELP = "check a replication sender or receiver against the PostgreSQL replication protocol (13 to 18)"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="side", required=True, metavar="sender|receiver")
    s = sub.add_parser("sender", help="check a server (walsender, relay, WAL server) with a raw client")
    s.add_argument("--target", required=True, metavar="CONNINFO",
                   help='"host=... port=... user=... [passfile=...]" (password: passfile or PGPASSWORD)')
    s.add_argument("--waldir", type=Path, help="the WAL directory the target serves (enables byte comparisons)")
    s.add_argument("--sql", metavar="CONNINFO",
                   help="an ordinary SQL connection to the target, used to make it write WAL (check S22)")
    s.add_argument("--max-wait", type=float, default=10.0, metavar="SECONDS",
                   help="run the timeout checks only if wal_sender_timeout is at most this (default 10)")
    s.add_argument("--pg-bindir", type=Path, help="PostgreSQL programs (pg_receivewal) for the interop check")
    s.add_argument("--pg", type=_major, metavar="N",
                   help="the PostgreSQL major the target must behave as (default: the one its "
                        "server_version names); the version-keyed checks expect that major")
    r = sub.add_parser("receiver", help="check a client (pg_receivewal-like) against walsim-sender")
    r.add_argument("--command", required=True,
                   help="the receiver's command line; %%s = connection string, %%d = fresh directory")
    r.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary directory)")
    r.add_argument("--reactions", action="store_true",
                   help="also run the receiver against every walsim-sender --misbehave kind and print "
                        "how it reacted (observed, not judged; about 8 s per kind)")
    r.add_argument("--long", action="store_true",
                   help="also run the slow checks (R11: 12.5 s without pings, status cadence)")
    r.add_argument("--pg", type=_major, metavar="N",
                   help="walsim-sender speaks PostgreSQL N: its WAL (tests/data/wal-N) and its "
                        "server_version (default 15)")
    for p in (s, r):
        p.add_argument("--only", default="", metavar="IDS", help="comma-separated check ids (S05,S18 / R09)")
        p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON ('-' = stdout)")
        p.add_argument("--junit", type=Path, metavar="FILE", help="write the results as JUnit XML")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the table")
    parser.set_defaults(func=run)


def _major(text: str) -> int:
    from walsim.core.pgmajors import SUPPORTED
    if not text.isdigit() or int(text) not in SUPPORTED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a supported PostgreSQL major "
                                         f"({', '.join(map(str, SUPPORTED))})")
    return int(text)


def _wal_generator(conninfo: str):  # type: ignore[no-untyped-def]
    import psycopg

    def generate() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_logical_emit_message(false, 'walsim-conform', repeat('x', 4000))")
            conn.execute("SELECT pg_switch_wal()")
    return generate


def run(args: argparse.Namespace) -> int:
    import walsim.conform.receiver  # noqa: F401  (registers the R checks)
    import walsim.conform.sender  # noqa: F401  (registers the S checks)
    from walsim.conform.checks import CHECKS
    from walsim.conform.probe import ConformError, Target
    from walsim.conform.results import Result

    only = [x.strip().upper() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in CHECKS or CHECKS[x].side != args.side]
    if unknown:
        print(f"walsim-cli conform: --only: no {args.side} check {', '.join(unknown)}", file=sys.stderr)
        return 2

    def progress(r: Result) -> None:
        if not args.quiet:
            print(f"  {r.id} {r.status:<7} ({r.seconds:.1f} s)", file=sys.stderr, flush=True)

    try:
        if args.side == "sender":
            from walsim.conform.sender import SenderContext, run_sender_checks
            from walsim.pg.pgbin import find_bindir
            if args.waldir is not None and not args.waldir.is_dir():
                raise ConformError(f"--waldir {args.waldir}: not a directory")
            try:
                bindir = args.pg_bindir or find_bindir()
            except Exception:
                bindir = None
            ctx = SenderContext(Target.from_conninfo(args.target), waldir=args.waldir,
                                max_wait=args.max_wait, pg_bindir=bindir, expect_major=args.pg,
                                wal_generator=_wal_generator(args.sql) if args.sql else None)
            report = run_sender_checks(ctx, only, progress=progress)
        else:
            from walsim.conform.receiver import ReceiverContext, run_receiver_checks
            rctx = ReceiverContext(args.command, workdir=args.workdir, long=args.long,
                                   pg_version=args.pg)
            try:
                report = run_receiver_checks(rctx, only, progress=progress)
                if args.reactions:
                    from walsim.conform.receiver import MISBEHAVIOURS, reactions_table, receiver_reaction
                    reactions = [receiver_reaction(rctx, kind) for kind in MISBEHAVIOURS]
            finally:
                rctx.close()
    except ConformError as exc:
        print(f"walsim-cli conform: {exc}", file=sys.stderr)
        return 2
    print(report.to_table())
    if args.side == "receiver" and args.reactions:
        print("\nreactions to walsim-sender --misbehave (observed, not judged):")
        print(reactions_table(reactions))
    if args.json:
        if str(args.json) == "-":
            print(report.to_json())
        else:
            args.json.write_text(report.to_json() + "\n")
    if args.junit:
        args.junit.write_text(report.to_junit() + "\n")
    return 1 if report.failed else 0
