# sim/net — walsim-netd, the protocol-aware deterministic TCP fault proxy
# (see docs/netd.md).  netd.c holds main(); the rest is socket-free and is
# linked into the unit tests as well.
NETD_CORE_SRCS := sim/net/pipe.c sim/net/rules.c sim/net/trace.c

PROGRAMS += walsim-netd
walsim-netd_SRCS := sim/net/netd.c $(NETD_CORE_SRCS)

test_netd_rules_SRCS := $(NETD_CORE_SRCS)
test_netd_pipe_SRCS := $(NETD_CORE_SRCS)
