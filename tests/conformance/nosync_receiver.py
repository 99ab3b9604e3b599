#!/usr/bin/python3
"""``nosync_receiver.py PG_RECEIVEWAL ARGS...``: pg_receivewal with
``--no-sync`` hidden from the suite, so that R08 must find the missing
fsyncs in the trace (the negative test of R08)."""

import os
import sys

os.execv(sys.argv[1], [sys.argv[1], *sys.argv[2:], "--no-sync"])
