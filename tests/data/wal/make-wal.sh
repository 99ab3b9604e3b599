#!/bin/bash
# make-wal.sh — regenerate the real PostgreSQL 15 WAL segments under
# tests/data/wal/ and the end of WAL that pg_waldump finds in each
# (expected.txt), for tests/unit/test_walreader.c and test_waldir.c.
#
# A throwaway cluster with 1 MB segments (initdb --wal-segsize=1) runs a
# workload of full-page images and small records so that:
#   segment A  is full and starts and ends in the middle of records;
#   segment B  starts in the middle of a record and ends with XLOG_SWITCH
#              (pg_switch_wal());
#   segment C  holds a few records, a shutdown checkpoint, then zeros.
# Then the stopped server is restarted as a standby of its own WAL and
# promoted: timeline 2 begins in segment C, whose timeline-2 file holds the
# timeline-1 records up to the switch point (on pages that still say
# timeline 1), then timeline-2 records.  Only the first 256 kB of that file
# are kept (C.tli2-head; WAL ends inside them, checked below; what follows is
# zeros and stale bytes of an older file, so tests pad the head with zeros),
# plus 00000002.history.
#
# The unit tests read expected.txt, but test_waldir.c and test_walpage.c also
# name these segments and a few LSNs inside them (with pg_waldump's listing in
# a comment): a regeneration that moves the segments means updating those.
#
# Usage: tests/data/wal/make-wal.sh            (as root or as any user;
#        PostgreSQL programs run as "postgres" when started as root)
# Needs PostgreSQL 15 (PG_BINDIR, default /usr/lib/postgresql/15/bin).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${WALSIM_WAL_OUT:-$here}    # where to write (default: next to this script)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d /tmp/walsim-make-wal.XXXXXX)
pgdata=$work/data

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    as_pg "$bindir/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] && chown postgres: "$work"
as_pg "$bindir/initdb" -D "$pgdata" --wal-segsize=1 -A trust -N -U postgres >/dev/null
cat >>"$pgdata/postgresql.conf" <<CONF
fsync = off
listen_addresses = ''
unix_socket_directories = '$work'
port = 5432
wal_level = replica
max_wal_size = 64MB
min_wal_size = 4MB
wal_keep_size = 64MB
autovacuum = off
CONF
as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$work/log" -w start >/dev/null

sql() {
    as_pg "$bindir/psql" -X -q -A -t -h "$work" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"
}
segno() {   # segment file name of the current insert position
    sql "SELECT pg_walfile_name(pg_current_wal_insert_lsn())"
}

sql "CREATE TABLE t (id int PRIMARY KEY, pad text) WITH (fillfactor = 50)"
sql "INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 4000) g"
sql "SELECT pg_switch_wal()" >/dev/null
# After a checkpoint every first touch of a page logs a full-page image
# (~8 kB records), so records cross page and segment boundaries.  Each round
# writes about 40 of them; leave_segment runs rounds until the insert
# position leaves the current segment.  Twice, so that A (the second one)
# starts in the middle of a record as well as ending in one.
leave_segment() {
    local s
    s=$(segno)
    while [ "$(segno)" = "$s" ]; do
        sql "CHECKPOINT"
        sql "UPDATE t SET pad = pad WHERE id % 50 = 0"
    done
}
leave_segment
leave_segment
b=$(segno)
# fill B a little more with small records, then switch
sql "INSERT INTO t SELECT g, 'x' FROM generate_series(20001, 20200) g"
sql "UPDATE t SET pad = 'y' WHERE id % 97 = 0"
[ "$(segno)" = "$b" ] || { echo "make-wal.sh: workload overran segment $b" >&2; exit 2; }
sql "SELECT pg_switch_wal()" >/dev/null
c=$(segno)
sql "INSERT INTO t VALUES (30001, 'after the switch')"
sql "INSERT INTO t VALUES (30002, 'the last one')"
as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null

