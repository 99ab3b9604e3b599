#!/bin/bash
# walsim's pipeline: what CI runs on a clean clone, and what a user's CI can
# copy.  Installs dependencies, builds, runs every test, then Valgrind and
# coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== make deps"
make deps
echo "== make test"
make -j2 all
make test PYTEST_ARGS="${PYTEST_ARGS:-}"
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
