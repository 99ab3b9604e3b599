"""The classic streaming-replication tutorial, end to end, on PostgreSQL 15."""

from __future__ import annotations

import psycopg
import pytest

from walsim.pg.cluster import Cluster

pytestmark = pytest.mark.pg


def test_tutorial_primary_and_streaming_standby(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    # The primary is configured as the documentation says.
    settings = dict(pg1.query("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                              [["wal_level", "hot_standby", "wal_log_hints", "data_checksums",
                                "listen_addresses", "max_wal_senders"]]))
    assert settings["wal_level"] == "replica"
    assert settings["hot_standby"] == "on"
    assert settings["wal_log_hints"] == "on"
    assert settings["data_checksums"] == "on"
    # its own loopback address, and 127.0.0.1 for configurations that name it
    # (docs/clusters.md, "Node addresses")
    assert pg1.host == "127.0.0.11"
    assert settings["listen_addresses"] == "127.0.0.11,127.0.0.1"
    assert int(settings["max_wal_senders"]) >= 2
    hba = pg1.query("SELECT type, database, user_name, address, auth_method FROM pg_hba_file_rules "
                    "WHERE 'replication' = ANY(database)")
    assert hba == [("host", ["replication"], [cluster.replication_user], addr, "scram-sha-256")
                   for addr in ("127.0.0.1", "127.0.0.11")]
    role = pg1.query("SELECT rolreplication, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s",
                     [cluster.replication_user])
    assert role == [(True, True, False)]

    pg2 = cluster.create_standby("pg2", upstream=pg1)
    assert (pg2.data_dir / "standby.signal").exists()
    assert oct(cluster.passfile.stat().st_mode & 0o777) == "0o600"
    rows = pg1.replication_status()
    assert [(r["application_name"], r["state"]) for r in rows] == [("pg2", "streaming")]
    # the standby connects from its own address, which the primary now admits
    assert [str(r["client_addr"]) for r in rows] == [pg2.host] == ["127.0.0.12"]
    assert ("127.0.0.12", "scram-sha-256") in pg1.query(
        "SELECT address, auth_method FROM pg_hba_file_rules WHERE 'replication' = ANY(database)")

    pg1.execute("CREATE TABLE tutorial (id int PRIMARY KEY, note text)")
    pg1.execute("INSERT INTO tutorial VALUES (%s, %s)", [1, "written on the primary"])
    pg1.wait_for_catchup(pg2, "replay")
    assert pg2.query("SELECT note FROM tutorial WHERE id = 1") == [("written on the primary",)]
    assert pg2.in_recovery() and not pg1.in_recovery()

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as info:
        pg2.execute("INSERT INTO tutorial VALUES (2, 'refused')")
    assert info.value.sqlstate == "25006"


def test_legacy_tutorial_md5_and_durable(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1", auth="md5", durable=True)
    assert pg1.scalar("SHOW fsync") == "on"
    # one replication line per admitted address (walsim's and pg1's own), all md5
    assert pg1.query("SELECT auth_method FROM pg_hba_file_rules WHERE 'replication' = ANY(database)") == \
        [("md5",)] * len(cluster.hba_addresses()) == [("md5",)] * 2
    assert pg1.scalar("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = %s",
                      [cluster.replication_user]) == "md5"
    pg2 = cluster.create_standby("pg2", pg1)
    assert pg2.scalar("SHOW fsync") == "on"         # a durable primary gets durable standbys
    assert "--no-sync" not in pg2.log_file.read_text().split("pg_basebackup", 1)[1].splitlines()[0]
    pg1.execute("CREATE TABLE t AS SELECT 1 AS x")
    pg1.wait_for_catchup(pg2)
    assert pg2.table_checksum("t") == pg1.table_checksum("t")


def test_fsync_off_by_default(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    assert pg1.scalar("SHOW fsync") == "off" and pg2.scalar("SHOW fsync") == "off"
    assert "--no-sync" in pg2.log_file.read_text()
