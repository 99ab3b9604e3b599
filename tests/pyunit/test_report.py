"""The report builder and ``walsim-cli report``, on synthetic recorded data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from records import base_events, base_final, base_samples, make_run, write

from walsim.api import open_run
from walsim.judge.report import build_report
from walsim.judge.verdict import Verdict

TOP = Path(__file__).resolve().parents[2]
VERDICTS = ('[[verdicts]]\ncheck = "no_acked_loss"\n'
            '[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = 2 }\n')


def _run(tmp_path: Path) -> Path:
    ledger = [write(1, 2.0, "acked"), write(2, 4.5, "acked"), write(3, 4.9, "indeterminate"),
              write(4, 6.5, "acked", node="pg2")]
    return make_run(tmp_path, VERDICTS, events=base_events(), samples=base_samples(), ledger=ledger,
                    final=base_final([1, 4]))


def test_report_has_verdicts_timeline_and_plots(tmp_path: Path) -> None:
    d = _run(tmp_path)
    out = build_report(open_run(d), [Verdict("no_acked_loss", "no_acked_loss", "INFO", "1 acknowledged commit(s) lost", {"lost": 1}),
                           Verdict("timeline", "timeline", "FAIL", "pg2 <b>is</b> wrong", {})])
    page = out.read_text()
    assert out == d / "report.html"
    assert "<h1>synthetic</h1>" in page
    assert "1 acknowledged commit(s) lost" in page
    assert "pg2 &lt;b&gt;is&lt;/b&gt; wrong" in page  # escaped
    assert page.count("data:image/png;base64,") == 3  # LSN, lag, ledger
    assert "fault_on" in page and "promote" in page
    assert "walsim-cli run x --seed 1" in page


def test_report_of_a_run_without_samples(tmp_path: Path) -> None:
    d = make_run(tmp_path, VERDICTS, events=base_events())
    page = build_report(open_run(d), []).read_text()
    assert "no samples recorded" in page and "no verdicts" in page


def test_cli_report_recomputes_verdicts(tmp_path: Path) -> None:
    d = _run(tmp_path)
    r = subprocess.run([sys.executable, "-m", "walsim", "report", str(d)], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no_acked_loss" in r.stdout and "INFO" in r.stdout and "PASS" in r.stdout
    saved = json.loads((d / "verdicts.json").read_text())
    # the declared verdicts, then single_writer, judged for every scenario with a ledger
    assert [(v["check"], v["result"]) for v in saved][-1] == ("single_writer", "PASS")
    assert [v["result"] for v in saved] == ["INFO", "PASS", "PASS"]
    assert (d / "report.html").exists()


def test_cli_report_exit_status_follows_verdicts(tmp_path: Path) -> None:
    d = make_run(tmp_path, '[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = 3 }\n',
                 events=base_events(), final=base_final([1]))
    r = subprocess.run([sys.executable, "-m", "walsim", "report", str(d)], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 1
    assert "reproduce with: walsim-cli run x --seed 1" in r.stdout


def test_cli_report_not_a_rundir(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "walsim", "report", str(tmp_path)], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 2 and "not a run directory" in r.stderr
