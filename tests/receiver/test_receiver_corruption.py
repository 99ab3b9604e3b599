"""A bit flipped between a real PostgreSQL 15 sender and walsim-receiver (a
relay in the test): detected at the right LSN, never acknowledged, healed by
streaming the segment again; the result equals the primary's WAL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receiver_support import Receivers, complete_segments, generate_wal, iter_events, wait_received
from walsim.pg.cluster import Cluster
from walsim.core.lsn import Lsn
from walsim.pg.ports import PortAllocator
from receiver_wire import FlipRelay

pytestmark = pytest.mark.pg


@pytest.fixture
def relay_port(port_allocator: PortAllocator) -> Iterator[int]:
    # held until the test ends, so no other test takes the port
    res = port_allocator.reserve()
    try:
        yield res.port
    finally:
        res.release()


def test_bit_flip_in_transit_detected_and_healed(cluster: Cluster, receivers: Receivers, relay_port: int) -> None:
    pg1 = cluster.create_primary("pg1", initdb_options=["--wal-segsize=1"])
    relay = FlipRelay(relay_port, (pg1.host, pg1.port), nth=3)
    try:
        conninfo = pg1.conninfo(replication=True, application_name="flip", port=relay.port, sslmode="disable")
        wal_dir = receivers.directory("flip")
        rcv = receivers.walsim(wal_dir, conninfo)
        # WAL in many small flushes, so the third XLogData comes after the start
        for i in range(30):
            pg1.execute(f"CREATE TABLE IF NOT EXISTS flip_t{i % 3} (x int, pad text)")
            pg1.execute(f"INSERT INTO flip_t{i % 3} SELECT g, repeat('y', 200) FROM generate_series(1, 500) g")
        generate_wal(pg1, 20000)
        end = pg1.lsn("flush")
        assert end is not None
        wait_received(pg1, "flip", end, rcv)
        assert rcv.stop() == 0, rcv.output()
    finally:
        relay.close()

    assert relay.flipped_lsn is not None, "the relay never saw a third XLogData"
    bad = relay.flipped_lsn
    events = rcv.events()
    failures = list(iter_events(events, "verify_failed"))
    assert len(failures) == 1, rcv.output()
    # the first byte of the message is a record or page header start: reported exactly there
    assert Lsn.parse(failures[0]["lsn"]) == bad, (failures, Lsn(bad))
    assert Lsn.parse(failures[0]["valid_end"]) <= bad
    assert failures[0]["action"] == "restream"
    # on the damaged connection nothing at or past the bad record was acknowledged
    first_conn = [s for s in relay.status if s.connection == 1]
    assert first_conn
    assert all(s.write <= bad and s.flush <= bad for s in first_conn), [(Lsn(s.write), Lsn(s.flush)) for s in first_conn]
    # healed: a second connection, and every complete segment equals the primary's
    assert relay.connections >= 2
    names = complete_segments(wal_dir)
    # 1 MB segments: 4096 per xlogid
    seg_of_bad = "00000001%08X%08X" % (bad >> 32, (bad & 0xFFFFFFFF) >> 20)
    assert seg_of_bad in names, (seg_of_bad, names)
    for name in names:
        assert (wal_dir / name).read_bytes() == (pg1.data_dir / "pg_wal" / name).read_bytes(), name
