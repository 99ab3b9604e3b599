"""The sharding examples of ci/ work: their explore and merge commands, taken from the YAML as
written, run on a small fault space (shards of a GitHub Actions matrix, pods of a Kubernetes
Indexed Job) and merge into one summary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.pg]

TOP = Path(__file__).resolve().parents[2]
SMALL = Path(__file__).resolve().parent / "data" / "small.toml"


def _checkout_view(tmp: Path) -> Path:
    """A working directory that looks like a checkout (tools/, build/) but writes elsewhere."""
    work = tmp / "work"
    work.mkdir()
    for name in ("tools", "build", "scenarios"):
        (work / name).symlink_to(TOP / name)
    return work


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, **env)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=full, capture_output=True, text=True, timeout=600)


def test_github_actions_matrix_shards_and_merge(tmp_path: Path) -> None:
    wf = yaml.safe_load((TOP / "ci" / "examples" / "explore-github-actions.yml").read_text())
    explore_job, merge_job = wf["jobs"]["explore"], wf["jobs"]["merge"]
    assert merge_job["needs"] == "explore" and explore_job["strategy"]["fail-fast"] is False
    assert len(explore_job["strategy"]["matrix"]["shard"]) == int(wf["env"]["SHARDS"])
    step = next(s for s in explore_job["steps"] if s.get("name", "").startswith("explore shard"))
    merge = next(s for s in merge_job["steps"] if s.get("name", "").startswith("merge"))
    work = _checkout_view(tmp_path)
    env = {"SCENARIO": str(SMALL), "SEEDS": "1..4", "SHARDS": "2"}
    for k in (1, 2):
        script = step["run"].replace("${{ matrix.shard }}", str(k)).replace("--budget 90m", "--budget 5m")
        proc = _bash(script, work, env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert (work / f"explore-shard-{k}.xml").exists()
    proc = _bash(merge["run"], work, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((work / "explore-merged" / "summary.json").read_text())
    assert summary["runs"] == 4 and summary["seed_range"] == [1, 4] and summary["seeds_run_twice"] == []
    assert (work / "explore-merged.xml").exists()


def test_kubernetes_indexed_job_pods_and_merge(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((TOP / "ci" / "examples" / "explore-k8s-indexed-job.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SHARDS"]) == job["spec"]["completions"]
    (merge_job,) = yaml.safe_load_all((TOP / "ci" / "examples" / "explore-k8s-merge-job.yaml").read_text())
    merge_script = merge_job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    work = _checkout_view(tmp_path)
    results = tmp_path / "results"
    results.mkdir()

    def local(script: str) -> str:
        return script.replace("/walsim/", f"{TOP}/").replace("/results", str(results))
    env = {"SCENARIO": str(SMALL), "SEEDS": "1..4", "SHARDS": "2"}
    for index in (0, 1):
        script = local(container["args"][0]).replace("--budget 2h", "--budget 5m")
        proc = _bash(script, work, dict(env, JOB_COMPLETION_INDEX=str(index)))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = _bash(local(merge_script), work, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = json.loads((results / "merged.json").read_text())
    assert sorted(r["seed"] for r in merged["runs"]) == [1, 2, 3, 4] and merged["exit_status"] == 0
