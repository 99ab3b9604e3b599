# walsim-probe: a raw replication-protocol client that runs a script of
# steps and prints every message as JSON (the conformance suite's instrument).
PROGRAMS += walsim-probe
walsim-probe_SRCS := $(wildcard ref/probe/*.c)
walsim-probe_LIBS := -lcrypto

# unit tests of the script parser and the authentication math
test_probe_script_SRCS := ref/probe/script.c
test_probe_auth_SRCS := ref/probe/auth.c
test_probe_auth_LIBS := -lcrypto
