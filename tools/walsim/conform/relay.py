"""A small observing TCP relay: forwards a replication client to its server
unchanged and records every protocol message of both directions with its
time, so that receiver checks can judge status updates, pings and replies.

walsim-netd is the fault proxy; its trace records commands and faults but
not every message, which these checks need, so the suite observes with this
relay instead (it never alters a byte).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

SSL_CODES = {80877103, 80877104}


class _Framer:
    """Splits one direction into messages (the frontend starts untyped)."""

    def __init__(self, frontend: bool) -> None:
        self.buf = b""
        self.untyped = frontend
        self.expect_answer = False

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self.buf += data
        out: list[tuple[str, bytes]] = []
        while True:
            if self.expect_answer:
                if not self.buf:
                    break
                out.append(("answer", self.buf[:1]))
                self.buf = self.buf[1:]
                self.expect_answer = False
                continue
            if self.untyped:
                if len(self.buf) < 8:
                    break
                length, code = struct.unpack("!II", self.buf[:8])
                if len(self.buf) < length:
                    break
                body, self.buf = self.buf[8:length], self.buf[length:]
                if code in SSL_CODES:
                    out.append(("request", struct.pack("!I", code)))
                else:
                    out.append(("startup", body))
                    self.untyped = False
                continue
            if len(self.buf) < 5:
                break
            length = struct.unpack("!I", self.buf[1:5])[0]
            if len(self.buf) < 1 + length:
                break
            out.append((chr(self.buf[0]), self.buf[5:1 + length]))
            self.buf = self.buf[1 + length:]
        return out


def decode(direction: str, mtype: str, body: bytes) -> dict[str, Any]:
    """One message as a dict of its interesting fields."""
    m: dict[str, Any] = {"dir": direction, "type": mtype, "size": len(body)}
    if mtype == "startup":
        words = body.split(b"\0")
        m["params"] = {words[i].decode(errors="replace"): words[i + 1].decode(errors="replace")
                       for i in range(0, len(words) - 1, 2) if words[i]}
    elif mtype == "Q":
        m["sql"] = body.rstrip(b"\0").decode(errors="replace")
    elif mtype == "R" and len(body) >= 4:
        m["code"] = struct.unpack("!I", body[:4])[0]
    elif mtype in ("E", "N"):
        for field in body.split(b"\0"):
            if field[:1] in (b"C", b"M", b"S"):
                m[field[:1].decode()] = field[1:].decode(errors="replace")
    elif mtype == "d" and body:
        sub = chr(body[0])
        m["sub"] = sub
        if sub == "w" and len(body) >= 25:
            start, wal_end = struct.unpack("!QQ", body[1:17])
            m.update(start=start, len=len(body) - 25, wal_end=wal_end)
        elif sub == "k" and len(body) >= 18:
            m.update(wal_end=struct.unpack("!Q", body[1:9])[0], reply=body[17])
        elif sub == "r" and len(body) >= 34:
            w, f, a = struct.unpack("!QQQ", body[1:25])
            m.update(write=w, flush=f, apply=a, reply=body[33])
    elif mtype == "C":
        m["tag"] = body.rstrip(b"\0").decode(errors="replace")
    elif mtype == "D":
        vals = []
        n = struct.unpack("!H", body[:2])[0] if len(body) >= 2 else 0
        pos = 2
        for _ in range(n):
            ln = struct.unpack("!i", body[pos:pos + 4])[0]
            pos += 4
            vals.append(None if ln < 0 else body[pos:pos + ln].decode("latin-1"))
            pos += max(ln, 0)
        m["values"] = vals
    return m


class ObservingRelay:
    """Listens on 127.0.0.1 (a free port), forwards to upstream, records messages."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.messages: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = False
        self._socks: list[socket.socket] = []
        self._t0 = self.started = time.monotonic()   # message times ("t") count from here
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _record(self, m: dict[str, Any]) -> None:
        with self._lock:
            m["t"] = time.monotonic() - self._t0
            self.messages.append(m)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn = self.connections
            self._record({"dir": "event", "type": "accept", "conn": conn, "size": 0})
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError as exc:
                self._record({"dir": "event", "type": "upstream_failed", "conn": conn,
                              "size": 0, "detail": str(exc)})
                client.close()
                continue
            self._socks += [client, server]
            front, back = _Framer(True), _Framer(False)
            for src, dst, framer, other, d in ((client, server, front, back, "C"),
                                               (server, client, back, front, "S")):
                threading.Thread(target=self._pump, args=(src, dst, framer, other, d, conn),
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, framer: _Framer, other: _Framer,
              direction: str, conn: int) -> None:
        while True:
            try:
                data = src.recv(262144)
            except OSError:
                data = b""
            if not data:
                self._record({"dir": "event", "type": f"close_{direction}", "conn": conn, "size": 0})
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            for mtype, body in framer.feed(data):
                if mtype == "request":
                    other.expect_answer = True
                m = decode(direction, mtype, body)
                m["conn"] = conn
                self._record(m)
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        try:
            self.listener.close()
        except OSError:
            pass
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
