"""Network fault step kinds, carried out by walsim-netd on a declared link.

``fault = "<kind>"`` with ``link`` (a name from ``[links]``), ``dir``
(``down`` = server to client, the WAL direction; ``up`` = client to server,
the status updates; ``both``), an optional trigger and an optional duration.
The engine turns the validated values into a netd ``fault add`` command; the
fault's step id is its netd id, so ``heal = "<id>"`` removes it and the trace
names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from walsim import schema as s
from walsim.vocabulary import register

if TYPE_CHECKING:  # pragma: no cover
    from walsim.engine import RunContext
    from walsim.scenario import Step

MESSAGES = ("k", "r", "h")


def _lsn_or_relative(v: Any, _n: s.Names) -> int | tuple[str, int]:
    """``"X/Y"`` (an LSN) or ``"+64kB"`` (relative: resolved by the engine when the
    fault is installed, against the current primary's WAL insert position)."""
    if isinstance(v, str) and v.strip().startswith("+"):
        return ("+", s.parse_size(v.strip()[1:]))
    return s.parse_lsn(v)


def _common(dir_default: str = "down") -> dict[str, s.Field]:
    return {
        "link": s.link_ref(required=True),
        "dir": s.choice(("up", "down", "both"), default=dir_default,
                        help="down: upstream to standby (WAL); up: standby to upstream (replies)"),
        "app": s.string(help="only connections whose application_name is this"),
        "at_lsn": s.Field(_lsn_or_relative, False, None,
                          "trigger (corrupt: position): an LSN \"X/Y\", or \"+SIZE\" past the "
                          "primary's insert LSN when the fault is installed", "LSN or +size"),
        "after_bytes": s.size(help="trigger: after this many bytes in the direction"),
        "after_messages": s.integer(lo=0, help="trigger: after this many XLogData messages"),
        "duration": s.duration(help="remove the fault by itself after this long (default: until healed)"),
    }


def _one_trigger(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = [k for k in ("at_lsn", "after_bytes", "after_messages") if v.get(k) is not None]
    if len(given) > 1:
        return [(given[1], f"give at most one trigger (found {', '.join(given)})")]
    return []


def _run(ctx: "RunContext", step: "Step") -> dict[str, Any]:
    return ctx.add_net_fault(step)


def _net(name: str, fields: Mapping[str, s.Field], doc: str, check=None, dir_default: str = "down") -> None:
    merged = _common(dir_default)
    merged.update(fields)

    def full_check(v: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = _one_trigger(v)
        if check:
            out += check(v)
        return out
    register("fault", name, merged, doc, check=full_check, requires="netd", run=_run)


_net("delay", {"delay": s.duration(required=True), "jitter": s.duration(default=0.0)},
     "add latency (plus seeded jitter) to every chunk, order preserved")
_net("bandwidth", {"rate": s.size(required=True, help="bytes per second, e.g. \"256kB\"")},
     "limit throughput with a token bucket",
     check=lambda v: [("rate", "a bandwidth of 0 is a stall: use fault = \"stall\"")] if v.get("rate") == 0 else [])
_net("stall", {"discard": s.boolean(default=False, help="drop held bytes instead of releasing them on heal")},
     "blackhole: the connection stays open and nothing moves")
_net("partition", {}, "stall plus refusing new connections", dir_default="both")
_net("refuse", {}, "close new connections at once")
_net("reset", {}, "reset (RST) the link's connections when the fault fires")
_net("close", {}, "close (FIN) the link's connections when the fault fires")
_net("cut_after", {"bytes": s.size(required=True)}, "close a connection after N bytes")


def _check_corrupt(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    where = [k for k in ("at_lsn", "offset", "nth_message") if v.get(k) is not None]
    if len(where) != 1:
        return [("at_lsn", "corrupt needs exactly one of at_lsn, offset or nth_message")]
    if v.get("dir") == "both":
        return [("dir", "corrupt applies to one direction: down (WAL) or up")]
    return []


_net("corrupt", {
    "offset": s.size(help="byte offset in the direction's stream"),
    "nth_message": s.integer(lo=1, help="the Nth XLogData message"),
    "bits": s.integer(default=1, lo=1, hi=8, help="how many bits of the byte to flip (chosen by the seed)"),
}, "flip bits inside XLogData at an LSN (or at a stream offset / in the Nth message)",
    check=_check_corrupt)
_net("drop", {"messages": s.list_of(s.choice(MESSAGES), required=True, min_len=1,
                                     help="k keepalive, r status update, h hot standby feedback")},
     "drop whole replication messages of the given types (framing stays valid)", dir_default="up")
_net("delay_messages", {"messages": s.list_of(s.choice(MESSAGES), required=True, min_len=1),
                        "delay": s.duration(required=True)},
     "delay replication messages of the given types", dir_default="up")
