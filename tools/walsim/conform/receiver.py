"""Receiver conformance: protocol.md §7.2 checked by running the receiver
under test against ``walsim-sender`` with an observing relay in between.

The sender serves a prepared directory of real PostgreSQL WAL of one major
(``pg_version``: tests/data/wal for 15, made by make-wal.sh: 1 MB segments 9
and A on timeline 1, timeline 2 beginning at 0/B011A8 inside segment B, whose
timeline-1 copy is absent; tests/data/wal-N for the other majors, the same
layout at the segments and LSNs their dataset.txt names), and speaks that
major (its server_version, protocol 3.2 for 18).  The receiver's fresh
directory gets an empty ``.partial`` of the first segment so that it resumes
at the start of timeline 1, as pg_receivewal does after an interruption; it
then has to finish two segments, follow the switch to timeline 2 and keep
the unfinished segments as ``.partial``.

Runs (each a fresh directory and sender): ``main`` (stream everything, stay
idle long enough to be pinged, then SIGINT), ``removed`` (start at a segment
the sender does not have), ``sender-shutdown`` (SIGTERM to the sender once
caught up), ``durability`` (the command under ``strace``) and one per
``--misbehave`` kind the checks need (``gap``, ``single-commandcomplete``,
``short-keepalive``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walsim.conform.checks import Failed, Skipped, check, checks_for, expect, run_checks
from walsim.conform.probe import ConformError
from walsim.conform.relay import ObservingRelay
from walsim.conform.results import Report, Result
from walsim.conform.sender import wal_bytes
from walsim.core.lsn import Lsn
from walsim.core.paths import program, test_data_dir
from walsim.core.timeouts import scaled

SEG = 1 << 20
SENDER_TIMEOUT_MS = 4000          # pings after 2 s of client silence
STATUS_INTERVAL = 10.0            # pg_receivewal's default --status-interval
CADENCE_IDLE = 12.5               # R11: idle time after catching up
USER = "walsim_conform"
PASSWORD = "conform-secret"


def dataset_dir(pg_version: int | None = None) -> Path:
    """The real WAL a major wrote: tests/data/wal (15) or tests/data/wal-N."""
    if pg_version is None or pg_version == 15:
        return test_data_dir() / "wal"
    return test_data_dir() / f"wal-{pg_version}"


def _segname(tli: int, segno: int) -> str:
    return f"{tli:08X}{segno >> 12:08X}{segno & 0xFFF:08X}"      # 1 MB segments: 4096 per xlogid


@dataclass(frozen=True)
class DataSet:
    """A WAL data set (dataset.txt, tests/data/make-version-wal.py): timeline-1
    segments A and B, timeline 2 beginning at ``switch`` inside segment C, whose
    timeline-1 copy is absent, and the end of valid WAL ``end``."""
    dir: Path
    major: int
    segno_a: int
    switch: int
    end: int

    @classmethod
    def load(cls, directory: Path) -> "DataSet":
        try:
            text = (directory / "dataset.txt").read_text()
        except OSError:
            raise ConformError(f"{directory}: the WAL data set (dataset.txt) is missing") from None
        kv = dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
        try:
            seg_a = kv["segment_a"].strip()
            return cls(directory, int(kv["major"]), int(seg_a[8:16], 16) * 4096 + int(seg_a[16:], 16),
                       int(Lsn.parse(kv["tl2_begin"].strip())), int(Lsn.parse(kv["end"].strip())))
        except (KeyError, ValueError) as exc:
            raise ConformError(f"{directory}/dataset.txt: incomplete ({exc})") from None

    def seg(self, tli: int, k: int) -> str:
        """Segment A+k of timeline tli (k = -1: the one before A; 2: C)."""
        return _segname(tli, self.segno_a + k)


def prepare_waldir(dest: Path, source: Path | None = None) -> Path:
    """The sender's directory: TL1 segments A and B, TL2 history and segment C."""
    ds = DataSet.load(source or dataset_dir())
    dest.mkdir(parents=True, exist_ok=True)
    for name in (ds.seg(1, 0), ds.seg(1, 1), "00000002.history"):
        shutil.copyfile(ds.dir / name, dest / name)
    head = (ds.dir / f"{ds.seg(2, 2)}.tli2-head").read_bytes()
    (dest / ds.seg(2, 2)).write_bytes(head + bytes(SEG - len(head)))
    return dest


@dataclass
class ReceiverRun:
    """What one run of the receiver left: the relay's messages, its exit, its files."""
    name: str
    messages: list[dict[str, Any]]
    returncode: int | None
    output: str
    outdir: Path
    waldir: Path
    notes: list[str] = field(default_factory=list)

    def client(self, sub: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["dir"] == "C" and (sub is None or m.get("sub") == sub)]

    def server(self, sub: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["dir"] == "S" and (sub is None or m.get("sub") == sub)]

    def queries(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["dir"] == "C" and m["type"] == "Q"]

    def files(self) -> list[str]:
        return sorted(p.name for p in self.outdir.iterdir())


