"""What the conformance checks expect of each PostgreSQL major.

A check that fails against PostgreSQL itself is a wrong check, so where the
majors differ the expectation is keyed by the major, here, with the source
that defines it.  Every difference was seen on the real servers (13.23,
14.23, 15.20, 16.14, 17.10, 18.4) by ``tests/conformance/test_conform_sender.py``
(``test_postgres_baseline`` with ``WALSIM_PG=N``).  docs/conformance.md has the
table of versions × checks.
"""

from __future__ import annotations

from walsim.core.pgmajors import SUPPORTED

OID_BYTEA = 17
OID_INT8 = 20
OID_INT4 = 23
OID_TEXT = 25

#: (check, what differs, per major, source): the table docs/conformance.md shows
DIFFERENCES: list[tuple[str, str, str, str]] = [
    ("S03", "server_version is the target's major", "13 … 18",
     "guc.c server_version (GUC_REPORT)"),
    ("S05", "IDENTIFY_SYSTEM timeline column type", "int4 (13-15), int8 (16+)",
     "walsender.c IdentifySystem: INT8OID from 16"),
    ("S09", "TIMELINE_HISTORY content column type", "bytea (13), text (14+)",
     "walsender.c SendTimeLineHistory: TEXTOID from 14"),
    ("S36", "READ_REPLICATION_SLOT exists", "no (13, 14: SKIPPED), yes (15+)",
     "repl_gram.y of 15 (READ_REPLICATION_SLOT added)"),
    ("S35", "a pg_receivewal of a major that streams from the target", "Debian's 15 for 13-15",
     "pg_receivewal: 'client does not support streaming from server versions newer than'"),
]


def identify_timeline_oid(major: int) -> int:
    """Type of IDENTIFY_SYSTEM's timeline column: int8 from 16 (TimeLineID is
    uint32, which int4 cannot hold), int4 before."""
    return OID_INT8 if major >= 16 else OID_INT4


def history_content_oid(major: int) -> int:
    """Type of TIMELINE_HISTORY's content column: bytea in 13, text from 14
    (the bytes are the file's either way)."""
    return OID_TEXT if major >= 14 else OID_BYTEA


def has_read_replication_slot(major: int) -> bool:
    """READ_REPLICATION_SLOT was added in 15 (pg_receivewal -S uses it from 15 on)."""
    return major >= 15


def supported(major: int) -> bool:
    return major in SUPPORTED
