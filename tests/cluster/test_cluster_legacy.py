"""Legacy (pre-12/13) replication keys still produce a working setup on PostgreSQL 15."""

from __future__ import annotations

import pytest

from walsim.pg.cluster import Cluster
from walsim.pg.legacy import LegacySettingWarning, parse_conf, translate_recovery_conf
from walsim.core.timeouts import wait_until

pytestmark = pytest.mark.pg


def test_wal_keep_segments_becomes_wal_keep_size(cluster: Cluster) -> None:
    with pytest.warns(LegacySettingWarning, match=r"wal_keep_segments = 8 .*wal_keep_size = '128MB'"):
        pg1 = cluster.create_primary("pg1", settings={"wal_keep_segments": 8, "wal_level": "hot_standby"})
    assert pg1.scalar("SHOW wal_keep_size") == "128MB"
    assert pg1.scalar("SHOW wal_level") == "replica"     # the 9.x name is still an alias
    assert "wal_keep_segments" not in (pg1.data_dir / "walsim.conf").read_text()
    assert "notice: wal_keep_segments" in pg1.log_file.read_text()
    with pytest.warns(LegacySettingWarning):
        pg1.set_settings({"wal_keep_segments": 4})
    wait_until(lambda: pg1.scalar("SHOW wal_keep_size"), what="reload", done=lambda v: v == "64MB")


def test_recovery_conf_and_touch_trigger_file(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    trigger = cluster.run_dir / "pg2.trigger"
    recovery_conf = (
        "standby_mode = 'on'\n"
        f"primary_conninfo = 'host=127.0.0.1 port={pg1.port} user={cluster.replication_user} "
        f"passfile={cluster.passfile} application_name=pg2'\n"
        f"trigger_file = '{trigger}'   # the old name\n")
    with pytest.warns(LegacySettingWarning, match="promote_trigger_file"):
        pg2 = cluster.create_standby("pg2", pg1, recovery_conf=recovery_conf)
    assert pg2.scalar("SHOW promote_trigger_file") == str(trigger)
    assert (pg2.data_dir / "standby.signal").exists()
    pg1.execute("CREATE TABLE legacy AS SELECT 1 AS x")
    pg1.wait_for_catchup(pg2)
    assert pg2.scalar("SELECT x FROM legacy") == 1

    # Promotion the old way: `touch $trigger_file`, as the server's user.
    cluster.runas.run(["touch", str(trigger)], what="touch the trigger file")
    wait_until(pg2.in_recovery, what="pg2 to leave recovery", done=lambda v: v is False)
    assert pg2.timeline() == 2
    pg2.execute("INSERT INTO legacy VALUES (2)")


def test_recovery_conf_file_in_data_dir_is_translated_at_start(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1, start=False)
    # An old runbook: no standby.signal, a recovery.conf in PGDATA instead.
    (pg2.data_dir / "standby.signal").unlink()
    conninfo = pg1.conninfo(replication=False, dbname=None, application_name="pg2",
                            user=cluster.replication_user)
    (pg2.data_dir / "recovery.conf").write_text(
        f"standby_mode = on\nprimary_conninfo = '{conninfo}'\n")
    with pytest.warns(LegacySettingWarning, match="standby.signal"):
        pg2.start()
    assert not (pg2.data_dir / "recovery.conf").exists()
    assert (pg2.data_dir / "recovery.conf.walsim-translated").exists()
    assert (pg2.data_dir / "standby.signal").exists()
    pg2.wait_for_streaming()
    assert [r["application_name"] for r in pg1.replication_status()] == ["pg2"]


def test_recovery_conf_parser_units() -> None:
    assert parse_conf("a = 'it''s'\nb=on # c\nc 5") == {"a": "it's", "b": "on", "c": "5"}
    settings, signal, notices = translate_recovery_conf({"standby_mode": "off",
                                                         "restore_command": "cp x %p"})
    assert signal == "recovery.signal" and settings == {"restore_command": "cp x %p"}
    with pytest.raises(Exception, match="unknown recovery.conf key 'bogus'"):
        translate_recovery_conf("bogus = 1")
