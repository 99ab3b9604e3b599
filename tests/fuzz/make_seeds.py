#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets (tests/fuzz/*.c) into DIR.

Seeds are small slices of the captured streams and WAL segments under
tests/data plus a few hand-written texts; every target's input layout is
described at the top of its source file.

    make_seeds.py SRCDIR OUTDIR
"""
from __future__ import annotations

import re
import struct
import sys
from pathlib import Path


def wire_messages(raw: bytes, frontend: bool) -> list[bytes]:
    """Split a captured stream into whole messages (for slicing seeds)."""
    out: list[bytes] = []
    pos = 0
    if frontend:
        # SSLRequest, then the startup packet: both untyped
        while pos + 8 <= len(raw):
            (n, code) = struct.unpack(">II", raw[pos:pos + 8])
            out.append(raw[pos:pos + n])
            pos += n
            if code != 80877103:
                break
    elif raw[:1] in (b"N", b"S"):
        pos = 1                 # the answer to an SSLRequest
    while pos + 5 <= len(raw):
        (n,) = struct.unpack(">I", raw[pos + 1:pos + 5])
        out.append(raw[pos:pos + 1 + n])
        pos += 1 + n
    return out


def write(outdir: Path, target: str, name: str, data: bytes) -> None:
    d = outdir / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main(argv: list[str]) -> int:
    src, outdir = Path(argv[1]), Path(argv[2])
    streams = src / "tests" / "data" / "streams"
    wal = src / "tests" / "data" / "wal"

    for base in ("standby", "receivewal"):
        fe = (streams / f"{base}.fe").read_bytes()
        be = (streams / f"{base}.be").read_bytes()
        for piece in (0, 6, 255):
            write(outdir, "fuzz_wire_frontend", f"{base}-{piece}", bytes([piece]) + fe)
        # the backend stream, cut to its first few KB, whole and in pieces
        for piece in (0x00, 0x0B, 0x7F):
            write(outdir, "fuzz_wire_backend", f"{base}-{piece}", bytes([piece]) + be[:6000])
        write(outdir, "fuzz_wire_backend", f"{base}-ssl", b"\x83" + be[:2000])
        # CopyData payloads as replication messages
        n = 0
        for m in wire_messages(be, False) + wire_messages(fe, True)[1:]:
            if m[:1] == b"d" and len(m) > 5 and n < 40:
                write(outdir, "fuzz_replmsg", f"{base}-{n}", m[5:5 + 200])
                n += 1
        for i, m in enumerate(wire_messages(fe, True)):
            if m[:1] == b"Q":
                write(outdir, "fuzz_sender_command", f"{base}-{i}", m[5:].rstrip(b"\0"))

    for seg, hi in (("000000010000000000000009", 0x00), ("00000001000000000000000A", 0x80)):
        raw = (wal / seg).read_bytes()
        for page, length in ((0, 8192), (0, 3 * 8192), (1, 2 * 8192), (5, 8192)):
            chunk = raw[page * 8192:page * 8192 + length]
            for piece in (0, 100, 200):
                write(outdir, "fuzz_walreader", f"{seg}-{page}-{length}-{piece}",
                      bytes([piece, hi | page]) + chunk)

    write(outdir, "fuzz_timeline", "tl2", b"\x02" + b"1\t0/3000060\tno recovery target specified\n")
    write(outdir, "fuzz_timeline", "tl4", b"\x04" + b"1\t0/3000060\tbefore 2026\n\n# comment\n2\t0/5000000\tx\n3\t1/0\tat lsn\n")
    for i, t in enumerate((b"0/3025A70", b"16/B374D848", b"FFFFFFFF/FFFFFFFF", b"16MB", b"1GB",
                           b"1024kB", b"000000010000000000000003", b"000000010000000000000003.partial",
                           b"00000002.history", b"0000000100000000000000FF")):
        write(outdir, "fuzz_lsn_segment", f"t{i}", t)
    for i, t in enumerate((b"IDENTIFY_SYSTEM", b"SHOW wal_segment_size",
                           b"TIMELINE_HISTORY 2", b"START_REPLICATION SLOT \"s1\" PHYSICAL 0/3000000 TIMELINE 1",
                           b"CREATE_REPLICATION_SLOT s1 TEMPORARY PHYSICAL (RESERVE_WAL true)",
                           b"DROP_REPLICATION_SLOT s1 WAIT", b"READ_REPLICATION_SLOT s1",
                           b"START_REPLICATION 0/0", b"BASE_BACKUP (LABEL 'x')", b"select 1;")):
        write(outdir, "fuzz_sender_command", f"t{i}", t)
    for i, t in enumerate((b"id=a link=l kind=drop msg=w prob=0.5 after_bytes=100 max=3",
                           b"id=b link=l kind=delay delay=20ms jitter=5ms dir=down",
                           b"id=c link=l kind=corrupt at_lsn=0/3000000 dir=down bit=3",
                           b"id=d link=l kind=reset after_msgs=10 trig_msg=k",
                           b"id=e link=l kind=partition duration=2s",
                           b"id=f link=l kind=throttle rate=1MB",
                           b"127.0.0.1:5432", b"localhost:65535")):
        write(outdir, "fuzz_netd_rules", f"t{i}", t)
    for i, t in enumerate((b"id=r1 glob=pg_wal/* op=fsync,write when=nth:3 do=eio",
                           b"id=r2 glob=**/[0-9]*.partial op=write do=short:100 when=after:2",
                           b"id=r3 glob=base/*/1259 op=open do=errno:ENOSPC",
                           b"pg_wal/[!a-f]* pg_wal/0000")):
        write(outdir, "fuzz_disk_rules", f"t{i}", t)
    for i, t in enumerate((b"60s", b"500ms", b"1min", b"2.5", b".5", b"0.25ms", b"100us", b"1d",
                           b"64k", b"10M", b"1GB", b"512kB", b"7B", b"18446744073709551615",
                           b"-2147483648", b"0xFFff", b"1e-3", b"0.5", b"on", b"of", b"TRUE")):
        write(outdir, "fuzz_parse", f"t{i}", t)
    # the rule lines the unit tests use are the best seeds of the rule syntax
    for target, test in (("fuzz_netd_rules", "test_netd_rules.c"), ("fuzz_disk_rules", "test_disk_rules.c")):
        text = (src / "tests" / "unit" / test).read_text(errors="replace")
        for i, lit in enumerate(sorted(set(re.findall(r'"((?:[^"\\]|\\.)*id=(?:[^"\\]|\\.)*)"', text)))):
            write(outdir, target, f"unit{i}", lit.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
