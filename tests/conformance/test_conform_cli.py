"""``walsim-cli conform``: exit statuses, JSON and JUnit output."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from conform_support import Sender, served_dir

CLI = Path(__file__).resolve().parents[2] / "tools" / "walsim-cli"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "conform", *args], capture_output=True, text=True, timeout=300)


def _conninfo(s: Sender) -> str:
    return f"host=127.0.0.1 port={s.port} user=rep passfile={s.passfile}"


def test_cli_pass_and_fail(start_sender: Callable[..., Sender], tmp_path: Path) -> None:
    good = start_sender(served_dir(tmp_path / "good")[0])
    r = _cli("sender", "--target", _conninfo(good), "--waldir", str(good.waldir), "--only", "S05,S09,S19",
             "--json", str(tmp_path / "good.json"), "--junit", str(tmp_path / "good.xml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed, 0 failed, 0 skipped" in r.stdout
    data = json.loads((tmp_path / "good.json").read_text())
    assert [x["status"] for x in data["results"]] == ["PASS"] * 3

    bad = start_sender(served_dir(tmp_path / "bad")[0], "--misbehave", "wrong-sysid")
    r = _cli("sender", "--target", _conninfo(bad), "--only", "S05,S09", "--junit", str(tmp_path / "bad.xml"))
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(tmp_path / "bad.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and "long page header" in (failure.text or "")


def test_cli_bad_input(tmp_path: Path) -> None:
    for args, message in (
            (["sender", "--target", "host=127.0.0.1 port=1 user=x", "--only", "S99"], "no sender check S99"),
            (["sender", "--target", "host=127.0.0.1 port=1 user=x"], "cannot connect"),
            (["sender", "--target", "host=127.0.0.1 port=abc user=x"], "port='abc'"),
            (["sender", "--target", "host=127.0.0.1 port=5432"], "user=... is required"),
            (["sender", "--target", "host=127.0.0.1 user=x", "--waldir", str(tmp_path / "nope")], "not a directory"),
            (["receiver", "--command", "pg_receivewal -D %d"], "must contain %s")):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)


def test_a_target_that_refuses_the_role_is_one_error_not_a_list_of_fails(cluster) -> None:  # type: ignore[no-untyped-def]
    """A walsim cluster admits only the replication role for replication connections:
    conform as postgres used to report every check FAIL in 0.0 s (issue 19, item 10)."""
    pg1 = cluster.create_primary("pg1")
    target = f"host=127.0.0.1 port={pg1.port} user=postgres passfile={cluster.passfile}"
    r = _cli("sender", "--target", target, "--only", "S02,S05,S09")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "FAIL" not in r.stdout and "failed" not in r.stdout
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert "refused the replication connection before any check could run: 28000 no pg_hba.conf entry" in err[0]
    assert "user=replicator" in err[0]
    ok = _cli("sender", "--target", target.replace("user=postgres", f"user={cluster.replication_user}"),
              "--only", "S05")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_a_wrong_password_is_one_error(start_sender: Callable[..., Sender], tmp_path: Path) -> None:
    s = start_sender(served_dir(tmp_path / "w")[0])
    wrong = tmp_path / "wrong-passfile"
    wrong.write_text("*:*:*:rep:not-the-password\n")
    wrong.chmod(0o600)
    r = _cli("sender", "--target", f"host=127.0.0.1 port={s.port} user=rep passfile={wrong}", "--only", "S05,S09")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refused the replication connection before any check could run: 28P01" in r.stderr
    assert "failed" not in r.stdout


def test_unreachable_target_and_a_receiver_that_cannot_start(tmp_path: Path) -> None:
    r = _cli("sender", "--target", "host=127.0.0.1 port=1 user=x")
    assert r.returncode == 2 and "the target is not reachable" in r.stderr and "failed" not in r.stdout
    for command, why in (("no-such-receiver-xyz %s %d", "'no-such-receiver-xyz': it is not in PATH"),
                         (f"{tmp_path}/missing %s %d", "it does not exist"),
                         (f"{tmp_path} %s %d", "it is not an executable file")):
        r = _cli("receiver", "--command", command)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "cannot start" in r.stderr and why in r.stderr, r.stderr
        assert "failed" not in r.stdout
