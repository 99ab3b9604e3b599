"""Starting a program as a terminal's foreground job would have it, so that
a test of what Ctrl-C (SIGINT) does sends it to a program that can hear it."""

from __future__ import annotations

import signal


def sigint_default() -> None:
    """``preexec_fn``: SIGINT back to its default action in the child.

    A program started from a background job of a non-interactive shell
    inherits SIGINT *ignored* (bash does that to ``cmd &``: ``make test &``
    in a script is enough), and an ignored SIGINT stays ignored across exec:
    Python then installs no KeyboardInterrupt handler and the test's SIGINT
    does nothing (seen as two tests timing out under ``make test &``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
