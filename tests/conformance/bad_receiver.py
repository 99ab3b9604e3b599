#!/usr/bin/python3
"""A deliberately broken receiver for the negative receiver test:
``bad_receiver.py CONNINFO DIR`` starts streaming at an LSN that is not a
segment start and never answers keepalives (run through walsim-probe),
then exits after 5 seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from walsim.conform.probe import Target  # noqa: E402
from walsim.core.paths import program  # noqa: E402


def main() -> int:
    target = Target.from_conninfo(sys.argv[1])
    script = ("startup application_name=bad_receiver\nquery IDENTIFY_SYSTEM\nwait Z 5000\n"
              "query START_REPLICATION 0/B00100 TIMELINE 2\nwait W,E 5000\nread 5000\nclose\n")
    argv = [str(program("walsim-probe")), "--host", target.host, "--port",
            str(target.port), "--user", target.user]
    if target.passfile:
        argv += ["--passfile", target.passfile]
    return subprocess.run(argv, input=script, text=True, stdout=subprocess.DEVNULL,
                          env=dict(os.environ)).returncode


if __name__ == "__main__":
    sys.exit(main())
