"""Raw links and source nodes of walsim-netd against a real etcd.

A single-member etcd (Debian's etcd-server) sits behind a ``proto=raw`` link:
``etcdctl`` (gRPC over HTTP/2) and plain HTTP requests to etcd's JSON gateway
(what Patroni's etcd3 driver speaks) go through it, and each byte-level fault
is observed from the client's side.  Source nodes: connections opened from
two loopback addresses share the link and only one node's are faulted; a
program started with libwalsim-bind.so is named by its node.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from walsim.core.errors import NetdError
from walsim.core.paths import library
from walsim.core.timeouts import scaled, wait_until
from walsim.pg.addresses import BIND_LIBRARY, SOURCE_ENV

IN_CI = bool(os.environ.get("CI"))
# two loopback addresses standing for two nodes' processes
PG1, PG2, PG3 = "127.0.0.41", "127.0.0.42", "127.0.0.43"


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        msg = f"{program} is not installed (Debian packages etcd-server, etcd-client: make deps)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@dataclass
class Etcd:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path


@pytest.fixture
def etcd(tmp_path: Path, port_allocator: Any) -> Iterator[Etcd]:
    """A single-member etcd on reserved ports, stopped (its process group) at the end."""
    binary = _need("etcd")
    client = port_allocator.reserve()
    peer = port_allocator.reserve()
    data = tmp_path / "etcd"
    log = tmp_path / "etcd.log"
    host = "127.0.0.1"
    argv = [binary, "--name", "t", "--data-dir", str(data),
            "--listen-client-urls", f"http://{host}:{client.port}",
            "--advertise-client-urls", f"http://{host}:{client.port}",
            "--listen-peer-urls", f"http://{host}:{peer.port}",
            "--initial-advertise-peer-urls", f"http://{host}:{peer.port}",
            "--initial-cluster", f"t=http://{host}:{peer.port}",
            "--max-request-bytes", str(4 << 20)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "amd64"})
    e = Etcd(proc, host, client.port, log)
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                return http_request(e.host, e.port, "GET", "/health", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(healthy, what="etcd to answer /health", timeout=60, logs=[log])
        yield e
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        client.release()
        peer.release()


def http_request(host: str, port: int, method: str, path: str, body: Any = None, *,
                 timeout: float = 5, source: str | None = None,
                 conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout,
                                           source_address=(source, 0) if source else None)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if own:
            c.close()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def put(conn: http.client.HTTPConnection, key: str, value: str) -> int:
    """PUT through etcd's JSON gateway (the v3 API over HTTP/1.1, as Patroni's driver)."""
    return http_request("", 0, "POST", "/v3/kv/put", {"key": b64(key), "value": b64(value)}, conn=conn)[0]


def get(conn: http.client.HTTPConnection, key: str) -> str | None:
    status, body = http_request("", 0, "POST", "/v3/kv/range", {"key": b64(key)}, conn=conn)
    assert status == 200, body
    kvs = json.loads(body).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def etcdctl(port: int, *args: str, timeout: str = "3s") -> subprocess.CompletedProcess[str]:
    return subprocess.run([_need("etcdctl"), f"--endpoints=http://127.0.0.1:{port}",
                           f"--command-timeout={timeout}", "--dial-timeout=2s", *args],
                          capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"},
                          timeout=scaled(60))


@pytest.fixture
def raw(etcd: Etcd, netd_factory: Any) -> tuple[Any, int]:
    """netd with the raw link ``etcd`` in front of the etcd, and its port."""
    netd = netd_factory(seed=3)
    _, port = netd.add_link("etcd", etcd.host, etcd.port, proto="raw")
    return netd, port


def persistent(port: int, source: str | None = None, timeout: float = 5) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)


# ------------------------------------------------------------------ carrying

def test_etcdctl_and_http_through_a_raw_link(etcd: Etcd, raw: tuple[Any, int]) -> None:
    netd, port = raw
    r = etcdctl(port, "put", "greeting", "hello")
    assert r.returncode == 0, r.stderr
    r = etcdctl(port, "get", "greeting", "--print-value-only")
    assert r.returncode == 0 and r.stdout.strip() == "hello", r.stderr
    c = persistent(port)
    assert put(c, "k", "v1") == 200
    assert get(c, "k") == "v1"
    conns = netd.conns("etcd")
    assert len(conns) == 1
    assert conns[0]["raw"] is True and conns[0]["src"] == "-" and conns[0]["conn"].startswith("etcd/-/")
    assert conns[0]["up"]["messages"] == 0 and conns[0]["app"] == ""
    c.close()
    link = netd.links()[0]
    assert link["proto"] == "raw" and link["accepted"] >= 3
    # the same traffic on a PostgreSQL link is a protocol error: why raw links exist
    _, pgport = netd.add_link("etcd-pg", etcd.host, etcd.port)
    r = etcdctl(pgport, "get", "greeting", timeout="2s")
    assert r.returncode != 0
    reasons = [e["reason"] for e in netd.trace() if e["event"] == "conn_close" and e["link"] == "etcd-pg"]
    assert any("protocol error from client: startup packet at stream offset 0" in x for x in reasons), reasons
    assert not any("protocol error" in e.get("reason", "") for e in netd.trace() if e.get("link") == "etcd")


def test_protocol_faults_are_refused_on_a_raw_link(raw: tuple[Any, int]) -> None:
    netd, _ = raw
    for words, why in ((dict(kind="drop", msg="r"), "kind=drop"),
                       (dict(kind="corrupt", at_lsn="0/10"), "corrupt at_lsn="),
                       (dict(kind="stall", app="pg2"), "app="),
                       (dict(kind="delay", ms=5, msg="k"), "msg="),
                       (dict(kind="stall", after_lsn="0/10"), "after_lsn=")):
        with pytest.raises(NetdError, match=f"link=etcd is a raw link: {why} needs PostgreSQL framing"):
            netd.add_fault("x", link="etcd", **words)
    assert netd.faults() == []


# ------------------------------------------------------------ byte-level faults

def test_stall_holds_then_releases(raw: tuple[Any, int]) -> None:
    netd, port = raw
    c = persistent(port, timeout=1.5)
    assert put(c, "s", "before") == 200
    netd.add_fault("st", link="etcd", kind="stall")
    with pytest.raises(TimeoutError):
        put(c, "s", "during")
    r = etcdctl(port, "get", "s", timeout="1s")
    assert r.returncode != 0  # a new gRPC connection is stalled too
    held = wait_until(lambda: netd.conns("etcd"), what="held bytes",
                      done=lambda cs: any(x["up"]["held"] > 0 for x in cs))
    assert held
    netd.del_fault("st")
    # nothing was lost: the request held during the stall reached etcd
    c2 = persistent(port)
    assert wait_until(lambda: get(c2, "s"), what="the held PUT applied", done=lambda v: v == "during")
    c.close()
    c2.close()


def test_partition_refuses_new_and_holds_open(raw: tuple[Any, int]) -> None:
    netd, port = raw
    c = persistent(port, timeout=1.5)
    assert put(c, "p", "1") == 200
    netd.add_fault("pt", link="etcd", kind="partition")
    with pytest.raises(TimeoutError):
        put(c, "p", "2")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        http_request("127.0.0.1", port, "GET", "/health", timeout=3)
    assert any(e["event"] == "fault" and e.get("action") == "close" for e in netd.trace())
    netd.heal()
    c2 = persistent(port)
    assert wait_until(lambda: get(c2, "p"), what="the held PUT", done=lambda v: v == "2")


@pytest.mark.parametrize("mode", ["close", "reset", "ignore"])
def test_refuse_modes(raw: tuple[Any, int], mode: str) -> None:
    netd, port = raw
    netd.add_fault("rf", link="etcd", kind="refuse", mode=mode)
    if mode in ("close", "reset"):
        # A close (FIN) of a connection whose request already arrived is turned into
        # a reset by the kernel (unread data): the client may see either; netd's
        # trace says which it did.
        expect = (http.client.RemoteDisconnected, ConnectionResetError) if mode == "close" \
            else (ConnectionResetError,)
        with pytest.raises(expect):
            http_request("127.0.0.1", port, "GET", "/health")
        actions = [e["action"] for e in netd.trace() if e["event"] == "fault" and e["rule"] == "rf"]
        assert actions == [mode], netd.trace()
    else:
        # the handshake completes in the backlog; silence until the rule goes
        result: dict[str, Any] = {}

        def waiting() -> None:
            result["status"] = http_request("127.0.0.1", port, "GET", "/health", timeout=30)[0]
        t = threading.Thread(target=waiting)
        t.start()
        t.join(1.0)
        assert t.is_alive() and "status" not in result
        netd.del_fault("rf")
        t.join(scaled(30))
        assert result.get("status") == 200
        return
    netd.del_fault("rf")
    assert http_request("127.0.0.1", port, "GET", "/health")[0] == 200


@pytest.mark.parametrize("kind", ["reset", "close"])
def test_reset_and_close_of_open_connections(raw: tuple[Any, int], kind: str) -> None:
    netd, port = raw
    c = persistent(port)
    assert put(c, "r", "1") == 200
    netd.add_fault("rc", link="etcd", kind=kind, count=1)
    expect: tuple[type[BaseException], ...] = (ConnectionResetError,) if kind == "reset" else \
        (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
    with pytest.raises(expect):
        put(c, "r", "2")
    closes = [e for e in netd.trace() if e["event"] == "conn_close" and e["link"] == "etcd"]
    assert closes and closes[-1]["reason"] == f"{kind} by rule rc" and closes[-1]["reset"] is (kind == "reset")
    # count=1: the next connection is served
    c2 = persistent(port)
    assert put(c2, "r", "3") == 200


def test_delay_and_bandwidth(raw: tuple[Any, int]) -> None:
    netd, port = raw
    c = persistent(port, timeout=30)
    assert put(c, "d", "x") == 200
    netd.add_fault("dl", link="etcd", kind="delay", ms=300, dir="down")
    t0 = time.monotonic()
    assert get(c, "d") == "x"
    assert time.monotonic() - t0 >= 0.3  # a delay can only add time
    netd.del_fault("dl")
    value = "v" * (96 * 1024)
    netd.add_fault("bw", link="etcd", kind="bandwidth", rate="32k", dir="up")
    t0 = time.monotonic()
    assert put(c, "big", value) == 200
    # 96 kB at 32 kB/s (16 kB may leave at once): at least 2.5 s
    assert time.monotonic() - t0 >= 2.5
    netd.del_fault("bw")
    assert get(c, "big") == value
    fires = [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "dl"]
    assert fires and fires[0]["delay_us"] == 300000


def test_cut_after_and_corrupt(raw: tuple[Any, int]) -> None:
    netd, port = raw
    netd.add_fault("cut", link="etcd", kind="cut_after", bytes=40, dir="up")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        http_request("127.0.0.1", port, "POST", "/v3/kv/put", {"key": b64("c"), "value": b64("never")})
    close = [e for e in netd.trace() if e["event"] == "conn_close" and e["link"] == "etcd"][-1]
    assert close["reason"] == "cut_after 40 bytes up (rule cut)" and close["bytes_up"] == 40
    netd.del_fault("cut")
    c = persistent(port)
    assert get(c, "c") is None  # the cut request never reached etcd whole
    # corrupt the first byte of the next response: "HTTP/1.1" becomes "ITTP/1.1"
    netd.add_fault("cx", link="etcd", kind="corrupt", at_offset=0, dir="down", bit=0)
    with pytest.raises(http.client.BadStatusLine, match="ITTP/1.1"):
        http_request("127.0.0.1", port, "GET", "/health")
    netd.del_fault("cx")


# ------------------------------------------------------------ source nodes

def test_faults_by_source_node_on_one_link(raw: tuple[Any, int]) -> None:
    netd, port = raw
    netd.add_node("pg1", PG1)
    netd.add_node("pg2", PG2)
    a = persistent(port, source=PG1, timeout=1.5)
    b = persistent(port, source=PG2, timeout=5)
    assert put(a, "a", "1") == 200 and put(b, "b", "1") == 200
    srcs = sorted(c["src"] for c in netd.conns("etcd"))
    assert srcs == ["pg1", "pg2"]
    assert sorted(c["conn"] for c in netd.conns("etcd")) == ["etcd/pg1/0", "etcd/pg2/0"]

    netd.add_fault("cut1", link="etcd", kind="partition", src="pg1")
    with pytest.raises(TimeoutError):
        put(a, "a", "2")  # pg1's open connection is held
    assert put(b, "b", "2") == 200  # pg2's, on the same link, is not
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        http_request("127.0.0.1", port, "GET", "/health", source=PG1)  # pg1's new ones are refused
    assert http_request("127.0.0.1", port, "GET", "/health", source=PG2)[0] == 200
    # a client from no node's address is not pg1 either
    assert http_request("127.0.0.1", port, "GET", "/health")[0] == 200
    trace = netd.trace()
    refusals = [e for e in trace if e["event"] == "fault" and e["rule"] == "cut1"]
    assert [e["src"] for e in refusals] == ["pg1"]  # pg1's new connection, and only that
    opens = [e for e in trace if e["event"] == "conn_open"]
    assert {e["src"] for e in opens} >= {"pg1", "pg2", "-"}
    assert all(e["src_addr"].startswith({"pg1": PG1, "pg2": PG2, "-": "127.0.0.1"}[e["src"]] + ":") for e in opens)
    netd.heal()
    c = persistent(port)
    assert wait_until(lambda: get(c, "a"), what="pg1's held PUT", done=lambda v: v == "2")

    # src=- : only connections from addresses that are no node's
    netd.add_fault("anon", link="etcd", kind="refuse", mode="reset", src="-")
    with pytest.raises(ConnectionResetError):
        http_request("127.0.0.1", port, "GET", "/health")
    assert http_request("127.0.0.1", port, "GET", "/health", source=PG2)[0] == 200


def test_node_add_names_live_connections_and_bad_input(raw: tuple[Any, int]) -> None:
    netd, port = raw
    c = persistent(port, source=PG3)
    assert put(c, "n", "1") == 200
    assert netd.conns("etcd")[0]["src"] == "-"
    reply = netd.add_node("pg3", PG3)
    assert reply == {"name": "pg3", "addr": PG3, "conns": 1}
    assert netd.conns("etcd")[0]["src"] == "pg3"
    assert netd.conns("etcd")[0]["conn"] == "etcd/-/0"  # keys never change
    assert netd.nodes() == [{"name": "pg3", "addr": PG3}]
    with pytest.raises(NetdError, match=f"addr={PG3} belongs to node pg3"):
        netd.add_node("pg4", PG3)
    with pytest.raises(NetdError, match="not an IPv4 address"):
        netd.add_node("pg4", "localhost")
    with pytest.raises(NetdError, match=r"src=pg9: no such node \(nodes: pg3;"):
        netd.add_fault("x", link="etcd", kind="stall", src="pg9")
    with pytest.raises(NetdError, match="mode=ignore stops the whole listener"):
        netd.add_fault("x", link="etcd", kind="refuse", mode="ignore", src="pg3")
    with pytest.raises(NetdError, match="no such node"):
        netd.del_node("pg9")
    netd.del_node("pg3")
    assert netd.conns("etcd")[0]["src"] == "-" and netd.nodes() == []
    assert [e["event"] for e in netd.trace() if e["event"].startswith("node_")] == ["node_add", "node_del"]
    c.close()


class PeerRecorder:
    """A TCP server that records the address each connection comes from."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            conn.sendall(b"hi\n")
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_bind_library_names_the_node_and_netd_passes_the_address_on(netd_factory: Any) -> None:
    lib = library(BIND_LIBRARY)
    assert lib.is_file(), f"{lib} missing: run make"
    up = PeerRecorder()
    try:
        netd = netd_factory(seed=1)
        _, port = netd.add_link("r", "127.0.0.1", up.port, proto="raw")
        netd.add_node("pg2", PG2)
        code = ("import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
                "print(s.getsockname()[0]); print(s.recv(3).decode().strip())")
        env = {**os.environ, "LD_PRELOAD": str(lib), SOURCE_ENV: PG2}
        out = subprocess.run([sys.executable, "-c", code, str(port)], env=env, capture_output=True,
                             text=True, timeout=scaled(30), check=True).stdout.split()
        assert out == [PG2, "hi"]
        # netd named it, and connected upstream from the same address
        opened = [e for e in netd.trace() if e["event"] == "conn_open"]
        assert opened[-1]["src"] == "pg2" and opened[-1]["conn"] == "r/pg2/0"
        assert up.peers == [PG2]
        # without the library: walsim's own address, no node
        subprocess.run([sys.executable, "-c", code, str(port)], capture_output=True, timeout=scaled(30),
                       check=True)
        assert up.peers[-1] == "127.0.0.1"
        assert [e for e in netd.trace() if e["event"] == "conn_open"][-1]["src"] == "-"
    finally:
        up.close()


