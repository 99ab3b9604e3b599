# sim/net — walsim-netd, the protocol-aware deterministic TCP fault proxy
# (see docs/netd.md; the modules and their order are listed in main.c).
# The core (trace, rules, the fault core) is socket-free and is
# linked into the unit tests as well.
NETD_CORE_SRCS := sim/net/trace.c sim/net/rules.c sim/net/fault.c \
	sim/net/track.c sim/net/plan.c sim/net/queue.c sim/net/pipe.c

PROGRAMS += walsim-netd
walsim-netd_SRCS := sim/net/main.c sim/net/loop.c sim/net/control.c sim/net/replay.c \
	sim/net/link.c sim/net/slot.c sim/net/nodes.c $(NETD_CORE_SRCS)

test_netd_rules_SRCS := $(NETD_CORE_SRCS) sim/net/nodes.c
test_netd_pipe_SRCS := $(NETD_CORE_SRCS)
