/*
 * sender.h — configuration shared by walsim-sender's listener and its
 * connection processes, and the misbehaviour switches.
 */
#ifndef WALSIM_SENDER_SENDER_H
#define WALSIM_SENDER_SENDER_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "walsim/events.h"
#include "walsim/wire.h"
#include "auth.h"
#include "walsource.h"

/*
 * What the sender reports as its server version (SHOW server_version,
 * ParameterStatus): the major of the WAL it serves, "17.0 (walsim-sender)"
 * and 170000, so that clients pick that major's behaviour (a standby of the
 * same major, pg_receivewal's version check).
 */
#define SENDER_SERVER_VERSION_FMT	"%d.0 (walsim-sender)"
#define SENDER_SERVER_VERSION_NUM_FMT	"%d0000"

/*
 * The newest protocol minor version of a major: 3.2 from PostgreSQL 18
 * (PG_PROTOCOL_LATEST in src/include/libpq/pqcomm.h), 3.0 before.
 */
#define SENDER_PROTOCOL_MINOR(major)	((major) >= 18 ? 2 : 0)
/* The secret key length of BackendKeyData: 32 bytes in 3.2 (18), 4 in 3.0. */
#define SENDER_CANCEL_KEY_LEN(protocol)	(WIRE_PROTOCOL_MINOR(protocol) >= 2 ? 32 : 4)

/* Deliberate protocol faults (--misbehave KIND[,KIND], options.h); see docs/sender.md. */
typedef enum Misbehave
{
	MIS_WRONG_SYSID = 1 << 0,	/* IDENTIFY_SYSTEM reports another system id */
	MIS_LOWER_TIMELINE = 1 << 1,	/* IDENTIFY_SYSTEM timeline one lower */
	MIS_WRONG_HISTORY_NAME = 1 << 2,	/* TIMELINE_HISTORY names the next TLI's file */
	MIS_NO_KEEPALIVE = 1 << 3,	/* never send 'k', not even answers to pings */
	MIS_NO_COPYDONE = 1 << 4,	/* end of timeline without CopyDone */
	MIS_SINGLE_COMMANDCOMPLETE = 1 << 5,	/* end of timeline with one C, not two */
	MIS_GAP = 1 << 6,			/* skip one page after the first XLogData */
	MIS_UNFLUSHED = 1 << 7,		/* serve file bytes past the end of valid WAL */
	MIS_SHORT_KEEPALIVE = 1 << 8,	/* 'k' of 17 bytes instead of 18 */
	MIS_BITFLIP = 1 << 9,		/* flip one bit in the first XLogData */
	MIS_TAKE_BACK = 1 << 10		/* from the 2nd connection on, xlogpos goes back */
} Misbehave;

/*
 * What the listener and its connection processes share, mapped MAP_SHARED
 * before the first fork.  Only authenticated replication connections count
 * against --max-connections, as walsenders count against max_wal_senders:
 * a connection process takes a place once authenticated (authenticated <
 * max_connections, or FATAL 53300), the listener gives it back when it
 * reaps the process.  Connections that have not authenticated yet are
 * bounded separately (--max-startup-connections) and by
 * --authentication-timeout, so clients that never finish their startup
 * cannot keep real standbys out.
 */
/* Connection processes the listener tracks: --max-connections + --max-startup-connections at most. */
#define SENDER_MAX_PLACES			2048

typedef struct SenderShared
{
	_Atomic int authenticated;
	_Atomic unsigned char authed[SENDER_MAX_PLACES];	/* by place (main.c's Children) */
} SenderShared;

typedef struct SenderConfig
{
	const char *waldir;
	char		slots_file[PATH_MAX];
	AuthConfig	auth;
	int			wal_sender_timeout_ms;	/* 0: off */
	bool		follow;
	int			poll_interval_ms;	/* follow mode: how often to look for WAL */
	bool		sysid_override_set;
	uint64_t	sysid_override;
	unsigned	misbehave;
	int			max_connections;
	int			max_startup_connections;
	int			authentication_timeout_ms;
	SenderShared *shared;		/* NULL in unit tests: no limit */
	EventLog	events;			/* --json-events (docs/events.md) */
} SenderConfig;

#endif							/* WALSIM_SENDER_SENDER_H */
