/*
 * basebackup.h — walsim-receiver --base-backup: a data directory over the
 * replication protocol, as `pg_basebackup -D DIR -X fetch [-R]` makes it.
 *
 * One BASE_BACKUP command in the syntax and result format of the server's
 * major version (src/backend/backup/basebackup.c, src/bin/pg_basebackup/
 * pg_basebackup.c of each):
 *
 *   13, 14   BASE_BACKUP LABEL '...' [FAST] WAL NOWAIT MANIFEST 'yes'
 *            result set (start LSN, timeline); result set (tablespaces:
 *            spcoid, spclocation, size); one COPY OUT stream per
 *            tablespace carrying a tar archive (the data directory last);
 *            one more COPY OUT carrying backup_manifest; result set (end
 *            LSN, timeline); CommandComplete.
 *   15+      BASE_BACKUP (LABEL '...', CHECKPOINT 'fast'|'spread', WAL true,
 *            WAIT false, MANIFEST 'yes')
 *            the same two result sets; ONE COPY OUT stream whose CopyData
 *            messages are typed: 'n' new archive (name, tablespace path),
 *            'd' archive bytes, 'p' progress (int64), 'm' the manifest
 *            follows (then 'd' carries the manifest); result set (end LSN,
 *            timeline); CommandComplete.
 *
 * The WAL from the start to the end of the backup comes inside the data
 * directory's archive (WAL = "fetch": no second connection), so the server
 * must keep it until the backup ends (wal_keep_size or a slot).  After the
 * archive is unpacked, the WAL in DIR/pg_wal is read with the record
 * verifier from the backup's start to its end: a backup whose WAL does not
 * reach the end position is an error.  With -R, standby.signal and
 * primary_conninfo (and primary_slot_name with -S) in postgresql.auto.conf,
 * as pg_basebackup -R writes them.  Only the data directory is supported:
 * a server with other tablespaces is refused before anything is written.
 */
#ifndef WALSIM_RECEIVER_BASEBACKUP_H
#define WALSIM_RECEIVER_BASEBACKUP_H

#include <stdbool.h>

#include "walsim/error.h"
#include "receiver.h"

/* Take the base backup into r->opt->directory (which must be empty or absent). */
bool		basebackup_run(Receiver *r, WalsimError *err);

/*
 * The BASE_BACKUP command text for a server of major (13..18) into buf;
 * false when major is not supported.
 */
bool		basebackup_command(int major, const char *label, bool fast,
							   char *buf, size_t size);

/*
 * The primary_conninfo value pg_basebackup -R derives from the connection's
 * options (every option with a value except dbname, replication,
 * fallback_application_name and password, and except those at libpq's
 * compiled-in default), each value single-quoted with backslash escapes,
 * into buf; false if it does not fit.
 */
bool		basebackup_conninfo(PGconn *conn, char *buf, size_t size);

#endif							/* WALSIM_RECEIVER_BASEBACKUP_H */
