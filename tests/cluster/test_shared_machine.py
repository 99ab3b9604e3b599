"""walsim as root on a machine shared with other local users (issue 16,
items 9-11; docs/security.md, "A local unprivileged user").

9.  The port allocator's lock files lived in a world-writable
    ``/tmp/walsim-ports``; a planted ``port-N.lock -> /some/file`` made root
    truncate the target and write a pid into it.
10. The initdb template cache at a predictable path was trusted without an
    owner check: another user's directory was copied and started.
11. Every cluster built from one template shared the template's superuser
    password.

Each test failed before the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest

from walsim.core.errors import PortError, UnsafePathError
from walsim.core.safefs import open_nofollow, private_dir, runtime_dir
from walsim.pg import ports as ports_mod
from walsim.pg.pgbin import PgBin
from walsim.pg.ports import PortAllocator
from walsim.pg.runas import RunAs
from walsim.pg.template import CACHE_ENV, ensure_template

NOBODY = 65534


# ------------------------------------------------------------------ item 9

def test_planted_symlink_lock_file_is_never_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared-ports"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a directory shared on purpose, like /tmp
    precious = tmp_path / "precious"
    precious.write_text("do not touch\n")
    port = 31111
    (shared / f"port-{port}.lock").symlink_to(precious)
    alloc = PortAllocator(shared, low=port, high=port)
    with pytest.raises(PortError):
        alloc.reserve(port)
    with pytest.raises(PortError):
        alloc.reserve()  # the only port of the range is skipped, not taken over
    assert precious.read_text() == "do not touch\n"
    assert os.path.islink(shared / f"port-{port}.lock")


def test_planted_fifo_or_foreign_file_is_skipped(tmp_path: Path) -> None:
    shared = tmp_path / "shared-ports"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    os.mkfifo(shared / "port-31112.lock")
    alloc = PortAllocator(shared, low=31112, high=31113)
    res = alloc.reserve()
    try:
        assert res.port == 31113
    finally:
        res.release()
    if os.geteuid() == 0:
        foreign = shared / "port-31113.lock"
        foreign.write_text("123\n")
        os.chown(foreign, NOBODY, NOBODY)
        with pytest.raises(PortError):
            alloc.reserve(31113)
        assert foreign.read_text() == "123\n"


def test_default_port_directory_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ports_mod.PORT_DIR_ENV, raising=False)
    monkeypatch.setenv("WALSIM_RUNTIME_DIR", str(tmp_path / "rt"))
    alloc = PortAllocator()
    res = alloc.reserve()
    try:
        d = alloc.directory
        st = os.lstat(d)
        assert d == tmp_path / "rt" / "ports"
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(tmp_path / "rt").st_mode) == 0o700
    finally:
        res.release()
    # the real default (no variables) is under the per-user runtime directory, never /tmp/walsim-ports
    monkeypatch.delenv("WALSIM_RUNTIME_DIR")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert ports_mod.default_port_dir() == runtime_dir() / "ports"
    assert runtime_dir().name == f"walsim-{os.geteuid()}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_port_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "ports"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(PortError, match=r"belongs to .*uid 65534.*refusing"):
        PortAllocator(d).reserve()


def test_safefs_helpers(tmp_path: Path) -> None:
    """The shared checks other layers call (snapshot cache, template cache, supervisor)."""
    assert private_dir(tmp_path / "a") == tmp_path / "a"
    os.chmod(tmp_path / "a", 0o755)
    with pytest.raises(UnsafePathError, match="mode 0755"):
        private_dir(tmp_path / "a")
    (tmp_path / "link").symlink_to(tmp_path / "b", target_is_directory=True)
    (tmp_path / "b").mkdir(mode=0o700)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        private_dir(tmp_path / "link")
    (tmp_path / "f").write_text("x")
    (tmp_path / "flink").symlink_to(tmp_path / "f")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_nofollow(tmp_path / "flink", os.O_RDWR)
    os.close(open_nofollow(tmp_path / "f", os.O_RDWR))


# ------------------------------------------------------------------ item 10

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_template_cache_of_another_user_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   pg_bin: PgBin) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "complete").write_text("")
    os.chown(cache, NOBODY, NOBODY)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    runas = RunAs.resolve()
    with pytest.raises(UnsafePathError, match=r"initdb template cache .* belongs to .*uid 65534"):
        ensure_template(pg_bin, runas, "postgres", [], tmp_path / "log", 60)
    assert sorted(p.name for p in cache.iterdir()) == ["complete"]  # nothing built, nothing copied


@pytest.mark.parametrize("plant", ["symlink", "open_mode"])
def test_template_cache_link_or_open_directory_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          pg_bin: PgBin, plant: str) -> None:
    runas = RunAs.resolve()
    cache = tmp_path / "cache"
    if plant == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        runas.chown(tmp_path / "elsewhere")
        cache.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        cache.mkdir(mode=0o777)
        os.chmod(cache, 0o777)
        runas.chown(cache)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    with pytest.raises(UnsafePathError, match="initdb template cache"):
        ensure_template(pg_bin, runas, "postgres", [], tmp_path / "log", 60)


# ------------------------------------------------------------------ item 11

@pytest.mark.pg
def test_clusters_from_one_template_have_their_own_superuser_password(cluster_factory: Any) -> None:
    a, b = cluster_factory(), cluster_factory()
    pa, pb = a.create_primary("pg1"), b.create_primary("pg1")
    pw_a, pw_b = a._superuser_password, b._superuser_password
    assert pw_a and pw_b and pw_a != pw_b
    runas = a.runas
    template_pw = [p.read_text().strip()
                   for p in Path(os.environ.get(CACHE_ENV) or
                                 f"/tmp/walsim-initdb-cache-{runas.user}").glob("*/superuser.pw")]

    def login(node: Any, user: str, password: str) -> bool:
        try:
            with psycopg.connect(host=node.host, port=node.port, user=user, password=password,
                                 dbname="postgres", connect_timeout=10, passfile="/dev/null"):
                return True
        except psycopg.OperationalError:
            return False

    assert login(pa, a.superuser, pw_a) and login(pb, b.superuser, pw_b)
    assert not login(pa, a.superuser, pw_b)
    assert not login(pb, b.superuser, pw_a)
    for pw in template_pw:
        assert not login(pa, a.superuser, pw) and not login(pb, b.superuser, pw)
