"""The CI definitions users copy (ci/examples/, ci/action/) and walsim's own:
valid YAML, shell that parses, the embedded annotation scripts run on real
walsim output, and each uploads what the docs promise (walsim-runs/, JUnit)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from walsim.judge.export import RunOutcome, write_json, write_junit
from walsim.judge.verdict import Verdict

TOP = Path(__file__).resolve().parents[2]
FILES = [TOP / "ci" / "examples" / "github-actions.yml", TOP / "ci" / "examples" / "gitlab-ci.yml",
         TOP / "ci" / "action" / "action.yml", TOP / "ci" / "walsim-pipeline.github-actions.yml"]


def _runs(doc: object) -> list[str]:
    """Every shell script (`run:` values, GitLab script lines) in a document."""
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "run" and isinstance(v, str):
                out.append(v)
            elif k in ("script", "before_script") and isinstance(v, list):
                out.append("\n".join(v))
            else:
                out += _runs(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _runs(v)
    return out


def _shell(script: str) -> str:
    # GitHub expressions are substituted before the shell sees the script
    return re.sub(r"\$\{\{[^}]*\}\}", "0", script)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_yaml_and_shell_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    scripts = _runs(doc)
    assert scripts, f"{path.name}: no shell step found"
    for script in scripts:
        r = subprocess.run(["bash", "-n"], input=_shell(script), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{path.name}: {r.stderr}\n{script}"
        for body in re.findall(r"<<'PY'\n(.*?)\n\s*PY\b", script, re.S):
            compile(_dedent(body), f"{path.name} (python)", "exec")


def _dedent(text: str) -> str:
    import textwrap
    return textwrap.dedent(text)


def _python_of(path: Path, marker: str) -> str:
    script = next(s for s in _runs(yaml.safe_load(path.read_text())) if marker in s and "<<'PY'" in s)
    return _dedent(re.search(r"<<'PY'\n(.*?)\n\s*PY\b", script, re.S).group(1))


def _outcome(tmp: Path) -> RunOutcome:
    return RunOutcome("lag", "scenarios/lag.toml", 3, tmp / "walsim-runs" / "lag-1",
                      [Verdict("converge", "converge", "PASS", "ok", {}),
                       Verdict("lost", "no_acked_loss", "FAIL", "3 acknowledged commit(s) lost\nsee report", {}),
                       Verdict("harness", "harness", "ERROR", "walsim-netd died", {})],
                      1, "walsim-cli run scenarios/lag.toml --seed 3")


def test_action_annotates_failed_verdicts(tmp_path: Path) -> None:
    write_json([_outcome(tmp_path)], tmp_path / "walsim-results.json")
    code = _python_of(TOP / "ci" / "action" / "action.yml", "walsim-results.json")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("::error file=scenarios/lag.toml,title=walsim lag: lost FAIL::3 acknowledged "
                               "commit(s) lost%0Asee report (report: ")
    assert "reproduce with: walsim-cli run scenarios/lag.toml --seed 3" in lines[0]
    assert lines[1].startswith("::warning file=scenarios/lag.toml,title=walsim lag: harness ERROR::")


def test_github_example_annotates_from_pytest_junit(tmp_path: Path) -> None:
    (tmp_path / "walsim-junit.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="2" failures="1" errors="0">'
        '<testcase classname="scenarios.x.toml" name="x"><properties>'
        '<property name="walsim_report" value="walsim-runs/x-1/report.html"/></properties>'
        '<failure message="x (seed 3): exit status 1&#10;  FAIL lost: 3 lost">...</failure></testcase>'
        '<testcase classname="tests.t" name="test_ok"/></testsuite></testsuites>')
    code = _python_of(TOP / "ci" / "examples" / "github-actions.yml", "walsim-junit.xml")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["::error title=x::x (seed 3): exit status 1 (report: walsim-runs/x-1/report.html)"]


def test_examples_upload_runs_and_junit() -> None:
    gh = yaml.safe_load((TOP / "ci" / "examples" / "github-actions.yml").read_text())
    steps = gh["jobs"]["walsim"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert "walsim-runs/" in upload["with"]["path"] and "walsim-junit.xml" in upload["with"]["path"]
    assert upload["if"] == "always()"
    assert any("--walsim-scenarios scenarios/" in s.get("run", "") for s in steps)
    gl = yaml.safe_load((TOP / "ci" / "examples" / "gitlab-ci.yml").read_text())["walsim"]
    assert gl["artifacts"]["reports"]["junit"] == "walsim-junit.xml" and "walsim-runs/" in gl["artifacts"]["paths"]
    assert gl["artifacts"]["when"] == "always"
    action = yaml.safe_load((TOP / "ci" / "action" / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"scenarios", "seed", "postgres-version"} <= set(action["inputs"])


def test_example_project_is_what_ci_runs() -> None:
    project = TOP / "ci" / "examples" / "project"
    assert sorted(p.name for p in (project / "scenarios").glob("*.toml"))
    assert not (project / "conftest.py").exists() and not (project / "tests" / "conftest.py").exists()  # no glue
    assert "ci/examples/project" in (TOP / "ci" / "pipelines.sh").read_text()
    r = subprocess.run([sys.executable, "-m", "walsim", "check", str(project / "scenarios")], capture_output=True,
                       text=True, timeout=60, env={"PYTHONPATH": str(TOP / "tools"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
