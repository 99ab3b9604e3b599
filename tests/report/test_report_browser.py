"""report.html and index.html in a real browser (tools/check-report: headless
Chromium over the DevTools protocol): no console error, every plot loads and
spans the page, no network request, no horizontal scroll, no broken link;
and the checker itself fails on a page that has each of those defects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pyunit"))
from records import base_events, base_final, base_samples, make_run, write  # noqa: E402

from walsim.api import open_run  # noqa: E402
from walsim.judge.report import build_index, build_report  # noqa: E402
from walsim.judge.verdict import Verdict  # noqa: E402

TOP = Path(__file__).resolve().parents[2]
CHECK = TOP / "tools" / "check-report"


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: make deps-pipelines installs it (CI never skips this)")
        pytest.skip("chromium is not installed (make deps-pipelines)")


def check(*pages: Path, shots: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(CHECK), *map(str, pages)]
    if shots is not None:
        args += ["--screenshot-dir", str(shots)]
    return subprocess.run(args, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(TOP / "tools")})


def test_report_and_index_render_without_errors(tmp_path: Path) -> None:
    parent = tmp_path / "walsim-runs"
    parent.mkdir()
    ledger = [write(1, 2.0, "acked"), write(2, 4.5, "acked"), write(3, 4.9, "indeterminate"),
              write(4, 6.5, "acked", node="pg2")]
    d = make_run(parent, '[[verdicts]]\ncheck = "no_acked_loss"\n', events=base_events(), samples=base_samples(),
                 ledger=ledger, final=base_final([1, 4]))
    report = build_report(open_run(d), [Verdict("no_acked_loss", "no_acked_loss", "INFO", "1 lost",
                                                {"lost_ids": [2], "nested": {"ok": True, "none": None}})])
    index = build_index(parent)
    r = check(report, index, shots=tmp_path / "shots")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 0 failed" in r.stdout
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["run-report.png", "walsim-runs-index.png"]
    assert all(p.stat().st_size > 10000 for p in (tmp_path / "shots").iterdir())


def test_checker_fails_on_each_defect(tmp_path: Path) -> None:
    (tmp_path / "bad.html").write_text(
        "<!doctype html><html><head><title>bad</title></head><body>"
        "<img alt='missing' src='nope.png'>"
        "<script>console.error('planted error')</script>"
        "<img alt='remote' src='http://127.0.0.1:9/remote.png'>"
        "<a href='missing.html'>gone</a>"
        "<div style='width: 4000px'>too wide</div>"
        "<script>undefinedFunction()</script></body></html>")
    r = check(tmp_path / "bad.html")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "console error: planted error" in out
    assert "script exception: ReferenceError: undefinedFunction is not defined" in out
    assert "image does not load: alt='missing'" in out
    assert "network request: http://127.0.0.1:9/remote.png" in out
    assert "broken link: missing.html" in out
    assert "page is wider (" in out
    assert "0 passed, 1 failed" in out