class ReceiverContext:
    """Runs the receiver command in the scenarios the checks need (each once)."""

    def __init__(self, command: str, *, workdir: Path | None = None,
                 sender_binary: Path | None = None, dataset: Path | None = None,
                 long: bool = False, pg_version: int | None = None) -> None:
        try:
            self.template = shlex.split(command)
        except ValueError as exc:
            raise ConformError(f"--command {command!r}: {exc}") from None
        if not self.template:
            raise ConformError("--command is empty")
        if not any("%s" in w for w in self.template) or not any("%d" in w for w in self.template):
            raise ConformError(f"--command {command!r} must contain %s (connection string) "
                               "and %d (directory)")
        program_ = self.template[0]
        found = shutil.which(program_) if "/" not in program_ else (program_ if os.access(program_, os.X_OK)
                                                                    and os.path.isfile(program_) else None)
        if found is None:
            why = ("is not in PATH" if "/" not in program_ else
                   "does not exist" if not os.path.exists(program_) else "is not an executable file")
            raise ConformError(f"--command {command!r}: cannot start {program_!r}: it {why} "
                               "(nothing was checked: the receiver's conformance is unknown)")
        self.command = command
        self.long = long            # run the slow checks (R11: 12 s of silence)
        self.sender_binary = sender_binary or program("walsim-sender")
        if not self.sender_binary.exists():
            raise ConformError(f"{self.sender_binary} is missing: run make first")
        # the sender speaks the major of the WAL it serves (server_version, protocol)
        self.dataset = dataset or dataset_dir(pg_version)
        self.ds = DataSet.load(self.dataset)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="walsim-conform-")
        self.workdir = Path(workdir or self._tmp.name)   # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.passfile = self.workdir / "passfile"
        self.passfile.write_text(f"*:*:*:{USER}:{PASSWORD}\n")
        os.chmod(self.passfile, 0o600)
        self._runs: dict[str, ReceiverRun] = {}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def uses_slot(self) -> bool:
        return self.slot_name() is not None

    def slot_name(self) -> str | None:
        """The slot named by -S/--slot in the command, if any."""
        for i, w in enumerate(self.template):
            if w in ("-S", "--slot") and i + 1 < len(self.template):
                return self.template[i + 1]
            if w.startswith("--slot="):
                return w[len("--slot="):]
            if w.startswith("-S") and len(w) > 2:
                return w[2:]
        return None

    def _create_slot(self, port: int) -> None:
        """The receiver's slot, made on the sender before the receiver starts."""
        from walsim.conform.probe import Probe, Target
        slot = self.slot_name()
        t = Probe(Target("127.0.0.1", port, USER, str(self.passfile))).run(
            f"startup\nquery CREATE_REPLICATION_SLOT \"{slot}\" PHYSICAL\nwait Z,close 10000\nterminate\n")
        if t.of_type("E"):
            raise ConformError(f"cannot create slot {slot!r} on walsim-sender: {t.of_type('E')[0].get('M')}")

    # --- running
    def run(self, name: str) -> ReceiverRun:
        if name not in self._runs:
            self._runs[name] = self._run(name)
        return self._runs[name]

    def _start_sender(self, waldir: Path, misbehave: str | None, log: Path,
                      timeout_ms: int = SENDER_TIMEOUT_MS) -> tuple[subprocess.Popen[bytes], int]:
        from walsim.pg.ports import PortAllocator
        reservation = PortAllocator().reserve()
        port = reservation.port
        argv = [str(self.sender_binary), "-D", str(waldir), "--listen", f"127.0.0.1:{port}",
                "--passfile", str(self.passfile), "--wal-sender-timeout", f"{timeout_ms}ms",
                "--no-follow"]
        if misbehave:
            argv += ["--misbehave", misbehave]
        out = open(log, "ab")
        reservation.release()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        deadline = time.monotonic() + scaled(30)
        while "listening on" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise ConformError(f"walsim-sender did not start: {log.read_text(errors='replace')[-500:]}")
            time.sleep(0.02)
        return proc, port

    def _argv(self, conninfo: str, outdir: Path) -> list[str]:
        return [w.replace("%s", conninfo).replace("%d", str(outdir)) for w in self.template]

    def _run(self, name: str) -> ReceiverRun:
        misbehave = name if name in ("gap", "single-commandcomplete", "short-keepalive") else \
            name[len("misbehave-"):] if name.startswith("misbehave-") else None
        base = self.workdir / name
        if base.exists():
            shutil.rmtree(base)
        waldir = prepare_waldir(base / "sender-wal", self.dataset)
        outdir = base / "received"
        outdir.mkdir(parents=True)
        first = self.ds.seg(1, -1) if name == "removed" else self.ds.seg(1, 0)
        (outdir / f"{first}.partial").touch()
        # the cadence run: a sender that never pings, so only the receiver's own timer speaks
        sender, port = self._start_sender(waldir, misbehave, base / "sender.log",
                                          0 if name == "cadence" else SENDER_TIMEOUT_MS)
        if self.uses_slot():
            try:
                self._create_slot(port)
            except BaseException:
                sender.kill()
                sender.wait()
                raise
        relay = ObservingRelay("127.0.0.1", port)
        conninfo = f"host=127.0.0.1 port={relay.port} user={USER} passfile={self.passfile}"
        log = base / "receiver.log"
        notes: list[str] = []
        argv = self._argv(conninfo, outdir)
        if name == "durability":
            # -y prints each descriptor's path: fsync(5</dir/NAME.partial>)
            argv = [shutil.which("strace") or "strace", "-f", "-qq", "-y", "-o", str(base / "strace.log"),
                    "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", *argv]
        try:
            with open(log, "wb") as out:
                try:
                    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
                except OSError as exc:
                    raise ConformError(f"--command {self.command!r}: cannot start {argv[0]!r}: {exc.strerror} "
                                       "(nothing was checked: the receiver's conformance is unknown)") from None
            try:
                self._drive(name, proc, sender, relay, notes)
            finally:
                rc = self._stop(proc, notes)
        finally:
            relay.close()
            if sender.poll() is None:
                sender.send_signal(signal.SIGTERM)
                try:
                    sender.wait(scaled(10))
                except subprocess.TimeoutExpired:
                    sender.kill()
                    sender.wait()
        return ReceiverRun(name, relay.snapshot(), rc, log.read_text(errors="replace"), outdir,
                           waldir, notes)

    def _sent_all(self, relay: ObservingRelay) -> bool:
        return any(m.get("sub") == "w" and m["start"] + m["len"] >= self.ds.end for m in relay.snapshot())

    def _caught_up(self, relay: ObservingRelay) -> bool:
        return any(m.get("sub") == "r" and m["write"] >= self.ds.end for m in relay.snapshot())

    def _drive(self, name: str, proc: subprocess.Popen[bytes], sender: subprocess.Popen[bytes],
               relay: ObservingRelay, notes: list[str]) -> None:
        def wait(cond: Callable[[], bool], seconds: float) -> bool:
            deadline = time.monotonic() + scaled(seconds)
            while time.monotonic() < deadline:
                if cond():
                    return True
                time.sleep(0.05)
            return cond()

        exited = lambda: proc.poll() is not None     # noqa: E731
        if name == "durability":
            wait(lambda: exited() or self._caught_up(relay), 60)
        elif name == "cadence":
            # without pings a receiver may report its position only at its next
            # status interval: wait for the sender to have sent everything instead
            wait(lambda: exited() or self._sent_all(relay), 60)
            notes.append(f"caught up at {time.monotonic() - relay.started:.3f}")
            wait(exited, CADENCE_IDLE)
        elif name == "main":
            if not wait(lambda: exited() or self._caught_up(relay), 60):
                notes.append("did not report write >= the end of WAL within 60 s")
            wait(exited, 3.5)         # idle: the sender pings after 2 s of silence
        elif name == "sender-shutdown":
            wait(lambda: exited() or self._caught_up(relay), 60)
            conns = relay.connections
            sender.send_signal(signal.SIGTERM)
            sender.wait(scaled(30))
            if not wait(lambda: exited() or relay.connections > conns, 12):
                notes.append("neither exited nor reconnected within 12 s of the sender's shutdown")
        else:
            wait(exited, 8)
        if exited():
            # the relay's threads record a connection's close when they see its end of
            # stream: give them a moment before the relay is closed and read (a starved
            # thread once made R16 read "still open" after the receiver had exited)
            wait(lambda: _all_closed(relay.snapshot()), 2)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes], notes: list[str]) -> int | None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)     # the whole group: the command may be a wrapper
            notes.append("stopped with SIGINT")
            try:
                proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                notes.append("killed: SIGINT did not stop it within 10 s")
                return None
        return proc.returncode

    # --- helpers for checks
    def source(self, run: ReceiverRun, tli: int, lsn: int, length: int) -> bytes | None:
        return wal_bytes(run.waldir, SEG, tli, lsn, length)


