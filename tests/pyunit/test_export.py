"""JUnit XML and JSON results (walsim.judge.export) and the exit status table:
schema-valid JUnit whose counts add up, failure text carrying the evidence,
the report and the reproduce command; runs read back from their directories;
the exit status table in docs/pipelines.md equal to the code's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from walsim.core import exitstatus
from walsim.judge.export import RunOutcome, junit_xml, results_json, write_json, write_junit
from walsim.judge.verdict import Verdict

TOP = Path(__file__).resolve().parents[2]
SCHEMA = etree.XMLSchema(etree.parse(str(TOP / "tests" / "data" / "junit.xsd")))


def validate(text: str) -> None:
    doc = etree.fromstring(text.encode("utf-8"))
    if not SCHEMA.validate(doc):
        raise AssertionError(f"JUnit XML does not validate: {SCHEMA.error_log}\n{text}")


def _outcome(tmp: Path, name: str = "lag", seed: int = 3, status: int = 1) -> RunOutcome:
    d = tmp / f"{name}-{seed}"
    d.mkdir(parents=True, exist_ok=True)
    return RunOutcome(scenario=name, file=f"scenarios/{name}.toml", seed=seed, rundir=d,
                      verdicts=[Verdict("ok", "converge", "PASS", "all caught up", {"lsn": "0/3000000"}),
                                Verdict("lost", "no_acked_loss", "FAIL", "3 acknowledged commit(s) lost",
                                        {"lost_ids": [4, 5, 6], "durable": True}),
                                Verdict("meas", "lag_within", "INFO", "max lag 12 kB", {}),
                                Verdict("harness", "harness", "ERROR", "walsim-netd died", {})],
                      exit_status=status, reproduce=f"walsim-cli run scenarios/{name}.toml --seed {seed}",
                      elapsed_s=12.5, started="2026-01-02T03:04:05Z")


def test_junit_is_schema_valid_and_counts_add_up(tmp_path: Path) -> None:
    outs = [_outcome(tmp_path, "lag"), _outcome(tmp_path, "failover", seed=9, status=0)]
    text = junit_xml(outs)
    validate(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "2", "2")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["lag", "failover"]
    for s in suites:
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases) == 4
        assert int(s.get("failures")) == len([c for c in cases if c.find("failure") is not None]) == 1
        assert int(s.get("errors")) == len([c for c in cases if c.find("error") is not None]) == 1
        assert [c.get("name") for c in cases] == ["ok", "lost", "meas", "harness"]
    props = {p.get("name"): p.get("value") for p in suites[0].find("properties")}
    assert props["report"] == str(tmp_path / "lag-3" / "report.html")
    assert props["reproduce"] == "walsim-cli run scenarios/lag.toml --seed 3"
    assert (props["seed"], props["exit_status"], props["scenario_file"]) == ("3", "1", "scenarios/lag.toml")


def test_failure_text_is_evidence_report_and_reproduce(tmp_path: Path) -> None:
    root = ET.fromstring(junit_xml([_outcome(tmp_path)]))
    lost = root.find("testsuite/testcase[@name='lost']")
    failure = lost.find("failure")
    assert failure.get("message") == "3 acknowledged commit(s) lost"
    text = failure.text
    evidence = text[text.index("evidence:\n") + len("evidence:\n"):text.index("\n\nreport:")]
    assert json.loads(evidence) == {"lost_ids": [4, 5, 6], "durable": True}  # JSON, not a Python repr
    assert f"report: {tmp_path / 'lag-3' / 'report.html'}" in text
    assert "reproduce with: walsim-cli run scenarios/lag.toml --seed 3" in text
    case_props = {p.get("name"): p.get("value") for p in lost.find("properties")}
    assert case_props["check"] == "no_acked_loss" and case_props["result"] == "FAIL"
    info = root.find("testsuite/testcase[@name='meas']")
    assert info.find("failure") is None and info.find("error") is None
    assert info.find("system-out").text.startswith("INFO: max lag 12 kB")


def test_same_scenario_twice_is_told_apart_by_seed(tmp_path: Path) -> None:
    root = ET.fromstring(junit_xml([_outcome(tmp_path, seed=1), _outcome(tmp_path, seed=2)]))
    assert [s.get("name") for s in root.findall("testsuite")] == ["lag seed=1", "lag seed=2"]


def test_rundir_without_verdicts_is_an_error_never_a_pass(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"scenario": "x", "seed": 4, "file": "x.toml",
                                            "reproduce": "walsim-cli run x.toml --seed 4"}))
    out = RunOutcome.from_rundir(d)
    assert [v.result for v in out.verdicts] == ["ERROR"]
    assert out.exit_status == exitstatus.ERROR
    validate(junit_xml([out]))


def test_rundir_read_back(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"scenario": "x", "seed": 4, "file": "x.toml", "exit_status": 1,
                                            "elapsed_s": 3.5, "reproduce": "walsim-cli run x.toml --seed 4"}))
    (d / "verdicts.json").write_text(json.dumps([Verdict("a", "converge", "FAIL", "no", {"n": 1}).to_json()]))
    out = RunOutcome.from_rundir(d)
    assert (out.scenario, out.seed, out.exit_status, out.elapsed_s) == ("x", 4, 1, 3.5)
    assert out.verdicts == [Verdict("a", "converge", "FAIL", "no", {"n": 1})]


def test_json_document(tmp_path: Path) -> None:
    outs = [_outcome(tmp_path, status=0), _outcome(tmp_path, "b", status=1)]
    path = write_json(outs, tmp_path / "out" / "r.json")
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(results_json(outs), default=str))
    assert doc["format"] == 1 and doc["exit_status"] == 1 and doc["command"] == "run"
    run = doc["runs"][0]
    assert run["counts"] == {"PASS": 1, "FAIL": 1, "ERROR": 1, "INFO": 1}
    assert run["report"].endswith("report.html") and run["verdicts"][1]["evidence"]["lost_ids"] == [4, 5, 6]


def test_write_junit_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_junit([_outcome(tmp_path)], tmp_path / "r.xml")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["r.xml"]


def test_schema_accepts_pytest_junitxml_and_rejects_broken(tmp_path: Path) -> None:
    """The schema is not shaped after walsim's writer alone: pytest's own
    output validates, and a document with a broken structure does not."""
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_ok(record_property):\n    record_property('k', 'v')\n"
        "def test_fail():\n    assert 1 == 2\n"
        "@pytest.fixture\ndef boom():\n    raise RuntimeError('x')\n"
        "def test_error(boom):\n    pass\n"
        "def test_skip():\n    pytest.skip('no')\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                        "--junitxml", str(tmp_path / "p.xml"), str(tmp_path / "test_x.py")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    validate((tmp_path / "p.xml").read_text())
    broken = junit_xml([_outcome(tmp_path)]).replace('tests="4"', 'tests="four"', 1)
    with pytest.raises(AssertionError, match="does not validate"):
        validate(broken)
    nested = junit_xml([_outcome(tmp_path)]).replace("<testcase ", "<testsuite><testcase ", 1)
    with pytest.raises((AssertionError, etree.XMLSyntaxError)):
        validate(nested)


def test_combine_statuses() -> None:
    assert exitstatus.combine([]) == 0
    assert exitstatus.combine([0, 2, 1]) == 1
    assert exitstatus.combine([0, 2]) == 2
    assert exitstatus.combine([1, 130]) == 130


def test_docs_table_equals_the_code() -> None:
    """docs/pipelines.md documents the exit statuses in one table: the code's."""
    text = (TOP / "docs" / "pipelines.md").read_text()
    section = text[text.index("## Exit statuses"):]
    rows = re.findall(r"^\| `?(\d+)`? \| (.+?) \|$", section, re.M)
    assert [int(code) for code, _ in rows] == [code for code, _ in exitstatus.TABLE]
    for (code, doc), (_, meaning) in zip(rows, exitstatus.TABLE):
        assert doc.strip() == meaning, f"exit status {code}: docs say {doc!r}, code says {meaning!r}"


