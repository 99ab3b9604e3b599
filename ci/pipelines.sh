#!/bin/bash
# walsim's own pipeline, the "pipelines" block (ci/run.sh calls it): walsim as
# other projects get it.  Each step runs from a directory outside the
# checkout against an installed walsim:
#
#   1. the man pages in docs/man/ match every program's --help (help2man);
#   2. make install PREFIX=$T/w, then walsim-cli from that prefix runs a
#      shipped scenario with --junit/--json, and the JUnit validates;
#   3. pip install into a --system-site-packages venv (offline), then the
#      example project's fixture tests (walsim-netd and the disk layer from the
#      pip bundle) run with the venv's python;
#   4. make deb; the package is installed with dpkg into a throwaway
#      copy-on-write view of this machine's root filesystem (overlayfs in a
#      private mount namespace: the machine itself is never changed, and other
#      users' pytest runs never load the installed plugin), where
#      /usr/bin/walsim-cli runs a shipped scenario and the example project runs
#      `pytest --walsim-scenarios scenarios/ --junitxml=j.xml` with the plugin
#      loaded through its pytest11 entry point;
#   5. the reports and index.html of those runs open in headless Chromium
#      without a console error, a broken image, a network request or a broken
#      link (tools/check-report; screenshots kept in the work directory).
#
# The work directory is removed on success and kept (its path printed) on
# failure.  Wall time of each step is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
export WALSIM_TIMEOUT_MULT=${WALSIM_TIMEOUT_MULT:-2}

T=$(mktemp -d /tmp/walsim-ci-pipelines-XXXXXX)
chmod 755 "$T"
ok=0
finish() {
    if [ "$ok" = 1 ]; then rm -rf "$T"; else echo "pipelines: work directory kept: $T" >&2; fi
}
trap finish EXIT

t0=$SECONDS
step() {
    echo "-- [$((SECONDS - t0))s] $*"
}

# JUnit FILE TESTS: valid against tests/data/junit.xsd, TESTS test cases, none failed.
check_junit() {
    /usr/bin/python3 - "$1" "$2" "$TOP/tests/data/junit.xsd" <<'PY'
import sys
from lxml import etree
path, tests, xsd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
doc = etree.parse(path)
schema = etree.XMLSchema(etree.parse(xsd))
if not schema.validate(doc):
    sys.exit(f"{path}: not valid JUnit: {schema.error_log}")
cases = doc.findall(".//testcase")
bad = [c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None]
if len(cases) != tests or bad:
    sys.exit(f"{path}: {len(cases)} test cases (expected {tests}), failed or in error: {bad}")
print(f"{path}: valid JUnit, {len(cases)} test cases, none failed")
PY
}

# in_overlay CMD...: CMD as root in a copy-on-write view of / (tmpfs upper
# layer in a private mount namespace), with the real /proc, /sys, /dev and
# /tmp; everything CMD changes outside /tmp vanishes when it exits.
in_overlay() {
    mkdir -p "$T/overlay"
    unshare --mount --propagation private /bin/bash -euc '
        ovl=$1; shift
        mount -t tmpfs -o size=4g walsim-overlay "$ovl"
        mkdir "$ovl/upper" "$ovl/work" "$ovl/root"
        mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/root"
        for m in proc sys dev tmp; do mount --rbind "/$m" "$ovl/root/$m"; done
        exec chroot "$ovl/root" "$@"' _ "$T/overlay" "$@"
}

step "make deps-pipelines (help2man, dpkg-dev, chromium)"
make --no-print-directory deps-pipelines

step "make man-check: docs/man/ matches --help"
make --no-print-directory -s man-check

step "make install PREFIX=$T/w; a shipped scenario from outside the checkout"
make --no-print-directory -s install PREFIX="$T/w" >/dev/null
mkdir "$T/outside"
(
    cd "$T/outside"
    "$T/w/bin/walsim-cli" paths --check
    "$T/w/bin/walsim-cli" run "$T/w/share/walsim/scenarios/lag-bandwidth.toml" --junit r.xml --json r.json
    check_junit r.xml 5   # its four verdicts and the single_writer every run gets (docs/verdicts.md)
    /usr/bin/python3 -c 'import json, sys; d = json.load(open("r.json")); sys.exit(d["exit_status"])'
    man -M "$T/w/share/man" -w walsim-cli-run >/dev/null
)

step "pip install into a venv (--system-site-packages, offline); the example's fixture tests from it"
/usr/bin/python3 -m venv --system-site-packages "$T/venv"
"$T/venv/bin/pip" install -q --no-build-isolation --no-deps --no-index "$TOP"
cp -r ci/examples/project "$T/ex-pip"
(
    cd "$T/ex-pip"
    "$T/venv/bin/walsim-cli" paths --check
    "$T/venv/bin/python" -m pytest -q -p no:cacheprovider tests/ --junitxml=j.xml
    check_junit j.xml 2
)

step "make deb; install it with dpkg in an overlay of this machine; a scenario and the example project"
deb=$(make --no-print-directory -s deb)
cp "$deb" "$T/"
cp -r ci/examples/project "$T/ex-deb"
mkdir "$T/deb-run"
in_overlay /bin/bash -euc '
    T=$1
    dpkg -i "$T"/walsim_*.deb >/dev/null
    dpkg -s walsim | grep -q "^Status: install ok installed"
    cd "$T/deb-run"
    /usr/bin/walsim-cli paths --check
    /usr/bin/walsim-cli run /usr/share/walsim/scenarios/partition-heal.toml --junit r.xml
    cd "$T/ex-deb"
    /usr/bin/python3 -m pytest -p no:cacheprovider --walsim-scenarios scenarios/ --junitxml=j.xml' _ "$T"
(cd "$T/deb-run" && check_junit r.xml "$(grep -c '<testcase' r.xml)")
(cd "$T/ex-deb" && check_junit j.xml 4)

step "reports and index.html in headless Chromium"
tools/check-report --screenshot-dir "$T/screenshots" \
    "$T"/outside/walsim-runs/*/report.html "$T/outside/walsim-runs/index.html" \
    "$T"/deb-run/walsim-runs/*/report.html "$T/deb-run/walsim-runs/index.html" \
    "$T"/ex-deb/walsim-runs/*/report.html "$T/ex-deb/walsim-runs/index.html"

step "pipelines done"
ok=1
