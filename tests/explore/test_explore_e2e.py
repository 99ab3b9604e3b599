"""walsim-cli explore end to end against real PostgreSQL: the planted failure is found, shrunk
to the kill and the promotion (reruns included) and replayed by walsim-cli run; explorations
running at once do not collide; shards merge; an interrupted exploration stops its servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import pytest

from walsim.core import paths

pytestmark = [pytest.mark.pg]

TOP = Path(__file__).resolve().parents[2]
PLANTED = TOP / "scenarios" / "explore" / "planted-async-declared-sync.toml"
SMALL = Path(__file__).resolve().parent / "data" / "small.toml"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TOP / "tools")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def walsim(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "walsim", *args], capture_output=True, text=True, env=cli_env(),
                          timeout=timeout, **kw)


def runs_of(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "runs.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def need_netd() -> None:
    if not paths.program("walsim-netd").exists():
        pytest.fail("walsim-netd is missing: run make")


def drawn_steps(doc: dict) -> list[str]:
    """Step ids of the drawn steps of a schedule (not the prelude, not sleeps or heals)."""
    return [s["id"] for s in doc["steps"] if str(s.get("note", "")).startswith("explore: ")
            and "id" in s]


def test_planted_failure_found_shrunk_to_kill_and_promotion_and_replayed(tmp_path: Path) -> None:
    out = tmp_path / "explore"
    proc = walsim("explore", str(PLANTED), "--runs", "8", "--jobs", "2", "--out", str(out),
                  "--junit", str(tmp_path / "explore.xml"), "--json", str(tmp_path / "explore.json"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = runs_of(out)
    assert len(runs) == 8 and {r["seed"] for r in runs} == set(range(1, 9))
    assert any(r["result"] == "FAIL" for r in runs)
    # the harmless schedules pass: only runs with a kill fail
    for r in runs:
        if not any(e.startswith("kill-primary") for e in r["events"]):
            assert r["result"] == "PASS", r
    info = json.loads((out / "explore.json").read_text())
    assert info["exit_status"] == 1 and info["failed"] >= 1
    (failure,) = [f for f in info["failures"] if f["signature"] == ["no_acked_loss"]]
    assert failure["minimal_events"] == ["kill-primary-1", "promote-pg2-1"], failure
    # reruns: the minimal schedule failed at least k = 2 of its n = 3 runs
    assert failure["failures"] >= 2 and failure["runs"] <= 3 and failure["rate"] == \
        f"{failure['failures']}/{failure['runs']}"
    fdir = out / failure["dir"]
    history = [json.loads(ln) for ln in (fdir / "shrink.jsonl").read_text().splitlines()]
    assert history and all(h["runs"] >= 2 for h in history)
    assert any(h["change"].startswith("drop kill-primary-1 (and promote-pg2-1)") and not h["failing"]
               for h in history)
    minimal = fdir / "minimal.toml"
    doc = tomllib.loads(minimal.read_text())
    assert drawn_steps(doc) == ["kill-primary-1", "promote-pg2-1"]
    assert "explore" not in doc
    assert (fdir / "reproduce.txt").read_text().strip() == f"walsim-cli run {minimal}"
    assert any(v["name"] == "no_acked_loss" and v["result"] == "FAIL"
               for v in json.loads((fdir / "verdicts.json").read_text()))
    # JUnit: a suite per run and one for the minimal schedule, its no_acked_loss a <failure>
    suites = ET.parse(tmp_path / "explore.xml").getroot().findall("testsuite")
    assert len(suites) == 9

    def props(suite: ET.Element) -> dict[str, str]:
        return {p.get("name"): p.get("value") for p in suite.find("properties")}
    (minimal_suite,) = [s for s in suites if "explore_failure" in props(s)]
    assert props(minimal_suite)["explore_minimal"].endswith("minimal.toml")
    assert props(minimal_suite)["reproduce"].startswith("walsim-cli run ")
    assert [c.get("name") for c in minimal_suite.iter("testcase") if c.find("failure") is not None] == \
        ["no_acked_loss"]
    results = json.loads((tmp_path / "explore.json").read_text())
    assert results["command"] == "explore" and results["exit_status"] == 1 and len(results["runs"]) == 9
    assert [r["properties"]["explore_failure"] for r in results["runs"] if "explore_failure" in r["properties"]] \
        == [failure["failure"]] and results["failures"][0]["minimal_events"] == failure["minimal_events"]
    page = (out / "index.html").read_text()
    assert page.index("Failures (1)") < page.index("Runs (8)") and "minimal.toml" in page
    # walsim-cli run on minimal.toml fails the same way
    replay = walsim("run", str(minimal), "--out", str(tmp_path / "replay"), timeout=300)
    assert replay.returncode == 1, replay.stdout[-3000:]
    (rundir,) = [d for d in (tmp_path / "replay").iterdir() if d.is_dir()]
    verdicts = {v["name"]: v["result"] for v in json.loads((rundir / "verdicts.json").read_text())}
    assert verdicts["no_acked_loss"] == "FAIL"


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _run_facts(rundir: Path) -> dict:
    events = [json.loads(ln) for ln in (rundir / "events.jsonl").read_text().splitlines()]
    by = {e["type"]: e for e in events}
    return {"start": by["run_start"]["wall"], "end": by["run_end"]["wall"],
            "ports": set(by["cluster_ready"]["ports"].values()), "cluster": by["cluster_dir"]["path"],
            "dir": rundir}


def test_two_explorations_at_once_do_not_collide_and_their_shards_merge(tmp_path: Path) -> None:
    outs = [tmp_path / "shard1", tmp_path / "shard2"]
    procs_ = [subprocess.Popen([sys.executable, "-m", "walsim", "explore", str(SMALL), "--seeds", "1..6",
                                "--shard", f"{k}/2", "--jobs", "2", "--no-shrink", "--out", str(out),
                                "--junit", str(out.parent / f"shard{k}.xml")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env())
              for k, out in ((1, outs[0]), (2, outs[1]))]
    results = [p.communicate(timeout=600) for p in procs_]
    for p, (text, _) in zip(procs_, results):
        assert p.returncode == 0, text[-3000:]
    assert [r["seed"] for r in runs_of(outs[0])] and {r["seed"] for r in runs_of(outs[0])} == {1, 3, 5}
    assert {r["seed"] for r in runs_of(outs[1])} == {2, 4, 6}
    facts = [_run_facts(out / r["rundir"]) for out in outs for r in runs_of(out)]
    assert len(facts) == 6 and len({f["cluster"] for f in facts}) == 6
    overlapping = 0
    for a, b in combinations(facts, 2):
        if _overlap(a, b):
            overlapping += 1
            assert not (a["ports"] & b["ports"]), (a["dir"], b["dir"])
    assert overlapping >= 3  # up to four clusters ran at once
    merged = tmp_path / "merged"
    shard1 = ET.parse(tmp_path / "shard1.xml").getroot()
    assert len(shard1.findall("testsuite")) == 3 and shard1.get("failures") == "0" and shard1.get("tests") == "6"
    m = walsim("explore", "merge", str(outs[0]), str(outs[1]), "--out", str(merged), "--json",
               str(tmp_path / "merged.json"), timeout=60)
    assert m.returncode == 0, m.stdout + m.stderr
    merged_json = json.loads((tmp_path / "merged.json").read_text())
    assert sorted(r["seed"] for r in merged_json["runs"]) == [1, 2, 3, 4, 5, 6]
    assert all(r["verdicts"] and r["exit_status"] == 0 for r in merged_json["runs"])
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["runs"] == 6 and summary["seed_range"] == [1, 6] and summary["seeds_run_twice"] == []
    assert summary["failed"] == 0 and (merged / "index.html").exists()
    # merging a directory twice is reported
    twice = walsim("explore", "merge", str(outs[0]), str(outs[0]), timeout=60)
    assert twice.returncode == 0 and "seeds run in more than one directory" in twice.stdout


def test_an_interrupted_exploration_stops_its_servers_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "x"
    p = subprocess.Popen([sys.executable, "-m", "walsim", "explore", str(SMALL), "--runs", "4", "--jobs", "2",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=cli_env())
    try:
        deadline = time.monotonic() + 120
        # wait until both workers have a cluster running
        while time.monotonic() < deadline:
            ready = [d for d in (out / "runs").glob("seed-*") if (d / "events.jsonl").exists()
                     and "cluster_ready" in (d / "events.jsonl").read_text()]
            if len(ready) >= 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no run got a cluster within 120 s")
        p.send_signal(signal.SIGTERM)
        text, _ = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, text[-3000:]
    assert "interrupted" in text
    info = json.loads((out / "explore.json").read_text())
    assert info["interrupted"] is True and info["exit_status"] == 130
    clusters = []
    for d in (out / "runs").glob("seed-*"):
        for line in (d / "events.jsonl").read_text().splitlines():
            e = json.loads(line)
            if e["type"] == "cluster_dir":
                clusters.append(e["path"])
    assert clusters
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not any(c in cmd for c in clusters), f"{cmdline.parent.name} still runs in a cluster: {cmd}"
