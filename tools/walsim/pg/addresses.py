"""Node addresses: every member of a cluster on a loopback address of its own.

A node listens on its own address (``Node.host``) and opens its connections
from it: the processes started for it get ``libwalsim-bind.so`` in
``LD_PRELOAD`` with ``WALSIM_SOURCE_ADDR`` set (``sim/bind/bind.c``), which
binds every TCP socket that connects to a loopback address to the node's
address first.  walsim-netd, pg_hba.conf and ``pg_stat_replication`` then
see which node opened a connection.  See docs/clusters.md, "Node addresses".

The k-th name given an address in a cluster gets ``127.0.0.(10+k)``.  This
module holds what does not need a cluster: the numbering, the environment of
a member's processes, and ``LD_PRELOAD`` lists that several libraries share
(the disk and clock layers preload theirs into the same postmaster).
"""

from __future__ import annotations

import ipaddress
from collections.abc import MutableMapping

from walsim.core.errors import ClusterError

#: the library that makes a process's connections come from its member's address
BIND_LIBRARY = "libwalsim-bind.so"
#: the variable libwalsim-bind.so reads
SOURCE_ENV = "WALSIM_SOURCE_ADDR"
#: walsim itself (and clients it runs) connect from here; never a member's address
HARNESS_ADDRESS = "127.0.0.1"
#: the k-th member gets 127.0.0.(FIRST_HOST - 1 + k)
FIRST_HOST = 11
MAX_MEMBERS = 255 - FIRST_HOST


def nth_address(k: int) -> str:
    """The address of the k-th member of a cluster (k counts from 1)."""
    if not 1 <= k <= MAX_MEMBERS:
        raise ClusterError(f"a cluster has at most {MAX_MEMBERS} members with their own address "
                           f"(127.0.0.{FIRST_HOST}-127.0.0.254)")
    return f"127.0.0.{FIRST_HOST - 1 + k}"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        return False


def add_preload(env: MutableMapping[str, str], library: str) -> None:
    """Append ``library`` to ``env["LD_PRELOAD"]`` (once)."""
    current = [p for p in env.get("LD_PRELOAD", "").split(":") if p]
    if library not in current:
        current.append(library)
    env["LD_PRELOAD"] = ":".join(current)


def remove_preload(env: MutableMapping[str, str], library: str) -> None:
    """Remove ``library`` from ``env["LD_PRELOAD"]`` (the key goes when it is empty)."""
    rest = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p != library]
    if rest:
        env["LD_PRELOAD"] = ":".join(rest)
    else:
        env.pop("LD_PRELOAD", None)


def source_environment(library: str, address: str) -> dict[str, str]:
    """The variables that make a process's connections come from ``address``."""
    return {"LD_PRELOAD": library, SOURCE_ENV: address}


def apply_source_environment(env: MutableMapping[str, str], library: str, address: str) -> None:
    """Add the bind library and the source address to an environment that may already
    preload other libraries."""
    add_preload(env, library)
    env[SOURCE_ENV] = address


__all__ = ["BIND_LIBRARY", "SOURCE_ENV", "HARNESS_ADDRESS", "nth_address", "is_loopback",
           "add_preload", "remove_preload", "source_environment", "apply_source_environment"]