def _by_conn(run: ReceiverRun) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for m in run.messages:
        out.setdefault(m["conn"], []).append(m)
    return out


def _starts(run: ReceiverRun) -> list[dict[str, Any]]:
    return [m for m in run.queries() if m["sql"].startswith("START_REPLICATION")]


def _parse_start(sql: str) -> tuple[int, int | None]:
    words = sql.replace('"', " ").split()
    lsn = next(Lsn.parse(w) for w in words if "/" in w)
    tli = int(words[words.index("TIMELINE") + 1]) if "TIMELINE" in words else None
    return int(lsn), tli


def _reported_bytes_match(ctx: ReceiverContext, run: ReceiverRun) -> str:
    """Every byte the receiver reported as written (per timeline) equals the source."""
    written: dict[int, int] = {}
    for conn, msgs in _by_conn(run).items():
        tli = None
        for m in msgs:
            if m["type"] == "Q" and m["sql"].startswith("START_REPLICATION"):
                tli = _parse_start(m["sql"])[1]
            if m.get("sub") == "r" and tli is not None:
                written[tli] = max(written.get(tli, 0), m["write"])
    compared = 0
    for name in run.files():
        if name.endswith(".history") or len(name.split(".")[0]) != 24:
            continue
        tli = int(name[:8], 16)
        segno = int(name[8:16], 16) * (0x100000000 // SEG) + int(name[16:24], 16)
        start = segno * SEG
        upto = min(start + SEG, written.get(tli, 0))
        if upto <= start:
            continue
        got = (run.outdir / name).read_bytes()[: upto - start]
        want = ctx.source(run, tli, start, upto - start)
        if want is None:
            continue
        if got != want:
            at = next(i for i in range(min(len(got), len(want))) if got[i] != want[i]) \
                if len(got) == len(want) else min(len(got), len(want))
            raise Failed(f"{run.name}: {name} differs from the source at {Lsn(start + at)}, "
                         f"below the reported write position {Lsn(upto)}")
        compared += upto - start
    return f"{compared} reported-written bytes identical to the source"


def _first_error(run: ReceiverRun) -> str:
    """The receiver's first error line (the cause; later ones say "disconnected"), else its last line."""
    for line in run.output.splitlines():
        if re.search(r"error:|FATAL|ERROR", line) and not line.rstrip().endswith("disconnected"):
            return line.strip()[:200]
    return _last_line(run)


def _received_before(msgs: list[dict[str, Any]], r: dict[str, Any]) -> int:
    """End of the WAL the connection had received when it sent r.  After a
    timeline switch pg_receivewal 15 reports write = the new start (the
    segment start of the switch point) with flush = the old timeline's end,
    so flush may exceed that message's write but never what was received."""
    return max((m["start"] + m["len"] for m in msgs
                if m.get("sub") == "w" and m["dir"] == "S" and m["t"] <= r["t"]), default=0)


def _last_line(run: ReceiverRun) -> str:
    lines = [x for x in run.output.strip().splitlines() if x.strip()]
    return lines[-1][:200] if lines else "(no output)"


# ---------------------------------------------------------------- checks

@check("R01", "It sends a StartupMessage with replication=true, user, database (ignored) and "
       "application_name, and completes trust, password, MD5 and SCRAM auth.",
       "libpq fe-connect.c; pg_receivewal streamutil.c GetConnection")
def r01(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    starts = [m for m in run.messages if m["type"] == "startup"]
    expect(bool(starts), f"no StartupMessage; receiver: {_last_line(run)}")
    p = starts[0]["params"]
    expect(p.get("replication", "").lower() in ("true", "on", "yes", "1"), f"replication={p.get('replication')!r}")
    expect(p.get("user") == USER, f"user={p.get('user')!r}")
    expect(bool(p.get("application_name")), f"no application_name in {sorted(p)}")
    codes = [m["code"] for m in run.server() if m["type"] == "R" and m["conn"] == starts[0]["conn"]]
    expect(10 in codes and codes[-1] == 0, f"SCRAM exchange: authentication codes {codes}")
    return f"startup {p}; SCRAM-SHA-256 completed (R codes {codes})"


@check("R02", "It runs IDENTIFY_SYSTEM, checks 1 row and ≥3 columns, and parses timeline/xlogpos.",
       "receivelog.c RunIdentifySystem")
def r02(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    for conn, msgs in _by_conn(run).items():
        qs = [m["sql"] for m in msgs if m["type"] == "Q"]
        for i, q in enumerate(qs):
            if q.startswith("START_REPLICATION") and not any(x == "IDENTIFY_SYSTEM" for x in qs[:i]):
                raise Failed(f"connection {conn}: {q} without IDENTIFY_SYSTEM before it ({qs})")
    expect(bool(_starts(run)), f"no START_REPLICATION; receiver: {_last_line(run)}")
    return "IDENTIFY_SYSTEM precedes START_REPLICATION on every connection: " + " | ".join(
        m["sql"] for m in run.queries())[:300]


@check("R03", "It always sends START_REPLICATION … X/X TIMELINE n with X/X segment-aligned and n explicit.",
       "pg_receivewal.c StreamLog; receivelog.c ReceiveXlogStream")
def r03(ctx: ReceiverContext) -> str:
    starts = _starts(ctx.run("main"))
    expect(bool(starts), "no START_REPLICATION")
    for m in starts:
        lsn, tli = _parse_start(m["sql"])
        expect(tli is not None, f"{m['sql']}: no TIMELINE")
        expect(lsn % SEG == 0, f"{m['sql']}: {Lsn(lsn)} is not at a segment start")
    return "; ".join(m["sql"] for m in starts)


@check("R04", "It fetches TIMELINE_HISTORY n for n ≠ 1 before streaming TLI n and stores it as "
       "%08X.history with exact bytes.", "receivelog.c ReceiveXlogStream; walmethods.c")
def r04(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    qs = [m["sql"] for m in run.queries()]
    tl2 = [i for i, q in enumerate(qs) if q.startswith("START_REPLICATION") and q.endswith("TIMELINE 2")]
    expect(bool(tl2), f"never started timeline 2: {qs}")
    expect("TIMELINE_HISTORY 2" in qs[: tl2[0]], f"no TIMELINE_HISTORY 2 before {qs[tl2[0]]}: {qs}")
    got = run.outdir / "00000002.history"
    expect(got.exists(), f"no 00000002.history in {run.files()}")
    want = (run.waldir / "00000002.history").read_bytes()
    expect(got.read_bytes() == want, f"00000002.history holds {got.read_bytes()[:60]!r}, server sent {want[:60]!r}")
    return f"TIMELINE_HISTORY 2 before {qs[tl2[0]]}; 00000002.history identical ({len(want)} bytes)"


@check("R05", "It writes each XLogData at its dataStart offset, and rejects non-contiguous data with an "
       "error, not silent corruption (here: every byte it reports as written equals the source, also "
       "under --misbehave gap).", "receivelog.c ProcessXLogDataMsg ('got WAL data offset %08x, expected %08x')")
def r05(ctx: ReceiverContext) -> str:
    main = _reported_bytes_match(ctx, ctx.run("main"))
    gap = ctx.run("gap")
    gap_ev = _reported_bytes_match(ctx, gap)
    return f"main: {main}; gap: {gap_ev}, exit {gap.returncode}, last line: {_last_line(gap)}"


@check("R06", "Output files are NAME.partial until the segment is complete, then renamed to NAME.",
       "walmethods.c dir_close (durable_rename); receivelog.c close_walfile")
def r06(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    files = run.files()
    for k in (0, 1):
        name = ctx.ds.seg(1, k)
        expect(name in files, f"complete segment {name} missing; files: {files}")
        data = (run.outdir / name).read_bytes()
        expect(len(data) == SEG and data == ctx.source(run, 1, (ctx.ds.segno_a + k) * SEG, SEG),
               f"{name} is not the source segment ({len(data)} bytes)")
    last = ctx.ds.seg(2, 2)
    expect(f"{last}.partial" in files and last not in files,
           f"the unfinished segment {last} of timeline 2 is not .partial: {files}")
    return f"files after the run: {', '.join(files)}"


@check("R07", "After a restart it begins at the segment after the highest complete segment (or at the "
       "highest .partial), on that file's TLI.", "pg_receivewal.c FindStreamingStart")
def r07(ctx: ReceiverContext) -> str:
    starts = _starts(ctx.run("main"))
    expect(bool(starts), "no START_REPLICATION")
    lsn, tli = _parse_start(starts[0]["sql"])
    first = ctx.ds.seg(1, 0)
    expect(lsn == ctx.ds.segno_a * SEG and tli == 1,
           f"directory held {first}.partial; first command: {starts[0]['sql']}")
    return f"with {first}.partial present: {starts[0]['sql']}"


@check("R08", "Durability: with sync on, the file and directory are fsynced at creation and at rename "
       "(checked with strace: every NAME.partial is fsynced, then its directory, before WAL is reported; "
       "every rename follows an fsync of the file and is followed by an fsync of the directory).",
       "walmethods.c dir_open_for_write / dir_close (durable_rename)")
def r08(ctx: ReceiverContext) -> str:
    if shutil.which("strace") is None:
        raise Skipped("strace is not installed")
    if any(w == "--no-sync" for w in ctx.template):
        raise Skipped("the command turns syncing off (--no-sync)")
    run = ctx.run("durability")
    trace = (run.outdir.parent / "strace.log").read_text(errors="replace").splitlines()
    events: list[tuple[str, str, str]] = []        # (kind, path, new path)
    for line in trace:
        m = re.search(r"\b(?:fsync|fdatasync)\(\d+<(.*)>\)\s+= 0", line)
        if m:
            events.append(("fsync", m.group(1), ""))
            continue
        m = re.search(r"\brename\(\"(.*?)\", \"(.*?)\"\)\s+= 0", line)
        if m:
            events.append(("rename", m.group(1), m.group(2)))
            continue
        # renameat(5</dir>, "old", 5</dir>, "new"): names relative to the descriptors
        m = re.search(r"\brenameat2?\((?:\d+<(.*?)>|AT_FDCWD), \"(.*?)\", (?:\d+<(.*?)>|AT_FDCWD), "
                      r"\"(.*?)\".*\)\s+= 0", line)
        if m:
            events.append(("rename", os.path.join(m.group(1) or "", m.group(2)),
                           os.path.join(m.group(3) or "", m.group(4))))
    outdir = str(run.outdir)
    renames = [(i, e) for i, e in enumerate(events) if e[0] == "rename" and e[2].startswith(outdir)]
    expect(bool(renames), f"no rename into {outdir} traced (files: {run.files()})")
    for i, (_k, old, new) in renames:
        expect(any(k == "fsync" and path == old for k, path, _ in events[:i]),
               f"rename {Path(old).name} -> {Path(new).name} without an fsync of {Path(old).name} before it")
        nxt = next((j for j in range(i + 1, len(events)) if events[j][0] == "rename"), len(events))
        expect(any(k == "fsync" and path == outdir for k, path, _ in events[i + 1:nxt]),
               f"rename {Path(old).name} -> {Path(new).name} not followed by an fsync of the directory")
    created = sorted({path for k, path, _ in events if k == "fsync" and path.endswith(".partial")})
    for path in created:
        first = next(i for i, e in enumerate(events) if e[0] == "fsync" and e[1] == path)
        expect(any(k == "fsync" and p == outdir for k, p, _ in events[first:first + 3]),
               f"{Path(path).name}: its first fsync is not followed by one of the directory")
    return (f"{len(renames)} renames, each after an fsync of the file and followed by one of the directory; "
            f"{len(created)} .partial files fsynced with their directory at creation "
            f"({sum(1 for e in events if e[0] == 'fsync')} fsyncs traced)")


@check("R09", "It sends 'r' messages of exactly 34 bytes; flush = 0 or ≤ write and monotonic; the first "
       "'r' is sent promptly after CopyBoth. (After a timeline switch flush may exceed that message's write, as pg_receivewal 15 does, but never "
       "the WAL received.)", "receivelog.c sendFeedback")
def r09(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    n = 0
    for conn, msgs in _by_conn(run).items():
        w_at = next((m["t"] for m in msgs if m["type"] == "W"), None)
        rs = [m for m in msgs if m.get("sub") == "r"]
        if w_at is not None:
            expect(bool(rs) and rs[0]["t"] - w_at <= scaled(1.0),
                   f"connection {conn}: first r {'never' if not rs else f'{rs[0][chr(116)] - w_at:.2f} s after W'}")
        last_flush = 0
        for r in rs:
            expect(r["size"] == 34, f"connection {conn}: r of {r['size']} bytes")
            expect(r["flush"] == 0 or r["flush"] <= r["write"] or r["flush"] <= _received_before(msgs, r),
                   f"connection {conn}: flush {Lsn(r['flush'])} ahead of write {Lsn(r['write'])} and of "
                   f"all WAL received ({Lsn(_received_before(msgs, r))})")
            expect(r["flush"] == 0 or r["flush"] >= last_flush,
                   f"connection {conn}: flush went back from {Lsn(last_flush)} to {Lsn(r['flush'])}")
            last_flush = max(last_flush, r["flush"])
            n += 1
    expect(n > 0, "no status update at all")
    return f"{n} status updates of 34 bytes, flush never ahead of write nor backwards, first within 1 s of W"


@check("R10", "It answers a 'k' with replyRequested=1 with an 'r' within 1 s.", "receivelog.c ProcessKeepaliveMsg")
def r10(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    pings = [m for m in run.server("k") if m.get("reply") == 1]
    if not pings:
        raise Skipped("the sender never pinged (the receiver was never silent for 2 s)")
    worst = 0.0
    for k in pings:
        answers = [m for m in run.client("r") if m["conn"] == k["conn"] and m["t"] >= k["t"]]
        closed = [m for m in run.messages if m["conn"] == k["conn"] and m["type"].startswith("close") and m["t"] >= k["t"]]
        if not answers and closed and closed[0]["t"] - k["t"] < 1.0:
            continue          # the connection ended (SIGINT) right after the ping
        expect(bool(answers) and answers[0]["t"] - k["t"] <= scaled(1.0),
               f"ping at {k['t']:.2f} s: " + (f"answered after {answers[0]['t'] - k['t']:.2f} s" if answers
                                              else "never answered"))
        worst = max(worst, answers[0]["t"] - k["t"])
    return f"{len(pings)} pings, each answered by r within {worst * 1000:.0f} ms"


@check("R11", "It sends an 'r' at least every status interval (default 10 s), so a sender with "
       "wal_sender_timeout 60 s never times it out.", "receivelog.c HandleCopyStream (standby_message_timeout)")
def r11(ctx: ReceiverContext) -> str:
    if not ctx.long:
        raise Skipped("needs 12.5 s of silence after catching up; run with --long")
    run = ctx.run("cadence")
    caught = next((float(n.split()[-1]) for n in run.notes if n.startswith("caught up at")), None)
    expect(caught is not None, f"the receiver did not catch up: {_last_line(run)}")
    assert caught is not None
    end = max(m["t"] for m in run.messages)
    times = [caught] + [m["t"] for m in run.client("r") if m["t"] > caught] + [end]
    gaps = [b - a for a, b in zip(times, times[1:])]
    worst = max(gaps)
    expect(worst <= STATUS_INTERVAL + scaled(1.0),
           f"{worst:.1f} s without a status update (a sender that never pings; status interval "
           f"{STATUS_INTERVAL:g} s)")
    return (f"{len(times) - 2} status updates in {end - caught:.1f} s of silence from the sender; "
            f"longest gap {worst:.1f} s")


@check("R12", "End of timeline: on the server's CopyDone it sends CopyDone and reads T/D/C/C/Z, then fetches "
       "the new history and restarts at the segment start of next_tli_startpos on next_tli. The old TLI's "
       ".partial remains. (Under --misbehave single-commandcomplete it must not carry on as if the switch "
       "were complete.)", "receivelog.c ReceiveXlogStream / HandleEndOfCopyStream")
def r12(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    for conn, msgs in _by_conn(run).items():
        sc = next((i for i, m in enumerate(msgs) if m["dir"] == "S" and m["type"] == "c"), None)
        if sc is None:
            continue
        cc = next((i for i, m in enumerate(msgs) if i > sc and m["dir"] == "C" and m["type"] == "c"), None)
        expect(cc is not None, f"connection {conn}: no CopyDone answered the server's")
        qs = [m["sql"] for m in msgs if m["type"] == "Q"]
        switch = ctx.ds.switch
        want = f"START_REPLICATION {Lsn(switch - switch % SEG)} TIMELINE 2"
        expect(any(q.endswith(want[len('START_REPLICATION '):]) and q.startswith("START_REPLICATION") for q in qs),
               f"connection {conn}: no {want} after the switch: {qs}")
        break
    else:
        raise Failed(f"the server's CopyDone (end of timeline 1) never came: {[m['sql'] for m in run.queries()]}")
    expect(f"{ctx.ds.seg(1, 2)}.partial" in run.files(), f"old timeline's .partial gone: {run.files()}")
    bad = ctx.run("single-commandcomplete")
    for conn, msgs in _by_conn(bad).items():
        seen_d = False
        for m in msgs:
            if m["dir"] == "S" and m["type"] == "D":
                seen_d = True
            if seen_d and m["type"] == "Q" and m["sql"].endswith("TIMELINE 2"):
                raise Failed(f"single-commandcomplete: carried on to {m['sql']} on the same connection")
    return (f"c answered by c, {want}, old .partial kept; single-commandcomplete: "
            f"exit {bad.returncode}, {_last_line(bad)}")


@check("R13", "On C 'COPY 0' or socket close mid-stream it keeps the .partial and reconnects after a "
       "delay, or exits non-zero in no-loop mode. It exits 0 after SIGINT (sending CopyDone).",
       "receivelog.c HandleEndOfCopyStream; pg_receivewal.c sigint_handler")
def r13(ctx: ReceiverContext) -> str:
    run = ctx.run("main")
    expect(run.returncode == 0, f"exit status {run.returncode} after SIGINT: {_last_line(run)}")
    last_conn = max(m["conn"] for m in run.messages)
    expect(any(m["conn"] == last_conn and m["dir"] == "C" and m["type"] == "c" for m in run.messages),
           "no CopyDone sent on SIGINT")
    down = ctx.run("sender-shutdown")
    copy0 = [m for m in down.server() if m["type"] == "C" and m.get("tag") == "COPY 0"]
    expect(bool(copy0), "the sender's shutdown sent no C 'COPY 0' (harness problem)")
    expect(f"{ctx.ds.seg(2, 2)}.partial" in down.files(), f".partial lost: {down.files()}")
    reconnected = down.returncode is None or any(m["type"] == "accept" and m["t"] > copy0[0]["t"] for m in down.messages)
    expect((down.returncode not in (0, None)) or reconnected,
           f"after C 'COPY 0': exit {down.returncode}, no reconnection; {down.notes}")
    how = "reconnected" if reconnected and down.returncode in (None, 0) or reconnected else f"exit {down.returncode}"
    return f"SIGINT: CopyDone, exit 0; sender shutdown: .partial kept, {how} ({_last_line(down)})"


@check("R14", "It rejects SHOW wal_segment_size values that are not a power of 2 between 1 MB and 1 GB, "
       "and refuses integer_datetimes ≠ on.", "pg_receivewal.c RetrieveWalSegSize; streamutil.c")
def r14(ctx: ReceiverContext) -> str:
    raise Skipped("walsim-sender has no misbehaviour that reports a bad segment size or integer_datetimes")


@check("R15", "It handles ErrorResponse during COPY (e.g. segment removed) by reporting the server message "
       "and not renaming the partial file.", "receivelog.c HandleCopyStream")
def r15(ctx: ReceiverContext) -> str:
    run = ctx.run("removed")
    errs = [m for m in run.server() if m["type"] == "E"]
    expect(bool(errs), f"the sender did not refuse segment {ctx.ds.seg(1, -1)} (harness problem): {run.files()}")
    expect("has already been removed" in run.output,
           f"the server's message is not reported; receiver output ends: {_last_line(run)}")
    expect(ctx.ds.seg(1, -1) not in run.files(), f"segment {ctx.ds.seg(1, -1)} renamed as complete: {run.files()}")
    line = next(x for x in run.output.splitlines() if "has already been removed" in x)
    return f"{line.strip()[:160]}; files: {', '.join(run.files())}"


def _all_closed(messages: Sequence[dict[str, Any]]) -> bool:
    """Every connection the relay accepted has a recorded close in one direction."""
    accepted = {m["conn"] for m in messages if m["type"] == "accept"}
    closed = {m["conn"] for m in messages if m["type"] in ("close_C", "close_S")}
    return accepted <= closed


@check("R16", "An unknown or malformed CopyData message from the server is an error, not ignored "
       "(here: a 17-byte keepalive, --misbehave short-keepalive).", "receivelog.c HandleCopyStream / ProcessKeepaliveMsg")
def r16(ctx: ReceiverContext) -> str:
    run = ctx.run("short-keepalive")
    short = [m for m in run.server("k") if m["size"] != 18]
    if not short:
        raise Skipped("the sender sent no keepalive during the run")
    k = short[0]
    ended = [m for m in run.messages if m["conn"] == k["conn"] and m["type"] in ("close_C", "close_S") and m["t"] >= k["t"]]
    later_r = [m for m in run.client("r") if m["conn"] == k["conn"] and m["t"] > k["t"]]
    expect(bool(ended) and ended[0]["t"] - k["t"] <= scaled(2.0) and (not later_r or later_r[0]["t"] >= ended[0]["t"] - 0.001),
           f"after a {k['size']}-byte keepalive (t={k['t']:.3f} s) the connection went on: "
           f"{'answered with r at t=' + format(later_r[0]['t'], '.3f') if later_r else 'still open'}"
           f"{'; closed at t=' + format(ended[0]['t'], '.3f') if ended else ''}; receiver exit "
           f"{run.returncode}, {_last_line(run)}")
    return f"{k['size']}-byte keepalive: connection closed {ended[0]['t'] - k['t']:.3f} s later; {_last_line(run)}"


@check("R17", "Slot mode: it uses START_REPLICATION SLOT \"s\" and reports flush (so the slot's restart_lsn "
       "advances). (With an empty directory it would use READ_REPLICATION_SLOT; the suite's directory is "
       "not empty.)", "pg_receivewal.c StreamLog; receivelog.c sendFeedback")
def r17(ctx: ReceiverContext) -> str:
    if not ctx.uses_slot():
        raise Skipped("the command does not use a slot (-S)")
    run = ctx.run("main")
    starts = _starts(run)
    slot = ctx.slot_name()
    expect(bool(starts) and all(f'SLOT "{slot}"' in m["sql"] or f"SLOT {slot} " in m["sql"] for m in starts),
           f"START_REPLICATION without the slot {slot!r}: {[m['sql'] for m in starts]}")
    flushes = [m["flush"] for m in run.client("r") if m["flush"] > 0]
    expect(bool(flushes), "flush never reported with a slot")
    return f"{'; '.join(m['sql'] for m in starts)}; flush reported up to {Lsn(max(flushes))}"


def run_receiver_checks(ctx: ReceiverContext, only: Sequence[str] = (),
                        progress: Callable[[Result], None] | None = None) -> Report:
    return run_checks(Report("receiver", ctx.command), checks_for("receiver"), ctx, only, progress)


MISBEHAVIOURS = ("wrong-sysid", "lower-timeline", "wrong-history-name", "no-keepalive", "no-copydone",
                 "single-commandcomplete", "gap", "unflushed", "short-keepalive", "bitflip", "take-back")


@dataclass
class Reaction:
    """How the receiver behaved against one ``walsim-sender --misbehave`` kind
    (observed, not judged: not every misbehaviour is detectable on the wire)."""
    kind: str
    exit: str                 # exit status, or how it was stopped
    last_line: str
    acknowledged: str         # the highest write/flush it reported
    damage: str               # files that differ from the source below what it reported


def receiver_reaction(ctx: ReceiverContext, kind: str) -> Reaction:
    if kind not in MISBEHAVIOURS:
        raise ConformError(f"unknown misbehaviour {kind!r}")
    run = ctx.run(kind if kind in ("gap", "single-commandcomplete", "short-keepalive") else f"misbehave-{kind}")
    rs = run.client("r")
    ack = (f"write {Lsn(max(r['write'] for r in rs))}, flush {Lsn(max(r['flush'] for r in rs))}"
           if rs else "no status update")
    if rs and max(r["write"] for r in rs) > ctx.ds.end:
        ack += f" (past the end of valid WAL {Lsn(ctx.ds.end)})"
    try:
        damage = "none"
        _reported_bytes_match(ctx, run)
        for name in run.files():
            if len(name) == 24:       # complete segments must equal the source in full
                segno = int(name[8:16], 16) * (0x100000000 // SEG) + int(name[16:], 16)
                want = ctx.source(run, int(name[:8], 16), segno * SEG, SEG)
                if want is not None and (run.outdir / name).read_bytes() != want:
                    damage = f"{name} differs from the source"
                    break
    except Failed as exc:
        damage = str(exc)
    stopped = "SIGINT" if "stopped with SIGINT" in run.notes else ""
    exit_text = f"exit {run.returncode}" + (f" after {stopped}" if stopped else "")
    return Reaction(kind, exit_text, _first_error(run), ack, damage)


def reactions_table(reactions: Sequence[Reaction]) -> str:
    lines = ["| misbehaviour | exit | first error (else last line) | acknowledged | damage kept |", "|---|---|---|---|---|"]
    for r in reactions:
        lines.append(f"| `{r.kind}` | {r.exit} | `{r.last_line}` | {r.acknowledged} | {r.damage} |")
    return "\n".join(lines)
