"""Helpers of the conformance suite: walsim-sender on the prepared WAL data set."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from walsim.conform.probe import Target
from walsim.conform.receiver import prepare_waldir
from walsim.core.timeouts import scaled

PASSWORD = "conform-pw"
# Where the timeline-2 segment is cut for the live-append check (S22): the
# served directory first holds WAL only up to here, the generator then
# writes the rest of the real bytes into the file.
APPEND_CUT = 0x20000


class Sender:
    """A walsim-sender process on a prepared directory."""

    def __init__(self, binary: Path, waldir: Path, port: int, passfile: Path, log: Path,
                 args: tuple[str, ...]) -> None:
        self.waldir = waldir
        self.port = port
        self.log = log
        self.passfile = passfile
        argv = [str(binary), "-D", str(waldir), "--listen", f"127.0.0.1:{port}",
                "--passfile", str(passfile), "--wal-sender-timeout", "4s", *args]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + scaled(30)
        while "listening on" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"walsim-sender did not start: {log.read_text(errors='replace')}")
            time.sleep(0.02)

    def target(self) -> Target:
        return Target("127.0.0.1", self.port, "rep", str(self.passfile))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(30))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def served_dir(dest: Path, cut: bool = False) -> tuple[Path, Callable[[], None]]:
    """The data set as walsim-sender serves it; with cut=True the timeline-2
    segment ends early and the returned callable appends the rest."""
    waldir = prepare_waldir(dest)
    seg = waldir / "00000002000000000000000B"
    full = seg.read_bytes()

    def append() -> None:
        with open(seg, "r+b") as f:
            f.seek(APPEND_CUT)
            f.write(full[APPEND_CUT:])

    if cut:
        seg.write_bytes(full[:APPEND_CUT] + bytes(len(full) - APPEND_CUT))
    return waldir, append


