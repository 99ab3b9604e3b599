"""Sender conformance: protocol.md §7.1 checked with ``walsim-probe``.

Every check opens its own connection(s) through :class:`SenderContext`,
which caches what several checks share (IDENTIFY_SYSTEM, the segment size,
the history file, one stream of the current and one of the parent
timeline).  Checks read only the transcripts; nothing here trusts the
target's own account of what it did.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walsim.conform.checks import Failed, Skipped, check, checks_for, expect, run_checks
from walsim.conform import majors
from walsim.conform.probe import ConformError, Probe, Target, Transcript, brief, sequence
from walsim.conform.results import Report, Result
from walsim.core.lsn import Lsn
from walsim.core.timeouts import scaled

PAGE = 8192
MAX_SEND = 128 * 1024
PG_EPOCH_US = 946684800 * 1_000_000
AUTH = "startup\n"
#: why a target would refuse walsim-probe's session, and what to do about it
REFUSAL_HINTS = {
    "28": "The target's authentication refused this role: connect as a role that pg_hba.conf admits for "
          "replication connections (a 'host replication' line) and that has the REPLICATION attribute; "
          "in a cluster walsim built, that is user=replicator with the cluster's passfile (docs/clusters.md)",
    "42501": "The role lacks the REPLICATION attribute: use a replication role (user=replicator in a "
             "cluster walsim built)",
    "53300": "The target has no connection slot left (max_wal_senders or max_connections): free one and "
             "run again",
    "57P03": "The target does not accept connections yet (starting up, shutting down or in recovery "
             "without hot standby): wait until it does",
}
SEGNAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(B|kB|MB|GB)", text)
    if not m:
        raise Failed(f"SHOW wal_segment_size = {text!r} has no unit")
    return int(m.group(1)) * {"B": 1, "kB": 1024, "MB": 1 << 20, "GB": 1 << 30}[m.group(2)]


def parse_duration_ms(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(ms|s|min|h)?", text)
    if not m:
        return -1
    return int(m.group(1)) * {None: 1, "ms": 1, "s": 1000, "min": 60000, "h": 3600000}[m.group(2)]


@dataclass
class Stream:
    """One START_REPLICATION conversation that received XLogData."""
    label: str
    transcript: Transcript
    tli: int
    start: int
    historic: bool


class SenderContext:
    """What the sender checks share.

    ``waldir`` (the directory the sender serves, or a node's pg_wal) enables
    the byte comparison; ``wal_generator`` (a callable that makes the target
    write WAL) enables the live-append check; ``shutdown`` (a callable that
    stops the sender gracefully) enables the shutdown check.
    """

    def __init__(self, target: Target, *, waldir: Path | None = None, max_wait: float = 10.0,
                 wal_generator: Callable[[], None] | None = None,
                 shutdown: Callable[[], None] | None = None,
                 pg_bindir: Path | None = None, probe_binary: Path | None = None,
                 expect_major: int | None = None) -> None:
        self.target = target
        #: the major the target must report (``--pg N``); None: whatever supported major it reports
        self.expect_major = expect_major
        self.probe = Probe(target, probe_binary)
        self.waldir = waldir
        self.max_wait = max_wait
        self.wal_generator = wal_generator
        self.shutdown = shutdown
        self.pg_bindir = pg_bindir
        self._cache: dict[str, Any] = {}
        self.xlogpos_seen: list[tuple[str, int]] = []
        #: the transcript of the first session (what preflight judges a refusal from)
        self.first_transcript: Transcript | None = None

    def run(self, script: str, timeout: float = 60) -> Transcript:
        return self.probe.run(script, timeout)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # --- shared facts
    def preflight(self) -> None:
        """One session before any check: a target walsim cannot talk to is not a
        non-conformant target.  Refused authentication (SQLSTATE class 28), a role
        without REPLICATION (42501), no room (53300) or a server not accepting
        connections (57P03) ends the run with one ConformError naming the cause and
        what to do; a target that cannot be reached raises from the probe."""
        try:
            self.identify()  # the first session: also the reference xlogpos of S06
            return
        except Failed:
            t = self.first_transcript
        if t is None:
            return
        errors = [m for m in t.incoming() if m.get("type") == "E"]
        if not errors or t.of_type("Z"):
            return  # S05 reports it
        fields = errors[0]
        code, text = str(fields.get("C") or ""), str(fields.get("M") or "").strip()
        hint = REFUSAL_HINTS.get(code) or REFUSAL_HINTS.get(code[:2])
        if hint is None:
            return  # another error at startup: the checks judge it (S02 and others)
        raise ConformError(f"{self.target} refused the replication connection before any check could run: "
                           f"{code} {text}. {hint} (nothing was checked: the target's conformance is unknown)")

    def identify(self) -> dict[str, Any]:
        return self.cached("identify", lambda: self.identify_now("first connection"))

    def identify_now(self, label: str) -> dict[str, Any]:
        t = self.run(AUTH + "query IDENTIFY_SYSTEM\nwait Z,close 10000\nterminate\n")
        if self.first_transcript is None:
            self.first_transcript = t
        if not t.of_type("Z"):
            raise Failed("no session: " + sequence(t.incoming()))
        answer = t.after("IDENTIFY_SYSTEM")
        rows = [m for m in answer if m["type"] == "D"]
        info: dict[str, Any] = {"answer": answer, "transcript": t}
        if len(rows) == 1 and len(rows[0]["values"]) >= 3:
            v = rows[0]["values"]
            info.update(systemid=v[0], timeline=int(v[1]) if (v[1] or "").isdigit() else None,
                        xlogpos=Lsn.parse(v[2]) if v[2] else None)
            if info["xlogpos"] is not None:
                self.xlogpos_seen.append((label, int(info["xlogpos"])))
        return info

    def server_version(self) -> str:
        t = self.identify()["transcript"]
        params = {m["name"]: m["value"] for m in t.of_type("S")}
        return str(params.get("server_version") or "")

    def major(self) -> int:
        """The major whose behaviour the version-keyed checks expect (conform/majors.py):
        ``expect_major``, else the major of the target's server_version."""
        if self.expect_major is not None:
            return self.expect_major
        m = re.match(r"(\d+)", self.server_version())
        if not m or not majors.supported(int(m.group(1))):
            raise Failed(f"server_version {self.server_version()!r} is of no PostgreSQL major walsim "
                         f"knows; the version-keyed checks cannot tell what to expect")
        return int(m.group(1))

    def tli(self) -> int:
        tli = self.identify().get("timeline")
        if not tli:
            raise Failed(f"IDENTIFY_SYSTEM gave no usable timeline: {sequence(self.identify()['answer'])}")
        return tli

    def xlogpos(self) -> int:
        pos = self.identify().get("xlogpos")
        if pos is None:
            raise Failed(f"IDENTIFY_SYSTEM gave no xlogpos: {sequence(self.identify()['answer'])}")
        return int(pos)

    def seg_size(self) -> int:
        def show() -> int:
            t = self.run(AUTH + "query SHOW wal_segment_size\nwait Z,close 10000\nterminate\n")
            rows = [m for m in t.after("SHOW") if m["type"] == "D"]
            if not rows:
                raise Failed("SHOW wal_segment_size: " + sequence(t.after("SHOW")))
            return parse_size(rows[0]["values"][0])
        return self.cached("seg_size", show)

    def history(self, tli: int) -> tuple[Transcript, bytes | None]:
        def fetch() -> tuple[Transcript, bytes | None]:
            t = self.run(AUTH + f"query TIMELINE_HISTORY {tli}\nwait Z,close 10000\nterminate\n")
            rows = [m for m in t.after("TIMELINE_HISTORY") if m["type"] == "D"]
            content = rows[0]["values"][1] if rows and len(rows[0]["values"]) == 2 else None
            return t, content.encode("latin-1") if content is not None else None
        return self.cached(f"history{tli}", fetch)

    def parent(self) -> tuple[int, int]:
        """(parent timeline, switch point) of the current timeline."""
        tli = self.tli()
        if tli == 1:
            raise Skipped("the target is on timeline 1: there is no historic timeline to test")
        _t, content = self.history(tli)
        if content is None:
            raise Failed(f"TIMELINE_HISTORY {tli} returned no file")
        entries = []
        for line in content.decode("latin-1").splitlines():
            m = re.match(r"^\s*(\d+)\s+([0-9A-Fa-f]+/[0-9A-Fa-f]+)", line)
            if m:
                entries.append((int(m.group(1)), int(Lsn.parse(m.group(2)))))
        if not entries:
            raise Failed(f"history file of timeline {tli} has no entry: {content[:80]!r}")
        return entries[-1]

    def stream_current(self) -> Stream:
        def make() -> Stream:
            seg = self.seg_size()
            pos = self.xlogpos()
            start = pos - pos % seg
            script = (AUTH + f"query START_REPLICATION {Lsn(start)} TIMELINE {self.tli()}\n"
                      f"wait W,E,close 10000\nstream {Lsn(pos)} 20000\n"
                      "status received received 0/0 1\nwait k,close 3000\n"
                      "copydone\nwait Z,close 5000\n"
                      "query IDENTIFY_SYSTEM\nwait Z,close 5000\nterminate\nread 500\n")
            return Stream("current timeline", self.run(script), self.tli(), start, False)
        return self.cached("stream_current", make)

    def stream_parent(self) -> Stream:
        def make() -> Stream:
            ptli, switch = self.parent()
            seg = self.seg_size()
            # one segment before the switch gives more data; it may be gone (then the switch's own)
            for start in (switch - switch % seg - seg, switch - switch % seg):
                if start < 0:
                    continue
                script = (AUTH + f"query START_REPLICATION {Lsn(start)} TIMELINE {ptli}\n"
                          "wait W,E,close 10000\nwait c,E,close 30000\n"
                          "copydone\nwait Z,close 5000\n"
                          "query IDENTIFY_SYSTEM\nwait Z,close 5000\nterminate\nread 500\n")
                t = self.run(script)
                if not any(e.get("C") == "58P01" for e in t.of_type("E")):
                    break
            return Stream(f"timeline {ptli} to its switch point {Lsn(switch)}", t, ptli, start, True)
        return self.cached("stream_parent", make)

    def streams(self) -> list[Stream]:
        out = [self.stream_current()]
        try:
            out.append(self.stream_parent())
        except Skipped:
            pass
        return out

    def wal_file_bytes(self, tli: int, lsn: int, length: int) -> bytes | None:
        assert self.waldir is not None
        return wal_bytes(self.waldir, self.seg_size(), tli, lsn, length)


def wal_bytes(waldir: Path, seg: int, tli: int, lsn: int, length: int) -> bytes | None:
    """Bytes [lsn, lsn+length) from waldir as a PostgreSQL reader takes them: the
    segment of timeline tli, or of the lowest newer timeline that has it (the
    segment of a switch point), or else of the nearest older one (before its
    switch point a new timeline's first segment is a copy of its parent's, and
    a sender serves it from the parent's file when its own is absent); None if
    no file holds them."""
    out = b""
    per_id = 0x100000000 // seg
    while length > 0:
        segno, off = divmod(lsn, seg)
        n = min(length, seg - off)
        path = None
        for t in [*range(tli, tli + 16), *range(tli - 1, 0, -1)]:
            for suffix in ("", ".partial"):
                p = waldir / f"{t:08X}{segno // per_id:08X}{segno % per_id:08X}{suffix}"
                if p.exists():
                    path = p
                    break
            if path:
                break
        if path is None:
            return None
        with open(path, "rb") as f:
            f.seek(off)
            out += f.read(n)
        lsn += n
        length -= n
    return out


def _answer(ctx: SenderContext, sql: str, wait: str = "Z,close", ms: int = 10000,
            after: str = "") -> Transcript:
    return ctx.run(AUTH + f"query {sql}\nwait {wait} {ms}\n{after}terminate\n")


def _error_before_copy(t: Transcript, sql: str) -> dict[str, Any]:
    msgs = t.after(sql)
    types = [m["type"] for m in msgs]
    expect("E" in types, f"{sql}: no ErrorResponse: {sequence(msgs)}")
    expect("W" not in types[: types.index("E")], f"{sql}: CopyBothResponse before the error: {sequence(msgs)}")
    return msgs[types.index("E")]


# ---------------------------------------------------------------- startup

@check("S01", "It answers SSLRequest (and GSSENCRequest) with a single byte 'N' (or 'S' with TLS) "
       "and then accepts the StartupMessage on the same socket.",
       "postmaster.c ProcessStartupPacket; protocol.sgml 'SSL Session Encryption'")
def s01(ctx: SenderContext) -> str:
    ev = []
    for req in ("ssl", "gssenc"):
        t = ctx.run(f"{req}\n" + AUTH + "terminate\n")
        answers = t.of_type("answer")
        expect(len(answers) == 1 and answers[0]["byte"] in "NS" + ("G" if req == "gssenc" else ""),
               f"{req} request answered {sequence(t.incoming())}")
        if answers[0]["byte"] == "N":
            expect(bool(t.of_type("Z")), f"startup after {req} answer 'N' failed: {sequence(t.incoming())}")
        ev.append(f"{req}: '{answers[0]['byte']}' then {brief(t.of_type('Z')[0]) if t.of_type('Z') else '-'}")
    return "; ".join(ev)


@check("S02", "It accepts protocol 3.0 startup with replication=true (also on, yes, 1) and ignores "
       "database for physical replication. An invalid replication value gives FATAL 22023.",
       "postmaster.c ProcessStartupPacket (parse_bool of 'replication')")
def s02(ctx: SenderContext) -> str:
    for value in ("true", "on", "yes", "1"):
        t = ctx.run(f"startup replication={value} database=nosuchdb\nterminate\n")
        expect(bool(t.of_type("Z")), f"replication={value}: {sequence(t.incoming())}")
    t = ctx.run("startup replication=bogus\nread 1000\n")
    errs = t.of_type("E")
    expect(bool(errs) and errs[0].get("C") == "22023" and errs[0].get("S") == "FATAL",
           f"replication=bogus: {sequence(t.incoming())}")
    return f"true/on/yes/1 reach Z; replication=bogus: {brief(errs[0])}"


@check("S03", "After auth it sends at least server_version (of a supported major, 13 to 18, and the "
       "expected one with --pg), integer_datetimes=on, "
       "server_encoding, client_encoding, standard_conforming_strings=on, then BackendKeyData, "
       "then ReadyForQuery 'I'.",
       "postinit.c / guc.c GUC_REPORT parameters; fe-connect.c CONNECTION_AUTH_OK")
def s03(ctx: SenderContext) -> str:
    t = ctx.identify()["transcript"]
    params = {m["name"]: m["value"] for m in t.of_type("S")}
    for name in ("server_version", "integer_datetimes", "server_encoding", "client_encoding",
                 "standard_conforming_strings"):
        expect(name in params, f"no ParameterStatus {name}; got {sorted(params)}")
    major = params["server_version"].split(".")[0]
    expect(major.isdigit() and majors.supported(int(major)),
           f"server_version={params['server_version']!r} is of no supported major")
    expect(ctx.expect_major is None or int(major) == ctx.expect_major,
           f"server_version={params['server_version']!r}, expected PostgreSQL {ctx.expect_major}")
    expect(params["integer_datetimes"] == "on", f"integer_datetimes={params['integer_datetimes']!r}")
    expect(params["standard_conforming_strings"] == "on",
           f"standard_conforming_strings={params['standard_conforming_strings']!r}")
    order = [m["type"] for m in t.incoming() if m["type"] in "RSKZ"]
    auth_ok = max(i for i, x in enumerate(order) if x == "R")
    tail = order[auth_ok + 1:]
    expect("K" in tail and tail.index("K") < tail.index("Z") and tail[-1] == "Z"
           and t.of_type("Z")[0]["status"] == "I", f"after AuthenticationOk: {''.join(tail)}")
    return (f"server_version={params['server_version']!r}, integer_datetimes=on, "
            f"{len(params)} ParameterStatus, then K, Z 'I'")


@check("S04", "It rejects a role without REPLICATION or superuser with FATAL 42501 (if roles are "
       "modelled); otherwise it documents its auth policy.",
       "postinit.c InitPostgres ('must be superuser or replication role to start walsender')")
def s04(ctx: SenderContext) -> str:
    raise Skipped("needs a role without REPLICATION on the target; the suite does not create roles")


# ---------------------------------------------------------------- commands

@check("S05", "IDENTIFY_SYSTEM returns exactly 1 row: systemid text (decimal u64), timeline int4 "
       "(int8 from 16), xlogpos text %X/%X, dbname text NULL. Then C 'IDENTIFY_SYSTEM' and Z. (The "
       "systemid is the one in the long page header of the WAL it streams.)",
       "walsender.c IdentifySystem (INT8OID from 16); xlog_internal.h XLogLongPageHeaderData")
def s05(ctx: SenderContext) -> str:
    ans = ctx.identify()["answer"]
    types = [m["type"] for m in ans]
    expect(types == ["T", "D", "C", "Z"], f"IDENTIFY_SYSTEM answered {sequence(ans)}")
    fields = ans[0]["fields"]
    tl_oid = majors.identify_timeline_oid(ctx.major())
    expect([(f["name"], f["type"]) for f in fields] ==
           [("systemid", 25), ("timeline", tl_oid), ("xlogpos", 25), ("dbname", 25)],
           f"columns {brief(ans[0])} (PostgreSQL {ctx.major()}: timeline of type {tl_oid})")
    v = ans[1]["values"]
    expect(len(v) == 4 and re.fullmatch(r"\d{1,20}", v[0] or "") is not None and int(v[0]) < 2**64,
           f"systemid {v[0]!r}")
    expect(re.fullmatch(r"[1-9]\d*", v[1] or "") is not None, f"timeline {v[1]!r} (must be >= 1)")
    expect(re.fullmatch(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}", v[2] or "") is not None, f"xlogpos {v[2]!r}")
    expect(v[3] is None, f"dbname {v[3]!r} (NULL for physical replication)")
    expect(ans[2]["tag"] == "IDENTIFY_SYSTEM", f"tag {ans[2]['tag']!r}")
    s = ctx.stream_current()
    heads = [w for w in s.transcript.xlogdata() if w["start"] % ctx.seg_size() == 0 and w["len"] >= 40]
    if heads:
        head = bytes.fromhex(heads[0]["head"])
        sysid = int.from_bytes(head[24:32], "little")
        expect(sysid == int(v[0]), f"IDENTIFY_SYSTEM systemid {v[0]} but the long page header of "
               f"{Lsn(heads[0]['start'])} says {sysid}")
    return f"{brief(ans[0])} {brief(ans[1])} {brief(ans[2])}" + (
        "; matches xlp_sysid of the streamed segment" if heads else "")


@check("S06", "xlogpos equals the end of valid WAL that the sender is willing to serve, and "
       "START_REPLICATION at exactly that LSN succeeds. (It never moves backwards between connections.)",
       "walsender.c IdentifySystem (GetFlushRecPtr) and StartReplication")
def s06(ctx: SenderContext) -> str:
    pos = ctx.xlogpos()
    sql = f"START_REPLICATION {Lsn(pos)} TIMELINE {ctx.tli()}"
    t = _answer(ctx, sql, "W,E,close", 10000, "read 300\n")
    msgs = t.after(sql)
    expect(msgs and msgs[0]["type"] == "W" and not t.of_type("E"), f"{sql}: {sequence(msgs)}")
    later = ctx.identify_now("after the checks")
    seen = ctx.xlogpos_seen
    for (la, a), (lb, b) in zip(seen, seen[1:]):
        expect(b >= a, f"xlogpos went back from {Lsn(a)} ({la}) to {Lsn(b)} ({lb})")
    return f"{sql}: W, no error; xlogpos over {len(seen)} connections never decreased (last {later.get('xlogpos')})"


@check("S07", "SHOW wal_segment_size returns one text row with a unit (16MB), column named "
       "wal_segment_size, tag SHOW.", "walsender.c exec_replication_command → GetPGVariable")
def s07(ctx: SenderContext) -> str:
    t = _answer(ctx, "SHOW wal_segment_size")
    ans = t.after("SHOW")
    expect([m["type"] for m in ans] == ["T", "D", "C", "Z"], sequence(ans))
    expect([(f["name"], f["type"]) for f in ans[0]["fields"]] == [("wal_segment_size", 25)], brief(ans[0]))
    size = parse_size(ans[1]["values"][0])
    expect(size & (size - 1) == 0 and (1 << 20) <= size <= (1 << 30), f"segment size {size}")
    expect(ans[2]["tag"] == "SHOW", f"tag {ans[2]['tag']!r}")
    return f"{brief(ans[0])} {brief(ans[1])} {brief(ans[2])}"


@check("S08", "SHOW data_directory_mode returns an octal string (0700). An unknown parameter gives "
       "ErrorResponse 42704, and the session stays usable (Z follows).",
       "guc.c GetPGVariable / 'unrecognized configuration parameter'")
def s08(ctx: SenderContext) -> str:
    t = ctx.run(AUTH + "query SHOW data_directory_mode\nwait Z,close 10000\n"
                "query SHOW walsim_no_such_parameter\nwait Z,close 10000\n"
                "query IDENTIFY_SYSTEM\nwait Z,close 10000\nterminate\n")
    mode = [m for m in t.after("SHOW data_directory_mode") if m["type"] == "D"]
    expect(bool(mode) and re.fullmatch(r"0[0-7]{3}", mode[0]["values"][0] or "") is not None,
           f"SHOW data_directory_mode: {sequence(t.after('SHOW data_directory_mode'))}")
    bad = t.after("SHOW walsim_no_such_parameter")
    expect([m["type"] for m in bad] == ["E", "Z"] and bad[0].get("C") == "42704",
           f"SHOW of an unknown parameter: {sequence(bad)}")
    again = [m["type"] for m in t.after("IDENTIFY_SYSTEM")]
    expect(again[-2:] == ["C", "Z"], f"IDENTIFY_SYSTEM afterwards: {sequence(t.after('IDENTIFY_SYSTEM'))}")
    return f"data_directory_mode {mode[0]['values'][0]}; unknown: {brief(bad[0])}, Z; session usable"


@check("S09", "TIMELINE_HISTORY n for an existing history file returns 1 row × 2 columns: "
       "%08X.history (text) and the exact file bytes (text; bytea in 13).",
       "walsender.c SendTimeLineHistory (TEXTOID from 14)")
def s09(ctx: SenderContext) -> str:
    tli = ctx.tli()
    if tli == 1:
        raise Skipped("the target is on timeline 1, which has no history file")
    t, content = ctx.history(tli)
    ans = t.after("TIMELINE_HISTORY")
    expect([m["type"] for m in ans] == ["T", "D", "C", "Z"], sequence(ans))
    content_oid = majors.history_content_oid(ctx.major())
    expect([(f["name"], f["type"]) for f in ans[0]["fields"]] == [("filename", 25), ("content", content_oid)],
           f"{brief(ans[0])} (PostgreSQL {ctx.major()}: content of type {content_oid})")
    name = ans[1]["values"][0]
    expect(name == f"{tli:08X}.history", f"file name {name!r} for timeline {tli}")
    assert content is not None
    if ctx.waldir is not None and (ctx.waldir / name).exists():
        disk = (ctx.waldir / name).read_bytes()
        expect(disk == content, f"content {content[:60]!r} differs from {ctx.waldir / name}: {disk[:60]!r}")
        return f"{name}, {len(content)} bytes identical to the file"
    expect(re.match(rb"^\s*\d+\s+[0-9A-F]+/[0-9A-F]+", content) is not None, f"content {content[:80]!r}")
    return f"{name}: {content[:60]!r}"


@check("S10", "TIMELINE_HISTORY for a missing file returns ErrorResponse (58P01) followed by Z; "
       "the session remains usable.", "walsender.c SendTimeLineHistory (RowDescription is sent first)")
def s10(ctx: SenderContext) -> str:
    # timeline 1 never has a history file
    t = ctx.run(AUTH + "query TIMELINE_HISTORY 1\nwait Z,close 10000\n"
                "query IDENTIFY_SYSTEM\nwait Z,close 10000\nterminate\n")
    ans = t.after("TIMELINE_HISTORY")
    types = [m["type"] for m in ans]
    expect(types in (["E", "Z"], ["T", "E", "Z"]) and ans[types.index("E")].get("C") == "58P01",
           f"TIMELINE_HISTORY 1: {sequence(ans)}")
    expect([m["type"] for m in t.after("IDENTIFY_SYSTEM")][-2:] == ["C", "Z"],
           f"afterwards: {sequence(t.after('IDENTIFY_SYSTEM'))}")
    return f"TIMELINE_HISTORY 1: {sequence(ans)}; session usable"


# ---------------------------------------------------------------- START_REPLICATION

@check("S11", "START_REPLICATION X/X TIMELINE <current> at a valid LSN replies with CopyBothResponse "
       "whose body is 00 0000.", "walsender.c StartReplication (pq_beginmessage 'W')")
def s11(ctx: SenderContext) -> str:
    s = ctx.stream_current()
    msgs = s.transcript.incoming()
    w = [m for m in msgs if m["type"] in ("W", "E")]
    expect(bool(w) and w[0]["type"] == "W" and w[0]["hex"] == "000000" and w[0]["size"] == 3,
           f"START_REPLICATION {Lsn(s.start)}: {sequence(s.transcript.after('START'))}")
    return f"START_REPLICATION {Lsn(s.start)} TIMELINE {s.tli}: W body 00 0000 (length 7)"


@check("S12", "START_REPLICATION without TIMELINE streams the current timeline, and the optional "
       "PHYSICAL keyword is accepted.", "repl_gram.y start_replication")
def s12(ctx: SenderContext) -> str:
    pos = ctx.xlogpos()
    start = pos - pos % ctx.seg_size()
    out = []
    for sql in (f"START_REPLICATION {Lsn(start)}", f"START_REPLICATION PHYSICAL {Lsn(start)}"):
        t = _answer(ctx, sql, "w,E,close", 10000)
        msgs = t.after(sql)
        expect(msgs and msgs[0]["type"] == "W" and not t.of_type("E") and t.xlogdata()
               and t.xlogdata()[0]["start"] == start, f"{sql}: {sequence(msgs)}")
        out.append(f"{sql}: W, {brief(t.xlogdata()[0])}")
    return "; ".join(out)


@check("S13", "START_REPLICATION SLOT \"<s>\" … with an unknown slot gives ErrorResponse 42704 before "
       "any W.", "slot.c ReplicationSlotAcquire")
def s13(ctx: SenderContext) -> str:
    sql = f"START_REPLICATION SLOT \"walsim_conform_no_such_slot\" {Lsn(ctx.xlogpos())} TIMELINE {ctx.tli()}"
    e = _error_before_copy(_answer(ctx, sql, "Z,close"), sql)
    expect(e.get("C") == "42704", f"{brief(e)} (expected 42704)")
    return brief(e)


@check("S14", "A timeline not in the sender's history gives ErrorResponse before W (requested "
       "timeline %u is not in this server's history).", "timeline.c tliSwitchPoint")
def s14(ctx: SenderContext) -> str:
    sql = f"START_REPLICATION {Lsn(ctx.xlogpos())} TIMELINE {ctx.tli() + 1}"
    e = _error_before_copy(_answer(ctx, sql, "Z,close"), sql)
    expect("is not in this server's history" in e.get("M", ""), brief(e))
    return brief(e)


@check("S15", "A historic timeline with start > switch point gives ErrorResponse before W whose "
       "message contains 'is not in this server's history'.", "walsender.c StartReplication")
def s15(ctx: SenderContext) -> str:
    ptli, switch = ctx.parent()
    sql = f"START_REPLICATION {Lsn(switch + PAGE)} TIMELINE {ptli}"
    e = _error_before_copy(_answer(ctx, sql, "Z,close"), sql)
    expect("is not in this server's history" in e.get("M", ""), brief(e))
    return f"{sql}: {brief(e)} (switch point {Lsn(switch)})"


@check("S16", "Start LSN > end of available WAL gives an ErrorResponse (PG15 sends it right after W) "
       "whose message contains 'ahead of the WAL flush position', followed by Z.",
       "walsender.c StartReplication")
def s16(ctx: SenderContext) -> str:
    ahead = ctx.xlogpos() + (1 << 30)
    sql = f"START_REPLICATION {Lsn(ahead)} TIMELINE {ctx.tli()}"
    t = _answer(ctx, sql, "Z,close", 10000)
    msgs = t.after(sql)
    types = [m["type"] for m in msgs]
    expect(types in (["E", "Z"], ["W", "E", "Z"]), f"{sql}: {sequence(msgs)}")
    e = msgs[types.index("E")]
    expect("ahead of the WAL flush position" in e.get("M", ""), brief(e))
    return f"{sql}: {sequence(msgs)}"


@check("S17", "A start LSN whose segment file is absent gives ErrorResponse 58P01 whose message "
       "matches 'requested WAL segment [0-9A-F]{24} has already been removed', followed by Z.",
       "walsender.c WalSndSegmentOpen / CheckXLogRemoved")
def s17(ctx: SenderContext) -> str:
    seg = ctx.seg_size()
    start = 0
    if ctx.waldir is not None:
        segnos = sorted(int(m.group(2), 16) * (0x100000000 // seg) + int(m.group(3), 16)
                        for p in ctx.waldir.iterdir() if (m := SEGNAME.match(p.name)))
        if segnos and segnos[0] == 0:
            raise Skipped("segment 0 exists in the WAL directory: no absent segment below it")
        start = (segnos[0] - 1) * seg if segnos else 0
    sql = f"START_REPLICATION {Lsn(start + 0x100)} TIMELINE {ctx.tli()}"
    t = _answer(ctx, sql, "Z,close", 15000)
    msgs = t.after(sql)
    types = [m["type"] for m in msgs]
    expect("E" in types and types[-1] == "Z", f"{sql}: {sequence(msgs)}")
    e = msgs[types.index("E")]
    expect(e.get("C") == "58P01" and re.search(r"requested WAL segment [0-9A-F]{24} has already been removed",
                                              e.get("M", "")) is not None, brief(e))
    return f"{sql}: {sequence(msgs)}"


# ---------------------------------------------------------------- streaming

def _streams_with_data(ctx: SenderContext) -> list[Stream]:
    streams = ctx.streams()
    for s in streams:
        expect(bool(s.transcript.xlogdata()),
               f"{s.label}: no XLogData: {sequence(s.transcript.after('START'))}")
    return streams


@check("S18", "The first XLogData after W has dataStart == the requested start LSN. Consecutive "
       "XLogData messages are contiguous (dataStart[i+1] = dataStart[i] + len[i]).",
       "walsender.c XLogSendPhysical; receivelog.c ProcessXLogDataMsg")
def s18(ctx: SenderContext) -> str:
    n = 0
    for s in _streams_with_data(ctx):
        ws = s.transcript.xlogdata()
        expect(ws[0]["start"] == s.start, f"{s.label}: first XLogData at {Lsn(ws[0]['start'])}, "
               f"requested {Lsn(s.start)}")
        for a, b in zip(ws, ws[1:]):
            expect(b["start"] == a["start"] + a["len"],
                   f"{s.label}: {brief(a)} then {brief(b)} (expected start {Lsn(a['start'] + a['len'])})")
        n += len(ws)
    return f"{n} XLogData messages in {len(ctx.streams())} streams, contiguous from the requested start"


@check("S19", "XLogData payloads are byte-identical to the segment files at those LSNs.",
       "walsender.c XLogSendPhysical (WALRead of the segment files)")
def s19(ctx: SenderContext) -> str:
    if ctx.waldir is None:
        raise Skipped("give --waldir (the directory the sender serves) to compare bytes")
    n = total = 0
    for s in _streams_with_data(ctx):
        for w in s.transcript.xlogdata():
            data = ctx.wal_file_bytes(s.tli, w["start"], w["len"])
            if data is None:
                raise Skipped(f"no file in {ctx.waldir} holds {Lsn(w['start'])}")
            if hashlib.sha256(data).hexdigest() != w["sha256"]:
                diff = next((i for i in range(min(len(data), 64))
                             if i * 2 + 2 <= len(w["head"]) and data[i] != bytes.fromhex(w["head"])[i]), None)
                raise Failed(f"{s.label}: {brief(w)} differs from the files"
                             + (f" at byte {diff}" if diff is not None else " (beyond the first 64 bytes)"))
            n += 1
            total += w["len"]
    return f"{n} XLogData payloads ({total} bytes) identical to {ctx.waldir}"


@check("S20", "No XLogData payload exceeds 128 KiB. Every message that is not the last before "
       "catch-up ends on an XLOG_BLCKSZ page boundary (or at walEnd).",
       "walsender.c XLogSendPhysical (MAX_SEND_SIZE)")
def s20(ctx: SenderContext) -> str:
    n = 0
    for s in _streams_with_data(ctx):
        for w in s.transcript.xlogdata():
            end = w["start"] + w["len"]
            expect(w["len"] <= MAX_SEND, f"{s.label}: {brief(w)} exceeds {MAX_SEND}")
            expect(end % PAGE == 0 or end == w["wal_end"],
                   f"{s.label}: {brief(w)} ends at {Lsn(end)}, neither a page boundary nor walEnd")
            n += 1
    return f"{n} XLogData ≤ 128 KiB, each ending on a page boundary or at walEnd"


@check("S21", "XLogData walEnd ≥ dataStart+len and never exceeds the end of valid WAL (the "
       "xlogpos a later IDENTIFY_SYSTEM reports). sendTime is within a few seconds of the clock.",
       "walsender.c XLogSendPhysical (SendRqstPtr), protocol.sgml XLogData")
def s21(ctx: SenderContext) -> str:
    streams = _streams_with_data(ctx)
    later = ctx.identify_now("after streaming")
    limit = int(later["xlogpos"]) if later.get("xlogpos") is not None else None
    n = 0
    for s in streams:
        for w in s.transcript.xlogdata():
            end = w["start"] + w["len"]
            expect(w["wal_end"] >= end, f"{s.label}: {brief(w)}: walEnd below the data's end {Lsn(end)}")
            if not s.historic and limit is not None:
                expect(max(end, w["wal_end"]) <= limit,
                       f"{s.label}: {brief(w)} goes past the end of valid WAL {Lsn(limit)} "
                       "(IDENTIFY_SYSTEM afterwards)")
            expect(abs(w["send_time"] - w["now"]) < 5_000_000,
                   f"{s.label}: sendTime {w['send_time']} is {(w['send_time'] - w['now']) / 1e6:.1f} s off")
            n += 1
    return f"{n} XLogData: walEnd ≥ end, ≤ xlogpos {Lsn(limit) if limit is not None else '?'}, sendTime within 5 s"


@check("S22", "WAL appended while a client is connected is streamed without reconnecting, within "
       "a bounded delay.", "walsender.c WalSndWaitForWal / WalSndWakeup")
def s22(ctx: SenderContext) -> str:
    if ctx.wal_generator is None:
        raise Skipped("needs a way to make the target write WAL (--sql CONNINFO, or wal_generator=)")
    pos = ctx.identify_now("before appending")["xlogpos"]
    script = (AUTH + f"query START_REPLICATION {Lsn(pos - pos % ctx.seg_size())} TIMELINE {ctx.tli()}\n"
              f"wait W,E,close 10000\nstream {Lsn(pos)} 10000\nread 1500\n"
              f"stream {Lsn(pos + 1)} 10000\nterminate\n")
    proc = ctx.probe.start(script)
    time.sleep(1.0)
    t0 = time.monotonic()
    ctx.wal_generator()
    t = ctx.probe.finish(proc, script)
    beyond = [w for w in t.xlogdata() if w["start"] + w["len"] > pos]
    expect(bool(beyond), f"no XLogData past {pos} within 10 s of writing WAL: {sequence(t.after('START'))}")
    return f"new WAL streamed on the same connection: {brief(beyond[0])} ({time.monotonic() - t0:.1f} s after the write)"


@check("S23", "A 'r' with replyRequested=1 gets a 'k' answer (replyRequested=0) within 1 s, whose "
       "walEnd ≥ the last sent position.", "walsender.c ProcessStandbyReplyMessage → WalSndKeepalive")
def s23(ctx: SenderContext) -> str:
    t = ctx.stream_current().transcript
    lines = t.lines
    idx = next((i for i, m in enumerate(lines) if m["dir"] == "out" and m.get("type") == "r"), None)
    expect(idx is not None, "the probe did not get to send its ping")
    assert idx is not None
    sent_end = max((w["start"] + w["len"] for w in lines[:idx] if w.get("type") == "w" and w["dir"] == "in"),
                   default=0)
    ks = [m for m in lines[idx:] if m["dir"] == "in" and m.get("type") == "k"]
    expect(bool(ks), f"no keepalive after the ping: {sequence([m for m in lines[idx:] if m['dir'] == 'in'])}")
    k = ks[0]
    delay = k["t"] - lines[idx]["t"]
    expect(delay <= scaled(1.0), f"the answer came after {delay:.3f} s")
    expect(k["reply"] == 0, f"{brief(k)}: replyRequested set in the answer")
    expect(k["wal_end"] >= sent_end, f"{brief(k)} below the last sent position {Lsn(sent_end)}")
    return f"{brief(k)} {delay * 1000:.1f} ms after the ping"


def _silent_stream(ctx: SenderContext) -> tuple[Transcript, int]:
    def make() -> tuple[Transcript, int]:
        t = _answer(ctx, "SHOW wal_sender_timeout")
        rows = [m for m in t.after("SHOW") if m["type"] == "D"]
        if not rows:
            raise Skipped(f"SHOW wal_sender_timeout is not answered: {sequence(t.after('SHOW'))}")
        ms = parse_duration_ms(rows[0]["values"][0] or "")
        if ms <= 0:
            raise Skipped(f"wal_sender_timeout = {rows[0]['values'][0]} (disabled)")
        if ms > ctx.max_wait * 1000:
            raise Skipped(f"wal_sender_timeout = {rows[0]['values'][0]} is above --max-wait "
                          f"{ctx.max_wait:g} s")
        pos = ctx.xlogpos()
        script = (AUTH + f"query START_REPLICATION {Lsn(pos - pos % ctx.seg_size())} TIMELINE {ctx.tli()}\n"
                  f"wait W,E,close 10000\nwait close {int(ms * 2 + 3000)}\n")
        return ctx.run(script, timeout=ms / 1000 * 2 + 30), ms
    return ctx.cached("silent", make)


@check("S24", "When a client sends nothing for wal_sender_timeout/2, the sender sends 'k' with "
       "replyRequested=1.", "walsender.c WalSndKeepaliveIfNecessary")
def s24(ctx: SenderContext) -> str:
    t, ms = _silent_stream(ctx)
    w = t.of_type("W")
    expect(bool(w), f"no COPY: {sequence(t.incoming())}")
    pings = [k for k in t.of_type("k") if k["reply"] == 1]
    expect(bool(pings), f"no keepalive with replyRequested in {ms * 2 + 3000} ms of silence: "
           f"{sequence(t.after('START'))}")
    at = pings[0]["t"] - w[0]["t"]
    expect(ms / 2000 * 0.8 <= at <= ms / 1000 * scaled(1.0), f"first ping {at:.2f} s after W (timeout {ms} ms)")
    return f"{brief(pings[0])} {at:.2f} s after W (wal_sender_timeout {ms} ms)"


@check("S25", "With no client message for wal_sender_timeout, the sender closes the connection, and "
       "does not hang.", "walsender.c WalSndCheckTimeOut")
def s25(ctx: SenderContext) -> str:
    t, ms = _silent_stream(ctx)
    w = t.of_type("W")
    expect(bool(w) and t.closed(), f"not closed within {2 * ms + 3000} ms: {sequence(t.after('START'))}")
    at = t.events("close")[0]["t"] - w[0]["t"]
    expect(at >= ms / 1000 * 0.9, f"closed after {at:.2f} s, before the timeout of {ms} ms")
    return f"closed {at:.2f} s after W (wal_sender_timeout {ms} ms)"


@check("S26", "'k' messages are exactly 18 bytes; 'w' headers are exactly 25 bytes before the payload.",
       "protocol.sgml 'Primary keepalive message', 'XLogData'")
def s26(ctx: SenderContext) -> str:
    ks: list[dict[str, Any]] = []
    for s in ctx.streams():
        ks += s.transcript.of_type("k")
    try:
        ks += _silent_stream(ctx)[0].of_type("k")
    except Skipped:
        pass
    others = [m for s in ctx.streams() for m in s.transcript.of_type("d")]
    expect(not others, f"CopyData of unknown subtype: {others[0] if others else ''}")
    expect(bool(ks), "no keepalive seen to measure")
    bad = [k for k in ks if k["size"] != 18]
    expect(not bad, f"{brief(bad[0]) if bad else ''}")
    return f"{len(ks)} keepalives of 18 bytes; XLogData headers of 25 bytes"


@check("S27", "Client CopyDone during streaming gets server CopyDone (unless one was already sent), "
       "then C, C, Z. The session accepts a new command afterwards.",
       "walsender.c ProcessRepliesIfAny / StartReplication end")
def s27(ctx: SenderContext) -> str:
    t = ctx.stream_current().transcript
    lines = t.lines
    idx = next((i for i, m in enumerate(lines) if m["dir"] == "out" and m.get("type") == "c"), None)
    expect(idx is not None, f"the stream did not get to CopyDone: {sequence(t.incoming())}")
    assert idx is not None
    q = next((i for i, m in enumerate(lines) if i > idx and m["dir"] == "out" and m.get("type") == "Q"), len(lines))
    answer = [m for m in lines[idx:q] if m["dir"] == "in" and m.get("type") not in ("w", "k")]
    types = [m["type"] for m in answer]
    expect(types == ["c", "C", "C", "Z"], f"after the client's CopyDone: {sequence(answer)}")
    expect([m["type"] for m in t.after("IDENTIFY_SYSTEM")][-2:] == ["C", "Z"],
           f"IDENTIFY_SYSTEM afterwards: {sequence(t.after('IDENTIFY_SYSTEM'))}")
    return f"{sequence(answer)}; IDENTIFY_SYSTEM afterwards answered"


@check("S28", "Streaming a historic timeline: after the switch point the sender sends CopyDone, waits "
       "for the client's CopyDone, then sends T[next_tli int8, next_tli_startpos text], D[next, switchLSN], "
       "C, C, Z.", "walsender.c StartReplication (end of historic timeline)")
def s28(ctx: SenderContext) -> str:
    ptli, switch = ctx.parent()
    s = ctx.stream_parent()
    lines = s.transcript.lines
    ws = s.transcript.xlogdata()
    expect(bool(ws), f"no XLogData on timeline {ptli}: {sequence(s.transcript.after('START'))}")
    expect(ws[-1]["start"] + ws[-1]["len"] == switch,
           f"last XLogData {brief(ws[-1])} does not end at the switch point {Lsn(switch)}")
    sc = next((i for i, m in enumerate(lines) if m["dir"] == "in" and m.get("type") == "c"), None)
    cc = next((i for i, m in enumerate(lines) if m["dir"] == "out" and m.get("type") == "c"), None)
    expect(sc is not None and cc is not None and sc < cc,
           f"no server CopyDone before the client's: {sequence(s.transcript.after('START'))}")
    assert cc is not None
    q = next((i for i, m in enumerate(lines) if i > cc and m["dir"] == "out" and m.get("type") == "Q"), len(lines))
    answer = [m for m in lines[cc:q] if m["dir"] == "in" and m.get("type") not in ("k",)]
    types = [m["type"] for m in answer]
    expect(types == ["T", "D", "C", "C", "Z"], f"after CopyDone: {sequence(answer)}")
    f = answer[0]["fields"]
    expect([(x["name"], x["type"]) for x in f] == [("next_tli", 20), ("next_tli_startpos", 25)],
           brief(answer[0]))
    v = answer[1]["values"]
    expect(v[0] == str(ctx.tli()) if ptli == ctx.tli() - 1 else int(v[0]) > ptli, f"next_tli {v[0]}")
    expect(Lsn.parse(v[1]) == switch, f"next_tli_startpos {v[1]}, history says {Lsn(switch)}")
    return f"{len(ws)}×w to {Lsn(switch)}, c; client c; {sequence(answer)}"


@check("S29", "START on a historic TLI at exactly its switch point: no W; the result set, C, C, Z are "
       "sent directly.", "walsender.c StartReplication (startpoint == switchpoint)")
def s29(ctx: SenderContext) -> str:
    ptli, switch = ctx.parent()
    sql = f"START_REPLICATION {Lsn(switch)} TIMELINE {ptli}"
    t = _answer(ctx, sql, "Z,close", 10000)
    msgs = t.after(sql)
    expect([m["type"] for m in msgs] == ["T", "D", "C", "C", "Z"], f"{sql}: {sequence(msgs)}")
    return f"{sql}: {sequence(msgs)}"


@check("S30", "The segment containing a switch point is served from the newer TLI's file when the old "
       "one is absent.", "walsender.c WalSndSegmentOpen")
def s30(ctx: SenderContext) -> str:
    ptli, switch = ctx.parent()
    if ctx.waldir is None:
        raise Skipped("give --waldir to know whether the old timeline's segment is absent")
    seg = ctx.seg_size()
    segno = switch // seg
    per_id = 0x100000000 // seg
    old = ctx.waldir / f"{ptli:08X}{segno // per_id:08X}{segno % per_id:08X}"
    if old.exists():
        raise Skipped(f"{old.name} exists: the newer timeline's copy is not needed")
    s = ctx.stream_parent()
    ws = [w for w in s.transcript.xlogdata() if w["start"] // seg == segno]
    expect(bool(ws) and not s.transcript.of_type("E"),
           f"streaming {Lsn(segno * seg)} on timeline {ptli} without {old.name}: "
           f"{sequence(s.transcript.after('START'))}")
    return f"{len(ws)} XLogData of segment {segno:X} on timeline {ptli} served without {old.name}"


@check("S31", "Client 'h' and 'r' messages of the right length are accepted silently. An unknown "
       "CopyData subtype or a non-d/c/X message during COPY ends the connection (or gives an "
       "ErrorResponse), and does not crash or hang.", "walsender.c ProcessRepliesIfAny / ProcessStandbyMessage")
def s31(ctx: SenderContext) -> str:
    pos = ctx.xlogpos()
    start = f"query START_REPLICATION {Lsn(pos - pos % ctx.seg_size())} TIMELINE {ctx.tli()}\nwait W,E,close 10000\n"
    t = ctx.run(AUTH + start + f"stream {Lsn(pos)} 10000\nfeedback 0 0 0 0\nstatus received 0/0 0/0 0\n"
                "read 1000\nterminate\n")
    expect(not t.of_type("E") and not t.closed(), f"h and r refused: {sequence(t.after('START'))}")
    out = ["h and r accepted"]
    for label, step in (("CopyData 'x'", "copydata 78000000"), ("Query during COPY", "query IDENTIFY_SYSTEM")):
        t = ctx.run(AUTH + start + f"{step}\nwait E,close 5000\nread 1000\n")
        expect(t.closed() or bool(t.of_type("E")), f"{label}: neither error nor close within 5 s: "
               f"{sequence(t.after('START'))}")
        out.append(f"{label}: {sequence([m for m in t.lines if m['dir'] != 'out'][-2:])}")
    after = ctx.identify_now("after bad input")
    expect(after.get("xlogpos") is not None, "the sender no longer answers after bad input")
    return "; ".join(out) + "; sender still answers"


@check("S32", "'X' (Terminate) or EOF during streaming makes the sender release the connection and its "
       "resources (e.g. a slot becomes inactive).", "walsender.c WalSndKill / ReplicationSlotRelease")
def s32(ctx: SenderContext) -> str:
    slot = f"walsim_conform_{int(time.time() * 1000) % 10**8}"
    t = _answer(ctx, f"CREATE_REPLICATION_SLOT {slot} PHYSICAL")
    if t.of_type("E"):
        raise Skipped(f"cannot create a physical slot: {brief(t.of_type('E')[0])}")
    try:
        pos = ctx.xlogpos()
        sql = f"START_REPLICATION SLOT {slot} {Lsn(pos - pos % ctx.seg_size())} TIMELINE {ctx.tli()}"
        ev = []

        def acquire(after: str, tail: str) -> Transcript:
            """START with the slot, retrying while the sender still holds it for a
            previous connection; fails after 5 s."""
            deadline = time.monotonic() + scaled(5)
            while True:
                t = ctx.run(AUTH + f"query {sql}\nwait W,E,close 10000\n{tail}")
                if t.of_type("W"):
                    return t
                e = t.of_type("E")
                expect(time.monotonic() < deadline and bool(e) and e[0].get("C") == "55006",
                       f"slot still held 5 s after {after}: "
                       f"{brief(e[0]) if e else sequence(t.incoming())}")
                time.sleep(0.2)

        for ending in ("terminate", "close"):
            acquire("the previous connection", f"{ending}\n")
            acquire(ending, "terminate\n")
            ev.append(f"after {ending} the slot is usable again")
        return "; ".join(ev)
    finally:
        # the last connection may still hold the slot for a moment
        deadline = time.monotonic() + scaled(5)
        while any(e.get("C") == "55006" for e in _answer(ctx, f"DROP_REPLICATION_SLOT {slot}").of_type("E")) \
                and time.monotonic() < deadline:
            time.sleep(0.2)


@check("S33", "SQL (SELECT 1) in physical mode gives ErrorResponse with Z; an extended protocol Parse "
       "gives ErrorResponse 08P01.", "walsender.c exec_replication_command; postgres.c PostgresMain")
def s33(ctx: SenderContext) -> str:
    t = _answer(ctx, "SELECT 1")
    ans = t.after("SELECT 1")
    expect([m["type"] for m in ans] == ["E", "Z"], f"SELECT 1: {sequence(ans)}")
    parse = "00" + "53454c4543542031" + "00" + "0000"     # unnamed statement "SELECT 1", no types
    t2 = ctx.run(AUTH + f"msg P {parse}\nmsg S\nwait Z,close 10000\nterminate\n")
    errs = t2.of_type("E")
    expect(bool(errs) and errs[0].get("C") == "08P01", f"Parse: {sequence(t2.incoming()[-3:])}")
    return f"SELECT 1: {sequence(ans)}; Parse: {brief(errs[0])}"


@check("S34", "Graceful sender shutdown: all WAL up to end is sent, then C 'COPY 0' (or CopyDone and "
       "then the result set/C/C/Z), then close.", "walsender.c WalSndDone")
def s34(ctx: SenderContext) -> str:
    if ctx.shutdown is None:
        raise Skipped("needs control of the sender's shutdown (shutdown= in the Python API)")
    pos = ctx.xlogpos()
    script = (AUTH + "autoreply on\n"
              f"query START_REPLICATION {Lsn(pos - pos % ctx.seg_size())} TIMELINE {ctx.tli()}\n"
              f"wait W,E,close 10000\nstream {Lsn(pos)} 10000\n"
              "status received received 0/0 0\nwait close 60000\n")
    proc = ctx.probe.start(script)
    time.sleep(2.0)
    ctx.shutdown()
    t = ctx.probe.finish(proc, script, timeout=90)
    tail = [m for m in t.after("START") if m["type"] not in ("w", "k")]
    types = [m["type"] for m in tail]
    expect("C" in types and t.closed(), f"at shutdown: {sequence(tail)}")
    expect(tail[types.index("C")]["tag"] == "COPY 0" or "c" in types[: types.index("C")],
           f"at shutdown: {sequence(tail)}")
    ws = t.xlogdata()
    last = ws[-1]["start"] + ws[-1]["len"] if ws else 0
    expect(bool(ws) and last >= max(w["wal_end"] for w in ws),
           f"closed at {Lsn(last)} before sending all WAL (walEnd {Lsn(max(w['wal_end'] for w in ws)) if ws else '?'})")
    return f"all WAL to {Lsn(last)} sent, then {sequence(tail)} <close>"


@check("S35", "Interop: pg_receivewal -D dir against the sender receives files that match the "
       "source segments.", "pg_receivewal.c / receivelog.c")
def s35(ctx: SenderContext) -> str:
    if ctx.pg_bindir is None or not (ctx.pg_bindir / "pg_receivewal").exists():
        raise Skipped("pg_receivewal not found (--pg-bindir, PG_BINDIR): none streams from "
                      f"PostgreSQL {ctx.major()} here")
    program = ctx.pg_bindir / "pg_receivewal"
    version = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"\(PostgreSQL\) (\d+)", version)
    if m and int(m.group(1)) < ctx.major():
        # pg_receivewal refuses servers newer than itself (CheckServerVersionForStreaming)
        raise Skipped(f"{program} is of PostgreSQL {m.group(1)}, which cannot stream from "
                      f"PostgreSQL {ctx.major()}")
    pos = ctx.xlogpos()
    with tempfile.TemporaryDirectory(prefix="walsim-conform-") as d:
        argv = [str(ctx.pg_bindir / "pg_receivewal"), "-d", ctx.target.conninfo(), "-D", d, "-n",
                "--no-sync", "-E", str(Lsn(pos - 1)), "--no-password"]
        env = ctx.probe.env()
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        except subprocess.TimeoutExpired:
            raise Failed(f"pg_receivewal -E {Lsn(pos)} did not finish within 60 s") from None
        expect(r.returncode == 0, f"pg_receivewal exit {r.returncode}: {r.stderr.strip()[-300:]}")
        files = sorted(Path(d).iterdir())
        expect(bool(files), "pg_receivewal wrote no file")
        if ctx.waldir is None:
            return f"pg_receivewal -E {Lsn(pos)} exit 0, wrote {', '.join(p.name for p in files)}"
        seg = ctx.seg_size()
        compared = 0
        for p in files:
            m = SEGNAME.match(p.name)
            if not m:
                continue
            segno = int(m.group(2), 16) * (0x100000000 // seg) + int(m.group(3), 16)
            length = min(seg, pos - segno * seg)
            got = p.read_bytes()[:length]
            want = ctx.wal_file_bytes(int(m.group(1), 16), segno * seg, length)
            if want is None:
                continue
            expect(got == want, f"{p.name}: differs from the source in the first {length} bytes")
            compared += 1
        if compared == 0:
            # nothing was compared: no verdict, rather than a PASS that checked nothing
            raise Skipped(f"none of {', '.join(p.name for p in files)} has a counterpart in --waldir")
        return f"pg_receivewal -E {Lsn(pos)} exit 0; {compared} segment(s) identical up to {Lsn(pos)}"


@check("S36", "READ_REPLICATION_SLOT for an unknown slot returns one row of 3 NULLs with types "
       "text/text/int8, if implemented.", "walsender.c ReadReplicationSlot")
def s36(ctx: SenderContext) -> str:
    t = _answer(ctx, "READ_REPLICATION_SLOT walsim_conform_no_such_slot")
    ans = t.after("READ_REPLICATION_SLOT")
    if not majors.has_read_replication_slot(ctx.major()):
        # 13 and 14 have no such command; it must at least fail cleanly, leaving the session usable
        expect(bool(ans) and ans[0]["type"] == "E" and ans[-1]["type"] == "Z",
               f"PostgreSQL {ctx.major()} has no READ_REPLICATION_SLOT: {sequence(ans)}")
        raise Skipped(f"PostgreSQL {ctx.major()} has no READ_REPLICATION_SLOT (added in 15): {brief(ans[0])}")
    if ans and ans[0]["type"] == "E":
        raise Skipped(f"not implemented: {brief(ans[0])}")
    expect([m["type"] for m in ans] == ["T", "D", "C", "Z"], sequence(ans))
    expect([f["type"] for f in ans[0]["fields"]] == [25, 25, 20], brief(ans[0]))
    expect(ans[1]["values"] == [None, None, None], brief(ans[1]))
    return f"{brief(ans[0])} {brief(ans[1])}"


# ---------------------------------------------------------------- running

def run_sender_checks(ctx: SenderContext, only: Sequence[str] = (), label: str | None = None,
                      progress: Callable[[Result], None] | None = None) -> Report:
    """Run every sender check (or those in ``only``) and collect a report."""
    report = Report("sender", label or str(ctx.target))
    # the first connection: its xlogpos is S06's reference; a refused or unreachable
    # target ends the run here with one error, no per-check FAIL
    ctx.preflight()
    # S34 stops the sender: it runs last, whatever its number
    ordered = sorted(checks_for("sender"), key=lambda c: c.id == "S34")
    return run_checks(report, ordered, ctx, only, progress)


__all__ = ["SenderContext", "run_sender_checks", "ConformError", "Target"]
