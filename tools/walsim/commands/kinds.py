"""``walsim-cli kinds [KIND]``: every step, fault and verdict kind with its fields and doc.

What it prints comes from the vocabulary itself (:func:`walsim.api.vocabulary`),
so it is always what this walsim accepts; ``docs/scenarios.md`` documents the
same kinds in prose (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import sys
from typing import Mapping, TextIO

from walsim.api import vocabulary
from walsim.scenario import schema as s
from walsim.scenario.registry import COMMON_FIELDS, VERDICT_COMMON, Vocabulary

NAME = "kinds"
HELP = "list the step, fault and verdict kinds a scenario may use, with their fields"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", metavar="KIND",
                        help="only this kind (e.g. promote, corrupt, no_acked_loss)")
    parser.set_defaults(func=run)


def _default(f: s.Field) -> str:
    if f.required:
        return "required"
    if f.default in (None, {}, []):
        return "optional"
    return f"default {f.default!r}"


def _fields(fields: Mapping[str, s.Field], out: TextIO) -> None:
    width = max((len(k) for k in fields), default=0)
    for key, f in fields.items():
        text = f"  {key:<{width}}  {f.expects}; {_default(f)}"
        print(text + (f": {f.help}" if f.help else ""), file=out)


def describe(vocab: Vocabulary, name: str | None, out: TextIO = sys.stdout) -> int:
    """Print the kinds (all, or those named ``name``); the number printed."""
    shown = 0
    for kind in vocab.step_kinds():
        if name not in (None, kind.name):
            continue
        owner = f" (fault layer {kind.layer})" if kind.layer else ""
        print(f"{kind.category} = \"{kind.name}\"{owner}\n  {kind.doc}", file=out)
        _fields(kind.fields, out)
        print(file=out)
        shown += 1
    for vk in sorted(vocab.verdicts.values(), key=lambda k: k.name):
        if name not in (None, vk.name):
            continue
        print(f"check = \"{vk.name}\" (verdict)\n  {vk.doc}", file=out)
        _fields(vk.fields, out)
        print(file=out)
        shown += 1
    for mk in sorted(vocab.managers.values(), key=lambda k: k.kind):
        if name not in (None, mk.kind):
            continue
        print(f"[manager] kind = \"{mk.kind}\" (HA manager, docs/managers.md)\n  {mk.doc}", file=out)
        _fields({k: f for k, f in mk.all_fields().items()}, out)
        print(file=out)
        shown += 1
    if name is None:
        print("every step may also have:", file=out)
        _fields(COMMON_FIELDS, out)
        print("every verdict has:", file=out)
        _fields(VERDICT_COMMON, out)
        for layer in vocab.layers:
            if layer.node_fields:
                print(f"[nodes.NAME] keys of the {layer.name} fault layer:", file=out)
                _fields(layer.node_fields, out)
    return shown


def run(args: argparse.Namespace) -> int:
    if describe(vocabulary(), args.kind) == 0:
        vocab = vocabulary()
        known = sorted({k.name for k in vocab.step_kinds()} | set(vocab.verdicts) | set(vocab.managers))
        print(f"walsim-cli: error: no kind named {args.kind!r} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    return 0