# segment A is the one before B (full, records crossing both ends)
a=$(printf '%s%08X' "${b:0:16}" $((16#${b:16:8} - 1)))
c2="00000002${c:8:16}"

stage=$work/stage
mkdir "$stage"
for s in "$a" "$b" "$c"; do
    cp "$pgdata/pg_wal/$s" "$stage/$s"
done

# timeline 2: recover the server's own WAL as a standby, promote, write more
as_pg touch "$pgdata/standby.signal"
as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$work/log" -w start >/dev/null
as_pg "$bindir/pg_ctl" -D "$pgdata" -w promote >/dev/null
sql "INSERT INTO t SELECT g, 'timeline 2' FROM generate_series(40001, 40300) g"
as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
cp "$pgdata/pg_wal/$c2" "$stage/$c2"
cp "$pgdata/pg_wal/00000002.history" "$stage/00000002.history"
[ "$(id -u)" = 0 ] && chown -R postgres: "$stage"
# keep the head of the file only; WAL must end inside it
end2=$( (as_pg "$bindir/pg_waldump" "$stage/$c2" 2>&1 >/dev/null || true) |
       sed -n 's|.*invalid record length at 0/\([0-9A-F]*\):.*|\1|p')
if [ -z "$end2" ] || [ $((16#$end2 % 1048576)) -ge 262144 ]; then
    echo "make-wal.sh: timeline 2 WAL of $c2 does not end in its first 256 kB (end: ${end2:-?})" >&2
    exit 2
fi

rm -f "$out"/0000000*
for s in "$a" "$b" "$c"; do
    cp "$stage/$s" "$out/$s"
done
head -c 262144 "$stage/$c2" >"$out/$c2.tli2-head"
cp "$stage/00000002.history" "$out/00000002.history"
chmod 0644 "$out"/0000000*

# Expectations: for each segment alone, and for the three in a row, what
# pg_waldump reads: first and last record, record count, and how it ends
# (eof: the file ends inside or after a record; switch: the last record is
# XLOG_SWITCH; error LSN: the failing position pg_waldump names).
summarise() {   # label, pg_waldump args...
    local label=$1 out err
    shift
    out=$(as_pg "$bindir/pg_waldump" "$@" 2>"$work/err" || true)
    err=$(cat "$work/err")
    printf '%s\n' "$out" | awk -v label="$label" -v err="$err" '
        /^rmgr:/ {
            n++
            for (i = 1; i <= NF; i++) if ($i == "lsn:") lsn = $(i + 1)
            sub(",", "", lsn)
            if (n == 1) first = lsn
            last = lsn
            sw = ($0 ~ /desc: SWITCH/) ? 1 : 0
        }
        END {
            stop = "eof"; at = "-"
            if (match(err, /invalid record length at [0-9A-F]+\/[0-9A-F]+/)) {
                stop = "zeroed"; at = substr(err, RSTART + 25, RLENGTH - 25)
            } else if (err != "") {
                stop = "error"; at = err
            } else if (sw) {
                stop = "switch"
            }
            printf "%s %s %s %d %s %s\n", label, first, last, n, stop, at
        }'
}
tmp=$work/copy
mkdir "$tmp" "$tmp/tli2"
cp "$stage"/00000001* "$tmp"/
cp "$stage/$c2" "$tmp/tli2/"
[ "$(id -u)" = 0 ] && chown -R postgres: "$tmp"
{
    echo "# written by make-wal.sh with $("$bindir/pg_waldump" --version)"
    echo "# segment_size 1048576; timeline 2 begins at $(cut -f2 "$stage/00000002.history")"
    echo "# label first_record last_record records stop stop_lsn"
    for s in "$a" "$b" "$c"; do
        summarise "$s" "$tmp/$s"
    done
    first=$(summarise x "$tmp/$a" | awk '{ print $2 }')
    summarise all -p "$tmp" -s "$first"
    summarise "tli2:$c2" "$tmp/tli2/$c2"
} >"$out/expected.txt"
cat "$out/expected.txt"
