#!/usr/bin/python3
"""make-version-wal.py — real WAL of every supported PostgreSQL major, for the
tests: ``tests/data/wal-N/`` (PostgreSQL 15's set is ``tests/data/wal``, made by
``tests/data/wal/make-wal.sh`` with pg_waldump).

The layout is that of make-wal.sh, with 1 MB segments (initdb
--wal-segsize=1):

    segment A   full; starts and ends in the middle of records (full-page images)
    segment B   starts in the middle of a record and ends with XLOG_SWITCH
                (pg_switch_wal())
    segment C   a few records and a shutdown checkpoint on timeline 1; the
                server then recovers its own WAL as a standby and is promoted:
                timeline 2 begins inside C.  Kept: the first 256 kB of C's
                timeline-2 file (``<C>.tli2-head``; WAL ends inside them) and
                ``00000002.history``; not kept: C's timeline-1 file.

The server's own ends, with no pg_waldump (the npm servers have none):

    switch_end  what pg_switch_wal() returned at the end of B: the end of its
                XLOG_SWITCH record
    tl2_begin   where timeline 2 begins (00000002.history): the end of valid
                timeline-1 WAL as the promoted server found it
    end         pg_last_wal_replay_lsn() of the server recovering its own
                timeline-2 WAL as a standby, once it logged that WAL ends: the
                end of the last valid record

written to ``dataset.txt`` with the magic the files carry.  The unit test
tests/unit/test_walversions.c reads each set with libwalsim and must find
the same ends; the receiver conformance suite streams each set with
walsim-sender.

Usage: tests/data/make-version-wal.py MAJOR [OUTDIR]   (as root: servers run as postgres)
Needs that major (make deps-versions) and walsim's Python package.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tools"))

from walsim.core.lsn import Lsn  # noqa: E402
from walsim.pg.cluster import Cluster  # noqa: E402
from walsim.pg.node import Node  # noqa: E402

SEG = 1 << 20
HEAD = 256 * 1024
SETTINGS = {"max_wal_size": "64MB", "min_wal_size": "4MB", "wal_keep_size": "64MB", "autovacuum": False,
            "checkpoint_timeout": "1h", "hot_standby": True}
# the startup process logs where WAL stops when it reaches the end of pg_wal in standby mode
END_RE = re.compile(r"(invalid record length|invalid magic number|unexpected pageaddr|"
                    r"record with incorrect prev-link|incorrect resource manager data checksum|"
                    r"contrecord is requested|invalid resource manager ID)")


def segment(node: Node) -> str:
    return str(node.scalar("SELECT pg_walfile_name(pg_current_wal_insert_lsn())"))


def leave_segment(node: Node) -> None:
    """CHECKPOINT + updates (full-page images) until the insert position leaves its segment."""
    s = segment(node)
    while segment(node) == s:
        node.execute("CHECKPOINT")
        node.execute("UPDATE t SET pad = pad WHERE id % 50 = 0")


def replay_end(node: Node, since: int) -> Lsn:
    """Start ``node`` as a standby of nothing; once it logged the end of its WAL,
    the end of the last record it replayed."""
    node.cluster.runas.write_file(node.data_dir / "standby.signal", "", 0o600)
    node.start()
    node.wait_for_log(END_RE.pattern, since)
    last = None
    for _ in range(50):
        lsn = node.lsn("replay")
        if lsn is not None and lsn == last:
            return lsn
        last = lsn
        time.sleep(0.2)
    raise SystemExit(f"make-version-wal: replay of {node.name} did not settle (last {last})")


def make(major: int, out: Path) -> None:
    with Cluster(version=major, template_cache=False, prefix=f"walsim-make-wal-{major}-") as c:
        pg = c.create_primary("pg1", settings=SETTINGS, initdb_options=["--wal-segsize=1"])
        pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text) WITH (fillfactor = 50)")
        pg.execute("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 4000) g")
        pg.switch_wal()
        leave_segment(pg)
        leave_segment(pg)
        b = segment(pg)
        pg.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(20001, 20200) g")
        pg.execute("UPDATE t SET pad = 'y' WHERE id % 97 = 0")
        if segment(pg) != b:
            raise SystemExit(f"make-version-wal: the workload overran segment {b}")
        switch_end = pg.switch_wal()
        cname = segment(pg)
        pg.execute("INSERT INTO t VALUES (30001, 'after the switch')")
        pg.execute("INSERT INTO t VALUES (30002, 'the last one')")
        pg.stop("fast")
        a = f"{b[:16]}{int(b[16:], 16) - 1:08X}"
        stage = Path(tempfile.mkdtemp(prefix="walsim-version-wal-"))
        try:
            for s in (a, b):
                shutil.copyfile(pg.data_dir / "pg_wal" / s, stage / s)
            # timeline 2: recover the server's own WAL, promote, write more
            c.runas.write_file(pg.data_dir / "standby.signal", "", 0o600)
            pg.start()
            pg.promote("pg_ctl")
            pg.execute("INSERT INTO t SELECT g, 'timeline 2' FROM generate_series(40001, 40300) g")
            pg.stop("fast")
            c2 = "00000002" + cname[8:]
            shutil.copyfile(pg.data_dir / "pg_wal" / c2, stage / c2)
            history = (pg.data_dir / "pg_wal" / "00000002.history").read_text()
            tl2_begin = Lsn.parse(history.split("\t")[1])
            end = replay_end(pg, pg.log_position())
            pg.stop("fast")
            if end // SEG != int(c2[16:], 16) or end % SEG >= HEAD:
                raise SystemExit(f"make-version-wal: timeline 2 WAL ends at {end}, not in the first "
                                 f"256 kB of {c2}")
            magic = (stage / a).read_bytes()[:2]
            out.mkdir(parents=True, exist_ok=True)
            for old in out.glob("0000000*"):
                old.unlink()
            for s in (a, b):
                shutil.copyfile(stage / s, out / s)
            (out / f"{c2}.tli2-head").write_bytes((stage / c2).read_bytes()[:HEAD])
            (out / "00000002.history").write_text(history)
            (out / "dataset.txt").write_text(
                f"# written by tests/data/make-version-wal.py with {c.pg.version_string}\n"
                f"major {major}\n"
                f"server_version {c.pg.version}\n"
                f"magic {int.from_bytes(magic, 'little'):04X}\n"
                f"segment_size {SEG}\n"
                f"segment_a {a}\n"
                f"segment_b {b}\n"
                f"segment_c {cname}\n"
                f"switch_end {switch_end}\n"
                f"tl2_begin {tl2_begin}\n"
                f"end {end}\n")
            for f in out.iterdir():
                f.chmod(0o644)
            print((out / "dataset.txt").read_text(), end="")
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or not argv[0].isdigit():
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    major = int(argv[0])
    make(major, Path(argv[1]) if len(argv) == 2 else HERE / f"wal-{major}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
