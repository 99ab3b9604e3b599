"""The ``walsim-cli`` command line.

Subcommands live in :mod:`walsim.commands`, one module each; a module defines
``NAME`` (the subcommand), ``HELP`` (one line) and ``register(parser)`` which
adds its arguments and sets ``func`` (called with the parsed namespace, returns
the exit status).  Exit statuses: :mod:`walsim.core.exitstatus` (0 success,
1 a check or verdict failed, 2 invalid input or harness error, 130
interrupted), printed at the end of every ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import walsim.commands
from walsim.core.errors import UsageError
from walsim.core.exitstatus import epilog
from walsim.core.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="walsim-cli",
        description="walsim: build PostgreSQL replication clusters, inject faults, "
        "run scenarios and check senders and receivers against the protocol.",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"walsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(walsim.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue  # shared helpers of the subcommands
        module = importlib.import_module(f"walsim.commands.{info.name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, epilog=epilog(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.register(cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"walsim-cli: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("walsim-cli: interrupted", file=sys.stderr)
        return 130
