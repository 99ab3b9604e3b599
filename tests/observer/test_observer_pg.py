"""The observer against real PostgreSQL: shared rounds, the server's time of
each sample, a frozen node that holds up no one, a stopped node reconnected.

Nothing here asserts a duration: what the observer costs and how far apart
the samples of a round are is measured by tools/bench/bench_observer
(docs/benchmarks.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from walsim.core.events import Clock, JsonlWriter, read_jsonl
from walsim.core.paths import find_program
from walsim.core.timeouts import wait_until
from walsim.pg.cluster import Cluster
from walsim.run.observer import POSITIONS_SQL, SAMPLE_SQL, Observer

pytestmark = pytest.mark.pg


def up_samples(path: Path, node: str) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(path) if r.get("node") == node and r.get("up")]


def full_rounds(path: Path, nodes: set[str]) -> list[int]:
    """Rounds in which every one of ``nodes`` answered."""
    by_round: dict[int, set[str]] = {}
    for r in read_jsonl(path):
        if r.get("up") and r.get("round") is not None:
            by_round.setdefault(r["round"], set()).add(r["node"])
    return sorted(k for k, v in by_round.items() if v == nodes)


def test_rounds_are_shared_and_a_frozen_node_holds_up_no_one(cluster: Cluster, tmp_path: Path) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    pg3 = cluster.create_standby("pg3", pg1)
    nodes = {"pg1": pg1, "pg2": pg2, "pg3": pg3}
    clock = Clock()
    path = tmp_path / "samples.jsonl"
    writer = JsonlWriter(path, clock)
    obs = Observer(list(nodes), lambda n: nodes[n].conninfo(), writer, interval=0.01)
    obs.start()
    try:
        wait_until(lambda: full_rounds(path, set(nodes)), what="a round in which every node answered")
        pg3.pause()
        try:
            frozen_from = clock.wall_to_t(time.time())
            seen = obs.counts["pg1"]
            # the others go on being sampled, round after round, while pg3 answers nothing
            # (one answer recorded after frozen_from may have been taken before it)
            wait_until(lambda: min(obs.counts["pg1"], obs.counts["pg2"]) - seen,
                       what="31 more samples of pg1 and pg2 while pg3 is frozen", done=lambda n: n >= 31)
            frozen_until = clock.wall_to_t(time.time())
        finally:
            pg3.resume()
        after = obs.counts["pg3"]
        wait_until(lambda: obs.counts["pg3"] - after, what="pg3 sampled again after its resume",
                   done=lambda n: n >= 5)
    finally:
        obs.stop()
        writer.close()
    skew = obs.skew()

    by_node = {n: up_samples(path, n) for n in nodes}
    for n, smps in by_node.items():
        rounds = [s["round"] for s in smps]
        assert rounds == sorted(set(rounds)), f"{n}: rounds repeat or go back"
        assert all(isinstance(s["server_t"], float) for s in smps)
        # the server's clock moves on with the rounds
        times = [s["server_t"] for s in smps]
        assert times == sorted(times), n
    # one round is one moment of every node: the three were sampled in the same rounds
    # (how many depends on the machine's load: a node still answering skips a round)
    assert full_rounds(path, set(nodes))
    in_time = set.intersection(*({s["round"] for s in smps if not s.get("late")} for smps in by_node.values()))
    assert skew["rounds"] == len(in_time) and (not in_time or "skew_p99_ms" in skew)
    # samples taken more than a tick after their round's tick (pg3's while frozen, any
    # node's under load) are marked late and left out of the skew, never dropped
    assert skew["late"] == sum(1 for smps in by_node.values() for s in smps if s.get("late"))
    # the role and positions come with every sample, the replication rows with some
    assert {s["role"] for s in by_node["pg1"]} == {"primary"} and all(s["insert_lsn"] for s in by_node["pg1"])
    assert {s["role"] for s in by_node["pg3"]} == {"standby"} and all(s["replay_lsn"] for s in by_node["pg3"])
    detailed = [s for s in by_node["pg1"] if "replication" in s]
    assert detailed and {r["application_name"] for r in detailed[-1]["replication"]} == {"pg2", "pg3"}
    assert any(s.get("wal_receiver", {}) and s["wal_receiver"]["status"] == "streaming" for s in by_node["pg2"])
    # frozen: pg3's server stamped no sample while it was stopped, the others did
    inside = [s for s in by_node["pg3"] if frozen_from < s["server_t"] < frozen_until]
    assert inside == []
    assert len([s for s in by_node["pg1"] if frozen_from < s["server_t"] < frozen_until]) >= 30


def test_a_stopped_node_is_down_then_sampled_again(cluster: Cluster, tmp_path: Path) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    nodes = {"pg1": pg1, "pg2": pg2}
    path = tmp_path / "samples.jsonl"
    writer = JsonlWriter(path, Clock())
    obs = Observer(list(nodes), lambda n: nodes[n].conninfo(), writer, interval=0.02)
    obs.start()
    try:
        wait_until(lambda: all(obs.latest.get(n, {}).get("up") for n in nodes), what="both nodes sampled")
        pg2.stop()
        wait_until(lambda: [r for r in read_jsonl(path) if r.get("node") == "pg2" and not r.get("up")],
                   what="pg2 sampled as down")
        pg1_while_down = obs.counts["pg1"]
        pg2.start()
        wait_until(lambda: obs.latest.get("pg2", {}).get("up"), what="pg2 sampled again after its restart")
        assert obs.counts["pg1"] > pg1_while_down
    finally:
        obs.stop()
        writer.close()
    recs = [r for r in read_jsonl(path) if r.get("node") == "pg2"]
    ups = [r["up"] for r in recs]
    down = [r for r in recs if not r["up"]]
    # up, then down (stopped), then up again (restarted, reconnected)
    first_up = ups.index(True)
    first_down = first_up + ups[first_up:].index(False)
    assert True in ups[first_down:] and ups[-1] and down
    assert all(r["error"] and isinstance(r["round"], int) for r in down)
    assert obs.latest["pg2"]["role"] == "standby"


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (make deps installs it)")
def test_sampler_valgrind_clean_through_a_restart(cluster: Cluster, tmp_path: Path) -> None:
    """walsim-sampler under Valgrind: rounds, a node stopped (its query fails,
    reconnects are refused) and started again, then the end of its input."""
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    program = find_program("walsim-sampler")
    assert program is not None
    argv = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", str(program),
            "--interval", "0.05", "--detail-every", "2", "--start-mono", repr(time.monotonic()),
            "--start-wall", repr(time.time()), "--positions-sql", POSITIONS_SQL, "--detail-sql", SAMPLE_SQL,
            "--start-timeout", "20", "--connect-timeout", "10", "--node", "pg1", "--node", "pg2"]
    out = tmp_path / "sampler.out"
    with open(out, "wb") as fh:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=fh, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(f"conninfo pg1 {pg1.conninfo()}\nconninfo pg2 {pg2.conninfo()}\nstart\n".encode())
        proc.stdin.flush()

        def lines() -> list[dict[str, Any]]:
            return [json.loads(x) for x in out.read_text().splitlines()[1:] if x.endswith("}")]

        wait_until(lambda: [r for r in lines() if r["node"] == "pg2" and r["up"]], what="pg2 sampled",
                   timeout=60)
        pg2.stop()
        wait_until(lambda: [r for r in lines() if r["node"] == "pg2" and not r["up"]], what="pg2 down",
                   timeout=60)
        pg2.start()
        proc.stdin.write(f"conninfo pg2 {pg2.conninfo()}\n".encode())
        proc.stdin.flush()
        wait_until(lambda: lines()[-20:] and any(r["node"] == "pg2" and r["up"] for r in lines()[-20:]),
                   what="pg2 sampled again", timeout=60)
        proc.stdin.close()  # the end of its input ends it
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == 0, err
    assert "==" not in err, err  # no Valgrind report
    assert out.read_text().splitlines()[0] == "ready"
