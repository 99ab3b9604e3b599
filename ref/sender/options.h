/*
 * options.h — command line of walsim-sender (docs/sender.md).
 */
#ifndef WALSIM_SENDER_OPTIONS_H
#define WALSIM_SENDER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "walsim/error.h"
#include "auth.h"

/* --max-connections and --max-startup-connections are at most this. */
#define SENDER_MAX_CONNECTIONS		1024

#define DEFAULT_WAL_SENDER_TIMEOUT_MS	60000
#define DEFAULT_POLL_INTERVAL_MS		10
#define DEFAULT_MAX_CONNECTIONS			100
#define DEFAULT_MAX_STARTUP_CONNECTIONS	64
#define DEFAULT_AUTHENTICATION_TIMEOUT_MS	60000	/* PostgreSQL's authentication_timeout */

typedef enum OptionsResult
{
	OPTIONS_OK,					/* run */
	OPTIONS_EXIT_OK,			/* --help was printed */
	OPTIONS_USAGE,				/* getopt printed what is wrong; exit 2 */
	OPTIONS_ERROR				/* message in err; exit 2 */
} OptionsResult;

typedef struct SenderOptions
{
	const char *waldir;			/* -D (required) */
	const char *listen;			/* --listen HOST:PORT (required) */
	AuthMethod	auth_method;	/* --auth (default scram-sha-256) */
	const char *passfile;		/* --passfile / --password-file */
	int			wal_sender_timeout_ms;	/* 0: off */
	bool		follow;			/* --follow (default) / --no-follow */
	int			poll_interval_ms;
	bool		sysid_override_set; /* --system-id given */
	uint64_t	sysid_override;
	const char *slots_file;		/* NULL: WALDIR/walsim-sender.slots */
	int			max_connections;
	int			max_startup_connections;	/* not yet authenticated, at once */
	int			authentication_timeout_ms;
	const char *json_events;	/* --json-events FILE */
	unsigned	misbehave;		/* Misbehave bits (sender.h) */
} SenderOptions;

/*
 * Parse argv into *opt (defaults first).  Prints --help to stdout itself;
 * every other problem is reported in err (or by getopt) for the caller.
 */
OptionsResult sender_options_parse(int argc, char **argv, SenderOptions *opt,
								   WalsimError *err);
void		sender_options_usage(FILE *f);

/* --misbehave KIND[,KIND] into a mask of Misbehave bits. */
bool		misbehave_parse(const char *text, unsigned *mask, WalsimError *err);
/* "wrong-sysid,gap" for a mask (into buf of buflen). */
void		misbehave_format(unsigned mask, char *buf, size_t buflen);

#endif							/* WALSIM_SENDER_OPTIONS_H */
