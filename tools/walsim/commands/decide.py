"""``walsim-cli decide``: evaluate the decision function (for checking other
implementations against walsim's, see docs/determinism.md)."""

from __future__ import annotations

import argparse

from walsim.core.decision import decision

NAME = "decide"
HELP = "print decision(seed, rule, coordinates...) as used by the fault simulators"


def _coordinate(text: str) -> int | str:
    try:
        return int(text, 0)
    except ValueError:
        return text


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("seed", type=lambda s: int(s, 0))
    parser.add_argument("rule")
    parser.add_argument("coords", nargs="*", type=_coordinate,
                        help="integers (decimal or 0x...) or strings")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"{decision(args.seed, args.rule, *args.coords):#018x}")
    return 0
