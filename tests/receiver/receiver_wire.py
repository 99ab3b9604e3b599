"""Small PostgreSQL v3 protocol pieces for the receiver suite: a relay that
can flip a bit in XLogData on its way to the receiver and records the status
updates the receiver sends, and a fake replication server that plays a script.

Both run in threads on 127.0.0.1 and are closed by the test (``close()``).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

PG_EPOCH_OFFSET_US = 946684800 * 1_000_000


@dataclass
class StatusUpdate:
    """An 'r' message as the server received it."""
    connection: int
    write: int
    flush: int
    apply: int
    reply_requested: bool


def parse_status(payload: bytes, connection: int) -> StatusUpdate | None:
    if len(payload) != 34 or payload[:1] != b"r":
        return None
    write, flush, apply, _ = struct.unpack(">QQQq", payload[1:33])
    return StatusUpdate(connection, write, flush, apply, bool(payload[33]))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def _read_typed(sock: socket.socket) -> tuple[bytes, bytes]:
    head = _recv_exact(sock, 5)
    (length,) = struct.unpack(">I", head[1:])
    return head[:1], _recv_exact(sock, length - 4)


def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack(">I", len(body) + 4) + body


def copy_data(payload: bytes) -> bytes:
    return msg(b"d", payload)


def xlogdata(start: int, wal: bytes, wal_end: int | None = None) -> bytes:
    return b"w" + struct.pack(">QQq", start, wal_end if wal_end is not None else start + len(wal), 0) + wal


def keepalive(wal_end: int, reply: bool) -> bytes:
    return b"k" + struct.pack(">Qq?", wal_end, 0, reply)


# --------------------------------------------------------------------- relay

class FlipRelay:
    """TCP relay to ``upstream``; flips ``mask`` in the first WAL byte of the
    ``nth`` XLogData message of the first connection (server -> client)."""

    def __init__(self, listen_port: int, upstream: tuple[str, int], nth: int = 3, mask: int = 0x01) -> None:
        self.upstream = upstream
        self.nth = nth
        self.mask = mask
        self.flipped_lsn: int | None = None
        self.status: list[StatusUpdate] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(8)
        self.port = listen_port
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                conn_no = self.connections
                self._socks += [client, server]
            threading.Thread(target=self._server_to_client, args=(server, client, conn_no), daemon=True).start()
            threading.Thread(target=self._client_to_server, args=(client, server, conn_no), daemon=True).start()

    def _server_to_client(self, server: socket.socket, client: socket.socket, conn_no: int) -> None:
        seen = 0
        try:
            while True:
                kind, body = _read_typed(server)
                if kind == b"d" and body[:1] == b"w" and len(body) > 25:
                    seen += 1
                    if conn_no == 1 and seen == self.nth and self.flipped_lsn is None:
                        (start,) = struct.unpack(">Q", body[1:9])
                        body = body[:25] + bytes([body[25] ^ self.mask]) + body[26:]
                        self.flipped_lsn = start
                client.sendall(msg(kind, body))
        except (OSError, ConnectionError):
            pass
        finally:
            _close_both(server, client)

    def _client_to_server(self, client: socket.socket, server: socket.socket, conn_no: int) -> None:
        try:
            (length,) = struct.unpack(">I", _recv_exact(client, 4))
            server.sendall(struct.pack(">I", length) + _recv_exact(client, length - 4))
            while True:
                kind, body = _read_typed(client)
                if kind == b"d":
                    st = parse_status(body, conn_no)
                    if st is not None:
                        with self._lock:
                            self.status.append(st)
                server.sendall(msg(kind, body))
        except (OSError, ConnectionError):
            pass
        finally:
            _close_both(server, client)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            for s in self._socks:
                _close_quiet(s)


def _close_quiet(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def _close_both(a: socket.socket, b: socket.socket) -> None:
    _close_quiet(a)
    _close_quiet(b)


# ---------------------------------------------------------------- fake server

@dataclass
class FakeServerScript:
    """What the fake replication server answers (per connection where it matters)."""
    sysids: list[str]                      # IDENTIFY_SYSTEM systemid per connection (last repeats)
    xlogpos: str = "0/900100"
    timeline: int = 1
    segment_size: str = "1MB"
    integer_datetimes: str = "on"
    #: CopyData payloads sent after CopyBothResponse, on the first connection
    stream: list[bytes] = field(default_factory=list)
    #: after the script: "close" the socket, or "end" with CommandComplete COPY 0 + close
    finish: str = "close"
    #: before finishing, wait for this many more status updates (0: only drain until closed)
    hold_for_statuses: int = 0


class FakeServer:
    """A replication server that authenticates with trust and plays a script."""

    def __init__(self, port: int, script: FakeServerScript) -> None:
        self.script = script
        self.status: list[StatusUpdate] = []
        self.queries: list[str] = []
        self.connections = 0
        self.errors: list[str] = []
        self._replies_seen = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(8)
        self.port = port
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for s in self._socks:
            _close_quiet(s)

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock, self.connections), daemon=True).start()

    # ------------------------------------------------------------- protocol
    @staticmethod
    def _row(sock: socket.socket, names: list[str], values: list[str | None], tag: str) -> None:
        desc = struct.pack(">H", len(names))
        for n in names:
            desc += n.encode() + b"\0" + struct.pack(">IhIhih", 0, 0, 25, -1, -1, 0)
        row = struct.pack(">H", len(values))
        for v in values:
            row += struct.pack(">i", -1) if v is None else struct.pack(">i", len(v.encode())) + v.encode()
        sock.sendall(msg(b"T", desc) + msg(b"D", row) + msg(b"C", tag.encode() + b"\0") + msg(b"Z", b"I"))

    @staticmethod
    def _error(sock: socket.socket, text: str) -> None:
        body = b"SERROR\0C42601\0M" + text.encode() + b"\0\0"
        sock.sendall(msg(b"E", body) + msg(b"Z", b"I"))

    def _startup(self, sock: socket.socket) -> None:
        while True:
            (length,) = struct.unpack(">I", _recv_exact(sock, 4))
            body = _recv_exact(sock, length - 4)
            (code,) = struct.unpack(">I", body[:4])
            if code in (80877103, 80877104):          # SSLRequest, GSSENCRequest
                sock.sendall(b"N")
                continue
            break
        out = msg(b"R", struct.pack(">I", 0))
        for k, v in (("server_version", "15.4"), ("integer_datetimes", self.script.integer_datetimes),
                     ("server_encoding", "UTF8"), ("client_encoding", "UTF8")):
            out += msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
        out += msg(b"K", struct.pack(">II", 4242, 1)) + msg(b"Z", b"I")
        sock.sendall(out)

    def _serve(self, sock: socket.socket, conn_no: int) -> None:
        try:
            self._startup(sock)
            while True:
                kind, body = _read_typed(sock)
                if kind == b"X":
                    return
                if kind == b"d":
                    st = parse_status(body, conn_no)
                    if st is not None:
                        self.status.append(st)
                        self._replies_seen.set()
                    continue
                if kind != b"Q":
                    continue
                query = body.rstrip(b"\0").decode()
                self.queries.append(query)
                if not self._answer(sock, conn_no, query):
                    return
        except (OSError, ConnectionError) as exc:
            self.errors.append(str(exc))
        finally:
            _close_quiet(sock)

    def _answer(self, sock: socket.socket, conn_no: int, query: str) -> bool:
        s = self.script
        if query == "SHOW data_directory_mode":
            self._row(sock, ["data_directory_mode"], ["0700"], "SHOW")
        elif query == "SHOW wal_segment_size":
            self._row(sock, ["wal_segment_size"], [s.segment_size], "SHOW")
        elif query == "IDENTIFY_SYSTEM":
            sysid = s.sysids[min(conn_no, len(s.sysids)) - 1]
            self._row(sock, ["systemid", "timeline", "xlogpos", "dbname"],
                      [sysid, str(s.timeline), s.xlogpos, None], "IDENTIFY_SYSTEM")
        elif query.startswith("START_REPLICATION"):
            sock.sendall(msg(b"W", b"\0\0\0"))
            self._play(sock)
            return False
        else:
            self._error(sock, f"fake server does not know {query!r}")
        return True

    def _play(self, sock: socket.socket) -> None:
        for payload in self.script.stream:
            if payload[:1] == b"k" and payload[-1:] == b"\x01":
                self._replies_seen.clear()
                sock.sendall(copy_data(payload))
                # read until the receiver answers the ping (or goes away)
                sock.settimeout(30)
                while not self._replies_seen.is_set():
                    kind, body = _read_typed(sock)
                    if kind == b"d":
                        st = parse_status(body, self.connections)
                        if st is not None:
                            st.reply_requested = True  # answers a ping
                            self.status.append(st)
                            self._replies_seen.set()
                sock.settimeout(None)
                continue
            sock.sendall(copy_data(payload))
        if self.script.hold_for_statuses:
            wanted = len(self.status) + self.script.hold_for_statuses
            sock.settimeout(30)
            while len(self.status) < wanted:
                kind, body = _read_typed(sock)
                if kind == b"d":
                    st = parse_status(body, self.connections)
                    if st is not None:
                        self.status.append(st)
            return
        if self.script.finish == "end":
            # what a PG15 walsender does at shutdown: CommandComplete, then close
            sock.sendall(msg(b"C", b"COPY 0\0"))
            return
        last = self.script.stream[-1] if self.script.stream else b""
        if last[:1] == b"k" and last[-1:] == b"\x01":
            # the answer to the final ping proves everything before it was read
            return
        # give the receiver the chance to read everything before the close
        sock.settimeout(10)
        try:
            while True:
                kind, body = _read_typed(sock)
                if kind == b"d":
                    st = parse_status(body, self.connections)
                    if st is not None:
                        self.status.append(st)
        except (OSError, ConnectionError):
            pass

