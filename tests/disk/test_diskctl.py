"""walsim-diskctl on bad input: a clear error naming what and where, exit
status 2, and nothing changed (no PostgreSQL needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from walsim.core.paths import program


def diskctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program("walsim-diskctl")), *args],
                          capture_output=True, text=True, close_fds=True)


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    proc = diskctl("--node-dir", str(tmp_path), "init", "--journal", "--seed", "11")
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def rule_list(node_dir: Path) -> str:
    proc = diskctl("--node-dir", str(node_dir), "rule", "list")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("words, message", [
    (["id=x", "path=pg_wal/*", "ops=fsync", "do=errno:EWHAT"], "do=errno:EWHAT"),
    (["id=x", "path=pg_wal/*", "ops=fsnyc", "do=lie"], 'unknown operation "fsnyc"'),
    (["id=x", "path=/abs", "ops=fsync", "do=lie"], "path=/abs"),
    (["id=x", "path=pg_wal/*", "ops=fsync", "when=nth:0", "do=lie"], "when=nth:0"),
    (["id=x", "path=pg_wal/*", "ops=fsync", "when=prob:2", "do=lie"], "when=prob:2"),
    (["id=x", "path=pg_wal/*", "ops=fsync", "do=short"], "ops=write only"),
    (["id=x", "path=pg_wal/*", "ops=write"], "missing do="),
    (["id=x", "path=pg_wal/*", "ops=write", "do=lie", "colour=red"], '"colour=red": unknown key'),
    (["pg_wal/*"], '"pg_wal/*": expected key=value'),
])
def test_malformed_rule_changes_nothing(node_dir: Path, words: list[str], message: str) -> None:
    assert diskctl("--node-dir", str(node_dir), "rule", "add", "id=keep", "path=base/**",
                   "ops=read", "do=flip").returncode == 0
    before = rule_list(node_dir)
    proc = diskctl("--node-dir", str(node_dir), "rule", "add", *words)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.startswith("walsim-diskctl: rule add: ")
    assert rule_list(node_dir) == before


def test_duplicate_and_unknown_ids(node_dir: Path) -> None:
    rule = ["id=a", "path=x", "ops=fsync", "do=lie"]
    assert diskctl("--node-dir", str(node_dir), "rule", "add", *rule).returncode == 0
    proc = diskctl("--node-dir", str(node_dir), "rule", "add", *rule)
    assert proc.returncode == 2 and 'rule "a": already exists' in proc.stderr
    proc = diskctl("--node-dir", str(node_dir), "rule", "del", "b")
    assert proc.returncode == 2 and 'rule "b": no such rule' in proc.stderr
    assert rule_list(node_dir).startswith("id=a path=x ops=fsync when=after:0 do=lie limit=0")


def test_missing_region_is_named(tmp_path: Path) -> None:
    for args in (["rule", "list"], ["stats"], ["crash"], ["rule", "add", "id=a", "path=x",
                                                          "ops=fsync", "do=lie"]):
        proc = diskctl("--node-dir", str(tmp_path), *args)
        assert proc.returncode == 2
        assert f"{tmp_path}/walsim-disk.region" in proc.stderr


def test_usage_errors(tmp_path: Path) -> None:
    assert diskctl().returncode == 2
    assert "missing --node-dir" in diskctl().stderr
    proc = diskctl("--node-dir", str(tmp_path), "explode")
    assert proc.returncode == 2 and 'unknown command "explode"' in proc.stderr
    proc = diskctl("--node-dir", str(tmp_path), "init", "--seed", "x")
    assert proc.returncode == 2 and '--seed "x"' in proc.stderr
    proc = diskctl("--node-dir", str(tmp_path), "init", "--data-dir", str(tmp_path / "nope"))
    assert proc.returncode == 2 and str(tmp_path / "nope") in proc.stderr
    (tmp_path / "data").mkdir()
    proc = diskctl("--node-dir", str(tmp_path / "data"), "init", "--data-dir", str(tmp_path))
    assert proc.returncode == 2 and "inside the data directory" in proc.stderr
    assert diskctl("--help").returncode == 0


def test_stats_and_journal(node_dir: Path) -> None:
    proc = diskctl("--node-dir", str(node_dir), "journal", "status")
    assert proc.stdout.strip() == "on"
    assert diskctl("--node-dir", str(node_dir), "journal", "off").returncode == 0
    assert diskctl("--node-dir", str(node_dir), "journal", "status").stdout.strip() == "off"
    proc = diskctl("--node-dir", str(node_dir), "stats", "--json")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0].startswith('{"journal":false')
    proc = diskctl("--node-dir", str(node_dir), "crash")
    assert proc.returncode == 0, proc.stderr
    assert "rolled back: 0 journal records" in proc.stdout


def test_rule_set_replaces_in_place(node_dir: Path) -> None:
    base = ["--node-dir", str(node_dir), "rule"]
    assert diskctl(*base, "set", "id=a", "path=x", "ops=fsync", "do=lie").returncode == 0
    assert diskctl(*base, "set", "id=a", "path=y", "ops=write", "when=nth:2",
                   "do=errno:EIO").returncode == 0
    assert rule_list(node_dir) == ("id=a path=y ops=write when=nth:2 do=errno:EIO limit=0 "
                                   "calls=0 fired=0\n")
    proc = diskctl(*base, "set", "id=a", "path=y", "ops=write", "do=errno:ENOTHING")
    assert proc.returncode == 2 and proc.stderr.startswith("walsim-diskctl: rule set: ")
    assert "when=nth:2" in rule_list(node_dir)
