"""``walsim-cli gc [--dry-run]``: clean what dead runs left behind.

A run registers every process and directory it starts
(:mod:`walsim.core.supervise`); its supervisor tears them down if the CLI
dies.  Should both be gone (a supervisor killed with its process group, a
machine that lost power mid-run), ``gc`` finds the registries whose owner
and supervisor are dead, stops what they recorded (by pid and start time:
never a recycled pid) and removes the directories, listing each action.
Clusters started by ``walsim-cli cluster up`` whose owner is gone are
``walsim-cli cluster down --dir D``'s.
"""

from __future__ import annotations

import argparse

from walsim.core.supervise import collect_garbage

NAME = "gc"
HELP = "stop the processes and remove the directories of dead walsim runs"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only list what would be stopped and removed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = collect_garbage(dry_run=args.dry_run)
    if not found:
        print("walsim: no leftovers of dead runs")
        return 0
    for left in found:
        label = left.owner.get("label", left.registry.path.name)
        where = left.owner.get("rundir")
        print(f"{label} (pid {left.owner.get('pid', '?')}, gone){f', run directory {where}' if where else ''}:")
        for line in left.actions or ["nothing left"]:
            print(f"  {'would be ' if args.dry_run else ''}{line}")
    return 0
