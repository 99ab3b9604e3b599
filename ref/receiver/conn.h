/*
 * conn.h — the replication commands walsim-receiver sends over libpq, with
 * the checks pg_receivewal 15 makes on each answer (streamutil.c,
 * receivelog.c).  Every function fails with a message naming the command
 * and what was wrong with the answer.
 */
#ifndef WALSIM_RECEIVER_CONN_H
#define WALSIM_RECEIVER_CONN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "walsim/error.h"
#include "options.h"

#define SYSID_TEXT_MAX 32

/*
 * Connect in physical replication mode (replication=true, dbname=replication),
 * giving up after the connect timeout or as soon as stop_fd is readable /
 * *stop is set (a SIGTERM during a connection attempt that hangs).
 */
PGconn	   *rcv_connect(const ReceiverOptions *opt, int stop_fd, volatile sig_atomic_t *stop,
						WalsimError *err);

/*
 * pg_receivewal's GetConnection() checks: integer_datetimes must be "on";
 * on servers >= 11 SHOW data_directory_mode gives the mode of the files we
 * create (*file_mode: 0600 or 0640).
 */
bool		rcv_check_server(PGconn *conn, mode_t *file_mode, WalsimError *err);

/* The server's major version must be 9.3 .. 18 (CheckServerVersionForStreaming). */
bool		rcv_check_version(PGconn *conn, WalsimError *err);

typedef struct SystemIdentity
{
	char		sysid[SYSID_TEXT_MAX];	/* decimal, as the server sends it */
	uint64_t	sysid_value;
	uint32_t	tli;
	uint64_t	xlogpos;
	bool		dbname_null;
} SystemIdentity;

/* IDENTIFY_SYSTEM: one row, at least 3 columns, parsable sysid/timeline/xlogpos. */
bool		rcv_identify_system(PGconn *conn, SystemIdentity *id, WalsimError *err);

/* SHOW wal_segment_size, parsed with its unit and validated. */
bool		rcv_show_segment_size(PGconn *conn, uint32_t *segsize, WalsimError *err);

/*
 * READ_REPLICATION_SLOT: *exists false for an unknown slot is an error (as in
 * pg_receivewal); *has_lsn false when the slot has no restart_lsn yet.
 */
bool		rcv_read_slot(PGconn *conn, const char *slot, bool *has_lsn,
						  uint64_t *restart_lsn, uint32_t *restart_tli,
						  WalsimError *err);

bool		rcv_create_slot(PGconn *conn, const char *slot, bool if_not_exists,
							WalsimError *err);
bool		rcv_drop_slot(PGconn *conn, const char *slot, WalsimError *err);

/*
 * TIMELINE_HISTORY tli: the file name must be %08X.history of tli; returns
 * the content (malloc'd, exact bytes, *len of them).
 */
bool		rcv_timeline_history(PGconn *conn, uint32_t tli, char **content,
								 size_t *len, WalsimError *err);

/* "... : <server message>" from the connection, without the trailing newline. */
const char *rcv_conn_message(PGconn *conn, char *buf, size_t len);

#endif							/* WALSIM_RECEIVER_CONN_H */
