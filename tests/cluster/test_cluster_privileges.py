"""The privilege model: as root, PostgreSQL runs as an unprivileged user in
directories that user owns; as a non-root user, walsim runs it directly."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from walsim.pg import procs
from walsim.pg.cluster import Cluster
from walsim.core.timeouts import scaled

pytestmark = pytest.mark.pg
TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_as_root_servers_run_as_the_postgres_user(cluster: Cluster) -> None:
    pg1 = cluster.create_primary("pg1")
    pg2 = cluster.create_standby("pg2", pg1)
    user = pwd.getpwnam(cluster.runas.user)
    assert user.pw_uid != 0
    for node in (pg1, pg2):
        for pid in node.pids("postmaster") + node.pids("checkpointer"):
            status = Path(f"/proc/{pid}/status").read_text()
            uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
            assert set(uids) == {str(user.pw_uid)}, (node.name, pid, uids)
        assert node.data_dir.stat().st_uid == user.pw_uid
        assert node.data_dir.stat().st_mode & 0o777 == 0o700
    assert cluster.run_dir.stat().st_uid == user.pw_uid
    assert cluster.passfile.stat().st_uid == user.pw_uid
    assert cluster.passfile.stat().st_mode & 0o777 == 0o600


SCRIPT = r'''
import json, os, sys
from walsim.pg.cluster import Cluster
from walsim.pg import procs
with Cluster(keep=False) as c:
    pg1 = c.create_primary("pg1")
    pg2 = c.create_standby("pg2", pg1)
    pg1.execute("CREATE TABLE t AS SELECT 42 AS x")
    pg1.wait_for_catchup(pg2)
    pids = pg1.pids("postmaster") + pg2.pids("postmaster") + pg2.pids("walreceiver")
    uids = sorted({os.stat(f"/proc/{p}").st_uid for p in pids})
    result = {"x": pg2.scalar("SELECT x FROM t"), "uids": uids, "pids": pids,
              "pg_user": c.runas.user, "switch": c.runas.switch, "base": str(c.base_dir)}
print(json.dumps(result))
'''


@pytest.fixture
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("creating a throwaway user needs root and useradd")
    name = f"walsimnr{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    try:
        yield entry
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        # its private runtime directory (port locks), walsim.core.safefs.runtime_dir
        shutil.rmtree(Path(tempfile.gettempdir()) / f"walsim-{entry.pw_uid}", ignore_errors=True)
        cache = Path(tempfile.gettempdir()) / f"walsim-initdb-cache-{name}"
        shutil.rmtree(cache, ignore_errors=True)


def test_as_non_root_user_servers_run_directly(throwaway_user: pwd.struct_passwd) -> None:
    # The user cannot be assumed to read the checkout: give it a copy of the package.
    copy = Path(tempfile.mkdtemp(prefix="walsim-nonroot-"))
    try:
        shutil.copytree(TOOLS / "walsim", copy / "walsim", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [copy, *copy.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy), "HOME": str(copy),
               "LC_ALL": "C", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=copy,
                              user=throwaway_user.pw_uid, group=throwaway_user.pw_gid, extra_groups=[],
                              capture_output=True, text=True, timeout=scaled(240))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert result["x"] == 42
    assert result["pg_user"] == throwaway_user.pw_name
    assert result["switch"] is False
    assert result["uids"] == [throwaway_user.pw_uid]
    assert not [p for p in result["pids"] if procs.alive(p)]
    assert not Path(result["base"]).exists()
