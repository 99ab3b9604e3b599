# sim/bind — libwalsim-bind.so: a node's connections from its own loopback
# address (LD_PRELOAD; see docs/clusters.md, "Node addresses").
SHLIBS += libwalsim-bind
libwalsim-bind_SRCS := sim/bind/bind.c
libwalsim-bind_LIBS := -ldl -Wl,--version-script=sim/bind/exports.map