def test_valgrind_clean_raw_session(etcd: Etcd, netd_factory: Any) -> None:
    """Raw links, source nodes and rule changes in the middle of a block, under
    Valgrind: any memory error or leak makes the daemon exit 99."""
    if shutil.which("valgrind") is None:
        if IN_CI:
            pytest.fail("valgrind is not installed (make deps)")
        pytest.skip("valgrind not installed")
    netd = netd_factory(seed=9, valgrind=True, timeout=60)
    _, port = netd.add_link("etcd", etcd.host, etcd.port, proto="raw")
    netd.add_node("pg1", PG1)
    a = persistent(port, source=PG1, timeout=30)
    b = persistent(port, timeout=30)
    assert put(a, "v", "1") == 200 and put(b, "w", "1") == 200
    netd.add_fault("d", link="etcd", kind="delay", ms=1, jitter_ms=3, src="pg1")  # mid-block
    netd.add_fault("bw", link="etcd", kind="bandwidth", rate="1M", src=["pg1", "-"])
    assert get(a, "v") == "1" and get(b, "w") == "1"
    assert etcdctl(port, "put", "x", "y").returncode == 0
    netd.add_fault("c", link="etcd", kind="close", src="-")
    with pytest.raises((http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
        put(b, "w", "2")
    netd.del_fault("c")
    netd.add_node("pg2", PG2)
    netd.del_node("pg1")
    netd.stats()
    netd.faults()
    netd.heal()
    assert put(a, "v", "3") == 200
    a.close()
    assert netd.stop() == 0, netd.log_path.read_text()
