/*
 * receiver.h — the state of walsim-receiver shared by main.c and stream.c.
 *
 * Names follow receivelog.c where the concept is the same: blockpos is the
 * position after the last byte received and written, lastFlushPosition is
 * here `flushed`, still_sending is false once we have sent CopyDone.
 */
#ifndef WALSIM_RECEIVER_RECEIVER_H
#define WALSIM_RECEIVER_RECEIVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "walsim/events.h"
#include "walsim/pgtime.h"
#include "conn.h"
#include "options.h"
#include "verify.h"
#include "walfiles.h"

typedef struct Receiver
{
	const ReceiverOptions *opt;

	/* set once per run */
	int			dirfd;			/* the -D directory */
	mode_t		file_mode;		/* 0600 or 0640, from data_directory_mode */
	uint32_t	segsize;
	int			server_major;
	SystemIdentity identity;	/* the first IDENTIFY_SYSTEM; later ones must match */
	bool		have_identity;
	EventLog	events;			/* --json-events (docs/events.md) */
	int			stop_fd;		/* readable once SIGINT/SIGTERM arrived */
	volatile sig_atomic_t *stop_requested;

	/* per connection / per timeline */
	PGconn	   *conn;
	uint32_t	tli;
	uint64_t	blockpos;		/* next byte expected; all before it written */
	uint64_t	flushed;		/* all before it fsynced (lastFlushPosition) */
	bool		report_flush;	/* with a slot or --synchronous */
	bool		still_sending;	/* false once we sent CopyDone */
	SegmentFile seg;			/* the open NAME.partial, if any */
	bool		have_pending;	/* complete segments waiting for verification */
	uint64_t	pending_first;	/* ... segments [pending_first, pending_end) */
	uint64_t	pending_end;
	StreamVerifier verifier;
	PgTimestamp last_status;	/* when the last 'r' was sent (0: never) */
	uint64_t	reported_flush; /* last flush position sent (monotonic) */
	uint64_t	reported_write;
} Receiver;

/* Why streaming on one connection ended. */
typedef enum StreamResult
{
	STREAM_DONE,				/* clean stop at --endpos or on a signal: exit 0 */
	STREAM_RETRY,				/* error or lost connection: reconnect or exit 1 */
	STREAM_VERIFY_FAILED,		/* a record failed verification (see verifier) */
	STREAM_FATAL				/* cannot go on (e.g. another system): exit 1 */
} StreamResult;

/*
 * ReceiveXlogStream(): check the system again, then stream from startpos on
 * tli and on every later timeline the server switches to, until a stop, an
 * error or a verification failure.  err says why for everything but DONE.
 */
StreamResult stream_timelines(Receiver *r, uint64_t startpos, uint32_t tli,
							  WalsimError *err);

/* Has a stop been requested (signal or --endpos reached at pos)? */
bool		receiver_should_stop(const Receiver *r, uint64_t pos);

/* Print a message prefixed with the program name (stderr). */
void		receiver_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

#endif							/* WALSIM_RECEIVER_RECEIVER_H */
