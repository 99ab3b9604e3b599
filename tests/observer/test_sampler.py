"""walsim-sampler (ref/sampler) without PostgreSQL: bad arguments and input,
a node that cannot be reached, the end of its input, and what the observer
does when the sampler is missing or dies.  Its rounds against real servers
are tests/observer/test_observer_pg.py."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from walsim.core.errors import HarnessError
from walsim.core.events import Clock, JsonlWriter, read_jsonl
from walsim.core.paths import find_program
from walsim.core.timeouts import wait_until
from walsim.run import observer as observer_mod
from walsim.run.observer import POSITIONS_SQL, SAMPLE_SQL, Observer


def sampler() -> str:
    path = find_program("walsim-sampler")
    if path is None:
        pytest.fail("walsim-sampler is not built (make)")
    return str(path)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_args(*nodes: str, detail_every: int = 5) -> list[str]:
    args = [sampler(), "--interval", "0.01", "--detail-every", str(detail_every),
            "--start-mono", repr(time.monotonic()), "--start-wall", repr(time.time()),
            "--positions-sql", POSITIONS_SQL, "--detail-sql", SAMPLE_SQL, "--start-timeout", "0.5"]
    for n in nodes:
        args += ["--node", n]
    return args


@pytest.mark.parametrize("args, says", [
    ([], "are required"),
    (["--interval", "0"], "--interval"),
    (["--node", "a b"], "without blanks"),
    (["--detail-every", "x"], "--detail-every"),
    (["extra"], "unexpected argument"),
])
def test_bad_arguments_exit_2_naming_what(args: list[str], says: str) -> None:
    res = subprocess.run([sampler(), *args], input=b"", capture_output=True, timeout=10)
    assert res.returncode == 2
    assert says in res.stderr.decode()
    assert res.stdout == b""


def test_bad_input_lines_exit_2_naming_the_line() -> None:
    for line, says in [(b"conninfo pg9 port=1\n", '"pg9", which is not a --node'),
                       (b"hello\n", 'unknown line "hello"')]:
        res = subprocess.run(base_args("pg1"), input=line, capture_output=True, timeout=10)
        assert res.returncode == 2, res
        assert says in res.stderr.decode()


def test_help_names_every_option() -> None:
    res = subprocess.run([sampler(), "--help"], capture_output=True, timeout=10)
    assert res.returncode == 0
    for opt in ("--node", "--interval", "--detail-every", "--start-mono", "--start-wall",
                "--positions-sql", "--detail-sql", "--connect-timeout", "--start-timeout"):
        assert opt in res.stdout.decode()


def read_lines(proc: subprocess.Popen[bytes], seconds: float) -> list[str]:
    """What the sampler writes within ``seconds``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out.decode().splitlines()


def test_an_unreachable_node_is_down_once_then_every_detail_round() -> None:
    proc = subprocess.Popen(base_args("pg1", detail_every=5), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(f"conninfo pg1 host=127.0.0.1 port={closed_port()} user=nobody\nstart\n".encode())
        proc.stdin.flush()
        lines = read_lines(proc, 1.0)
        proc.stdin.close()  # the end of its input ends it
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lines[0] == "ready"
    recs = [json.loads(line) for line in lines[1:]]
    assert recs and all(r["node"] == "pg1" and r["up"] is False for r in recs)
    assert all("Connection refused" in r["error"] for r in recs), recs[:2]
    rounds = [r["round"] for r in recs]
    # round 0 is a detail round: then one line per detail round, not one per round
    assert rounds[0] == 0 and all(r % 5 == 0 for r in rounds), rounds
    assert rounds == sorted(set(rounds))


def test_the_observer_says_when_the_sampler_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(observer_mod, "find_program", lambda name: None)
    writer = JsonlWriter(tmp_path / "samples.jsonl", Clock())
    obs = Observer(["pg1"], lambda n: "port=1", writer, interval=0.01)
    with pytest.raises(HarnessError, match="walsim-sampler not found"):
        obs.start()
    writer.close()


def test_the_observer_records_a_sampler_that_died(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    writer = JsonlWriter(path, Clock())
    port = closed_port()
    obs = Observer(["pg1"], lambda n: f"host=127.0.0.1 port={port} user=nobody", writer, interval=0.01)
    obs.start(connect_timeout=0.5)
    try:
        wait_until(lambda: obs.counts["pg1"], what="pg1 sampled as down")
        assert obs.latest["pg1"]["up"] is False
        pid = obs.sampler_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: obs.error, what="the observer noticing its sampler's death")
    finally:
        obs.stop()
        writer.close()
    assert "walsim-sampler ended during the run" in (obs.error or "")
    assert "-9" in (obs.error or "")
    assert [r for r in read_jsonl(path) if r.get("source") == "observer" and r.get("error") == obs.error]


def test_the_sampler_ends_with_its_observer(tmp_path: Path) -> None:
    """The sampler's input is the observer's: when it is closed (the observer
    stopped, or its process died) the sampler exits; nothing is left."""
    writer = JsonlWriter(tmp_path / "samples.jsonl", Clock())
    port = closed_port()
    obs = Observer(["pg1", "pg2"], lambda n: f"host=127.0.0.1 port={port} user=nobody", writer, interval=0.01)
    obs.start(connect_timeout=0.2)
    pid = obs.sampler_pid
    obs.stop()
    writer.close()
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert obs.error is None
