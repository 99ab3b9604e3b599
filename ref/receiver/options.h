/*
 * options.h — command line of walsim-receiver.
 *
 * The options pg_receivewal 15 has keep its names and meaning; the walsim
 * additions (--verify, --start, --json-events, ...) are documented in
 * docs/receiver.md.
 */
#ifndef WALSIM_RECEIVER_OPTIONS_H
#define WALSIM_RECEIVER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

#define DEFAULT_CONNECT_TIMEOUT_S 10

typedef enum VerifyAction
{
	VERIFY_ACTION_RESTREAM,		/* disconnect, re-stream from the segment start */
	VERIFY_ACTION_STOP			/* exit non-zero */
} VerifyAction;

typedef enum OptionsResult
{
	OPTIONS_OK,					/* run */
	OPTIONS_EXIT_OK,			/* --help or --version was printed */
	OPTIONS_ERROR				/* message in err; exit 2 */
} OptionsResult;

typedef struct ReceiverOptions
{
	const char *connstr;		/* -d: connection string (may be NULL) */
	const char *host;			/* -h */
	const char *port;			/* -p */
	const char *user;			/* -U */
	const char *directory;		/* -D (required) */
	const char *slot;			/* -S */
	bool		create_slot;	/* --create-slot: create and exit */
	bool		drop_slot;		/* --drop-slot: drop and exit */
	bool		if_not_exists;	/* --if-not-exists with --create-slot */
	bool		synchronous;	/* --synchronous: fsync and report flush at once */
	bool		do_sync;		/* false with --no-sync */
	uint64_t	endpos;			/* -E; 0 = none */
	bool		no_loop;		/* -n */
	int			status_interval_ms; /* -s seconds, as milliseconds; 0 = off */
	int			verbose;		/* -v, repeatable */
	bool		verify;			/* --verify (default) / --no-verify */
	VerifyAction verify_action; /* --verify-action=restream|stop */
	bool		have_start;		/* --start given */
	uint64_t	start;			/* --start LSN */
	const char *json_events;	/* --json-events FILE */
	int			reconnect_ms;	/* --reconnect-interval seconds (default 5) */
	int			connect_timeout_ms; /* --connect-timeout seconds (default 10) */
	bool		base_backup;	/* --base-backup: take a base backup into -D */
	bool		write_recovery_conf;	/* -R with --base-backup */
	bool		fast_checkpoint;	/* -c fast (default spread, as pg_basebackup) */
	const char *label;			/* -l with --base-backup */
} ReceiverOptions;

/*
 * Parse argv into *opt (defaults first).  Prints --help/--version to
 * stdout itself; every problem is reported in err for the caller to print.
 */
OptionsResult receiver_options_parse(int argc, char **argv, ReceiverOptions *opt,
									 WalsimError *err);

#endif							/* WALSIM_RECEIVER_OPTIONS_H */