def test_help_ends_with_the_table() -> None:
    r = subprocess.run([sys.executable, "-m", "walsim", "run", "--help"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0
    assert "exit status:" in r.stdout and "  130  interrupted" in r.stdout


def test_unwritable_junit_path_is_refused_before_running(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "walsim", "run", str(TOP / "scenarios" / "tutorial.toml"),
                        "--junit", str(tmp_path / "no" / "such" / "r.xml")], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    assert f"--junit {tmp_path / 'no' / 'such' / 'r.xml'}: directory {tmp_path / 'no' / 'such'} does not exist" \
        in r.stderr
    assert not (tmp_path / "walsim-runs").exists()  # nothing ran


def test_cli_report_writes_junit_and_json_of_the_rejudged_run(tmp_path: Path) -> None:
    from records import base_events, base_final, make_run
    d = make_run(tmp_path, '[[verdicts]]\ncheck = "timeline"\nexpect = { pg2 = 3 }\n',
                 events=base_events(), final=base_final([1]))
    r = subprocess.run([sys.executable, "-m", "walsim", "report", str(d), "--junit", str(tmp_path / "r.xml"),
                        "--json", str(tmp_path / "r.json")], capture_output=True, text=True,
                       env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    validate((tmp_path / "r.xml").read_text())
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["command"] == "report" and doc["exit_status"] == 1
    assert [(v["name"], v["result"]) for v in doc["runs"][0]["verdicts"]] == [("timeline", "FAIL")]
