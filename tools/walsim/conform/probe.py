"""Running ``walsim-probe`` and reading its transcript."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walsim.core.errors import ConformError
from walsim.core.paths import program
from walsim.core.timeouts import scaled


def parse_conninfo(text: str) -> dict[str, str]:
    """``key=value`` pairs of a libpq connection string (values may be quoted)."""
    out: dict[str, str] = {}
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConformError(f"connection string {text!r}: {exc}") from None
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise ConformError(f"connection string {text!r}: {w!r} is not key=value")
        out[key] = value
    return out


@dataclass
class Target:
    """Where a replication server listens, and how to log in."""
    host: str
    port: int
    user: str
    passfile: str | None = None
    password: str | None = None

    @classmethod
    def from_conninfo(cls, text: str) -> "Target":
        kv = parse_conninfo(text)
        unknown = set(kv) - {"host", "port", "user", "passfile", "password", "dbname",
                             "replication", "application_name", "sslmode"}
        if unknown:
            raise ConformError(f"connection string: unsupported keys {sorted(unknown)}")
        if "user" not in kv:
            raise ConformError("connection string: user=... is required")
        try:
            port = int(kv.get("port", "5432"))
        except ValueError:
            raise ConformError(f"connection string: port={kv['port']!r} is not a number") from None
        return cls(kv.get("host", "127.0.0.1"), port, kv["user"], kv.get("passfile"),
                   kv.get("password"))

    def conninfo(self) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"user={self.user}"]
        if self.passfile:
            parts.append(f"passfile={self.passfile}")
        return " ".join(parts)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (user {self.user})"


class Transcript:
    """The JSON lines of one probe run."""

    def __init__(self, lines: list[dict[str, Any]], script: str, stderr: str = "") -> None:
        self.lines = lines
        self.script = script
        self.stderr = stderr

    def incoming(self) -> list[dict[str, Any]]:
        return [m for m in self.lines if m["dir"] == "in"]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.lines if m["dir"] == "in" and m.get("type") in types]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.lines if m["dir"] == "event" and m["event"] == name]

    def closed(self) -> bool:
        return bool(self.events("close"))

    def after(self, sql_prefix: str) -> list[dict[str, Any]]:
        """Incoming messages after the Query starting with sql_prefix, up to the next
        outgoing message that is not CopyData/status (what answered it)."""
        out: list[dict[str, Any]] = []
        started = False
        for m in self.lines:
            if m["dir"] == "out" and m.get("type") == "Q":
                if started:
                    break
                started = m.get("sql", "").startswith(sql_prefix)
                continue
            if started and m["dir"] == "in":
                out.append(m)
        return out

    def xlogdata(self) -> list[dict[str, Any]]:
        return self.of_type("w")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.lines)


def brief(m: Mapping[str, Any]) -> str:
    """A message as short evidence text: E 42704 "message", C 'TAG', w 0/3000000+131072..."""
    t = m.get("type")
    if m.get("dir") == "event":
        return f"<{m['event']}{': ' + m['detail'] if m.get('detail') else ''}>"
    if t == "E" or t == "N":
        return f"{t} {m.get('C', '?')} \"{m.get('M', '')}\""
    if t == "C":
        return f"C '{m.get('tag')}'"
    if t == "Z":
        return f"Z '{m.get('status')}'"
    if t == "T":
        return "T[" + ", ".join(f"{f['name']}:{f['type']}" for f in m.get("fields", [])) + "]"
    if t == "D":
        return "D" + json.dumps(m.get("values"))
    if t == "W":
        return f"W {m.get('hex')}"
    if t == "w":
        from walsim.core.lsn import Lsn
        return f"w start={Lsn(m['start'])} len={m['len']} walEnd={Lsn(m['wal_end'])}"
    if t == "k":
        from walsim.core.lsn import Lsn
        return f"k walEnd={Lsn(m['wal_end'])} reply={m['reply']} size={m['size']}"
    if t == "answer":
        return f"'{m['byte']}'"
    return str(t)


def sequence(msgs: list[dict[str, Any]], limit: int = 12) -> str:
    """Messages as one evidence line, long runs of XLogData collapsed."""
    parts: list[str] = []
    run = 0
    for m in msgs:
        if m.get("type") == "w":
            run += 1
            continue
        if run:
            parts.append(f"{run}×w")
            run = 0
        if m.get("type") not in ("S",):
            parts.append(brief(m))
    if run:
        parts.append(f"{run}×w")
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(parts) - limit} more)"]
    return ", ".join(parts)


class Probe:
    """Runs ``walsim-probe`` scripts against a target."""

    def __init__(self, target: Target, binary: Path | None = None) -> None:
        self.target = target
        self.binary = binary or program("walsim-probe")
        if not self.binary.exists():
            raise ConformError(f"{self.binary} is missing: run make first")
        self.runs = 0

    def argv(self) -> list[str]:
        argv = [str(self.binary), "--host", self.target.host, "--port", str(self.target.port),
                "--user", self.target.user]
        if self.target.passfile:
            argv += ["--passfile", self.target.passfile]
        return argv

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.target.password:
            env["PGPASSWORD"] = self.target.password
        return env

    def run(self, script: str, timeout: float = 60) -> Transcript:
        self.runs += 1
        try:
            proc = subprocess.run(self.argv(), input=script, capture_output=True, text=True,
                                  env=self.env(), timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise ConformError(f"walsim-probe did not finish within {scaled(timeout):.0f} s; "
                               f"script:\n{script}") from None
        if proc.returncode == 2:
            raise ConformError(f"walsim-probe refused its input: {proc.stderr.strip()}")
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        t = Transcript(lines, script, proc.stderr)
        if t.events("connect_failed"):
            raise ConformError(f"cannot connect to {self.target}: "
                               f"{t.events('connect_failed')[0].get('detail')} (the target is not reachable: "
                               "check host and port; nothing was checked)")
        return t

    def start(self, script: str) -> subprocess.Popen[str]:
        """Run a script in the background (the caller acts meanwhile); read with finish()."""
        self.runs += 1
        proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())
        assert proc.stdin is not None
        proc.stdin.write(script)    # the probe reads the whole script before it connects
        proc.stdin.close()
        proc.stdin = None
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen[str], script: str, timeout: float = 60) -> Transcript:
        try:
            out, err = proc.communicate(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise ConformError("walsim-probe did not finish") from None
        return Transcript([json.loads(x) for x in out.splitlines() if x.strip()], script, err)
