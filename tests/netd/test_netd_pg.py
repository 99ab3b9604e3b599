"""walsim-netd between a real PostgreSQL 15 primary and standby.

Each test builds a primary and a standby whose primary_conninfo points at a
netd link, applies one fault family, and checks what PostgreSQL does about
it (its logs, pg_stat_replication, the data) and what netd recorded.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from walsim.sim.netd import wait_conn
from walsim.core.timeouts import wait_until

pytestmark = pytest.mark.pg


def lsn_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def test_streaming_through_netd_tracks_protocol(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=11)
    p = proxied(netd)
    p.primary.execute("CREATE TABLE t AS SELECT generate_series(1, 5000) AS i")
    target = p.primary.scalar("SELECT pg_current_wal_lsn()::text")
    p.primary.wait_for_catchup(p.standby, "replay")
    assert p.standby.scalar("SELECT count(*) FROM t") == 5000

    conn = wait_until(lambda: next(iter(netd.conns("pg2")), None),
                      what="connection stats", done=lambda c: c is not None and
                      lsn_int(c["ack_apply"]) >= lsn_int(target))
    # protocol awareness: identity from the startup packet, the command and
    # the LSNs of both directions
    assert conn["conn"] == "pg2/pg2/0"
    assert conn["app"] == "pg2" and conn["replication"] == "true"
    assert conn["command"] == "START_REPLICATION" and conn["timeline"] == 1
    assert lsn_int(conn["last_lsn_sent"]) >= lsn_int(target)
    assert conn["down"]["by_type"]["w"] > 0 and conn["up"]["by_type"]["r"] > 0
    # the WAL payloads took the zero-copy path, and nothing was lost
    assert conn["down"]["spliced"] > 0
    assert conn["down"]["bytes_out"] == conn["down"]["bytes_in"] + 1  # + netd's 'N'
    assert conn["up"]["bytes_out"] == conn["up"]["bytes_in"] - 8  # - the SSLRequest
    # the SSLRequest was answered by netd, so the stream stayed plaintext
    assert conn["tls"] is False
    events = [e["event"] for e in netd.trace()]
    assert "startup" in events and "command" in events


def test_stall_beyond_receiver_timeout_then_heal(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=1)
    p = proxied(netd, standby_settings={"wal_receiver_timeout": "2s"})
    log_at = p.standby.log_position()
    netd.add_fault("st", link="pg2", kind="stall", dir="down")
    p.primary.execute("CREATE TABLE s AS SELECT 1 AS x")
    p.standby.wait_for_log(r"terminating walreceiver due to timeout", since=log_at)
    assert p.standby.scalar("SELECT to_regclass('s') IS NULL")
    # the walreceiver retries through the stalled link: a new connection
    wait_until(lambda: netd.stats("pg2")["links"][0]["accepted"], what="a reconnect", done=lambda n: n >= 2)
    assert netd.heal("pg2") == 1
    p.primary.wait_for_catchup(p.standby, "replay")
    assert p.standby.scalar("SELECT x FROM s") == 1
    closes = [e for e in netd.trace() if e["event"] == "conn_close"]
    assert closes, "the timed-out connection should be recorded as closed"


def test_corrupt_at_lsn_detected_not_applied_then_converges(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=5)
    p = proxied(netd)
    p.primary.execute("CREATE TABLE c (i int, pad text)")
    p.primary.wait_for_catchup(p.standby, "replay")
    start = lsn_int(p.primary.scalar("SELECT pg_current_wal_insert_lsn()::text"))
    # a byte well inside the next records (the inserted rows' data)
    target = start + 300
    target_text = f"{target >> 32:X}/{target & 0xFFFFFFFF:X}"
    log_at = p.standby.log_position()
    netd.add_fault("cx", link="pg2", kind="corrupt", at_lsn=target_text)
    p.primary.execute("INSERT INTO c SELECT g, repeat('x', 200) FROM generate_series(1, 50) g")
    end = p.primary.scalar("SELECT pg_current_wal_lsn()::text")
    m = p.standby.wait_for_log(
        r"(incorrect resource manager data checksum|invalid record length|invalid magic number|"
        r"incorrect hole size|invalid resource manager ID|record with incorrect prev-link|"
        r"invalid info bits|invalid contrecord length|out-of-sequence timeline|invalid (block|page))"
        r"[^\n]*", since=log_at)
    # detected and not applied: replay stays before the corrupt byte
    replayed = lsn_int(p.standby.scalar("SELECT pg_last_wal_replay_lsn()::text"))
    assert replayed <= target, f"replayed to {replayed:X} past the corruption at {target_text}: {m.group(0)}"
    fired = [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "cx"]
    assert fired and fired[0]["at_lsn"] == target_text
    netd.del_fault("cx")
    # PostgreSQL 15 keeps re-reading the corrupt copy it already wrote to
    # pg_wal (its receive pointer says the WAL is there) and never asks to
    # re-stream by itself; a restart makes it stream the segment again.
    log_at = p.standby.log_position()
    p.standby.restart()
    p.primary.wait_for_catchup(p.standby, "replay", lsn=end)
    p.standby.wait_for_log(r"started streaming WAL", since=log_at)
    assert p.standby.table_checksum("c") == p.primary.table_checksum("c")


def test_delay_raises_replay_lag(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=2)
    p = proxied(netd)
    p.primary.execute("CREATE TABLE d (i int)")
    netd.add_fault("dl", link="pg2", kind="delay", dir="down", ms=300)

    def lag() -> float:
        p.primary.execute("INSERT INTO d VALUES (1)")
        v = p.primary.scalar("SELECT extract(epoch FROM replay_lag) FROM pg_stat_replication "
                             "WHERE application_name = 'pg2'")
        return float(v or 0.0)
    seen = wait_until(lag, what="replay_lag above the injected delay", done=lambda v: v >= 0.3)
    assert seen >= 0.3
    netd.heal()
    p.primary.wait_for_catchup(p.standby, "replay")
    fired = [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "dl"]
    assert fired and all(e["delay_us"] == 300000 for e in fired)


def test_dropping_status_updates_blocks_sync_commit_until_heal(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=3)
    p = proxied(netd)
    p.primary.execute("CREATE TABLE sc (i int)")
    p.primary.set_synchronous_standbys("pg2")
    wait_until(lambda: p.primary.scalar("SELECT sync_state FROM pg_stat_replication "
                                        "WHERE application_name = 'pg2'"),
               what="pg2 synchronous", done=lambda s: s == "sync")
    netd.add_fault("nr", link="pg2", kind="drop", msg="r")
    result: dict[str, Any] = {}

    def commit() -> None:
        try:
            with p.primary.connect() as conn:
                conn.execute("SET application_name = 'blocked-commit'")
                conn.execute("INSERT INTO sc VALUES (42)")
            result["ok"] = True
        except psycopg.Error as exc:  # pragma: no cover - reported below
            result["error"] = exc
    t = threading.Thread(target=commit, daemon=True)
    t.start()
    wait_until(lambda: p.primary.scalar("SELECT wait_event FROM pg_stat_activity "
                                        "WHERE application_name = 'blocked-commit'"),
               what="the commit waiting for the standby", done=lambda w: w == "SyncRep")
    # the standby has the row, but its acknowledgement never arrives
    wait_until(lambda: p.standby.scalar("SELECT count(*) FROM sc"), what="row on standby",
               done=lambda n: n == 1)
    assert t.is_alive() and not result
    dropped = [e for e in netd.trace() if e["event"] == "fault" and e["rule"] == "nr"]
    assert dropped and all(e["type"] == "r" for e in dropped)
    netd.del_fault("nr")
    t.join(timeout=60)
    assert result.get("ok"), result


def test_reset_and_refuse_make_standby_retry(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=4)
    p = proxied(netd)
    log_at = p.standby.log_position()
    netd.add_fault("rf", link="pg2", kind="refuse", mode="reset")
    netd.add_fault("rs", link="pg2", kind="reset")
    p.standby.wait_for_log(r"(could not receive data from WAL stream|could not connect|"
                           r"server closed the connection|Connection reset)", since=log_at)
    wait_until(lambda: netd.stats("pg2")["links"][0]["refused"], what="refused retries", done=lambda n: n >= 2)
    assert not netd.conns("pg2")
    netd.heal()
    p.primary.execute("CREATE TABLE r AS SELECT 7 AS x")
    p.primary.wait_for_catchup(p.standby, "replay")
    assert p.standby.scalar("SELECT x FROM r") == 7
    kinds = {e["rule"] for e in netd.trace() if e["event"] == "fault"}
    assert {"rf", "rs"} <= kinds
    c = wait_conn(netd, "pg2", streaming=True)
    assert c["conn"].startswith("pg2/pg2/") and c["conn"] != "pg2/pg2/0"


def test_cut_after_bytes_closes_and_standby_reconnects(proxied: Any, netd_factory: Any) -> None:
    netd = netd_factory(seed=6)
    p = proxied(netd)
    first = wait_conn(netd, "pg2", streaming=True)
    sent = first["down"]["bytes_in"]
    netd.add_fault("cut", link="pg2", kind="cut_after", dir="down", bytes=sent + 5000, count=1)
    p.primary.execute("CREATE TABLE big AS SELECT g, repeat('y', 100) AS pad FROM generate_series(1, 2000) g")
    wait_until(lambda: [e for e in netd.trace() if e["event"] == "conn_close"],
               what="the cut connection closing", done=bool)
    p.primary.wait_for_catchup(p.standby, "replay")
    assert p.standby.scalar("SELECT count(*) FROM big") == 2000
    closes = [e for e in netd.trace() if e["event"] == "conn_close"]
    assert "cut_after" in closes[0]["reason"]
    # exactly the first N server bytes reached the client, plus the one-byte
    # 'N' netd itself sent in answer to the SSLRequest
    assert closes[0]["bytes_down"] == sent + 5000 + 1


def test_valgrind_clean_full_session(proxied: Any, netd_factory: Any) -> None:
    """A whole session under Valgrind: streaming, faults added and removed,
    reconnects, control traffic, shutdown.  Any memory error or leak makes
    the daemon exit 99."""
    import shutil
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    netd = netd_factory(seed=8, valgrind=True, timeout=60)
    p = proxied(netd)
    netd.add_fault("d", link="pg2", kind="delay", dir="both", ms=1, jitter_ms=3)
    netd.add_fault("h", link="pg2", kind="drop", msg="h")
    p.primary.execute("CREATE TABLE v AS SELECT generate_series(1, 20000) AS i")
    p.primary.wait_for_catchup(p.standby, "replay")
    netd.add_fault("rs", link="pg2", kind="reset", count=1)
    netd.add_fault("cx", link="pg2", kind="corrupt", nth=1, count=1)
    netd.stats()
    netd.heal()
    p.primary.execute("INSERT INTO v SELECT generate_series(1, 1000)")
    p.primary.wait_for_catchup(p.standby, "replay")
    assert netd.stop() == 0, netd.log_path.read_text()
