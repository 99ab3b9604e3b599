/*
 * options.c — command-line parsing of walsim-sender (see options.h).
 *
 * Values are checked here (numbers, durations, kinds); what needs the file
 * system (the password file, the WAL directory, the event log) is opened
 * by main.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "walsim/parse.h"
#include "options.h"
#include "sender.h"

#define PROGNAME "walsim-sender"

#define MAX_POLL_INTERVAL_MS	10000

enum
{
	OPT_AUTH = 256,
	OPT_PASSFILE,
	OPT_WAL_SENDER_TIMEOUT,
	OPT_FOLLOW,
	OPT_NO_FOLLOW,
	OPT_SYSTEM_ID,
	OPT_JSON_EVENTS,
	OPT_MISBEHAVE,
	OPT_POLL_INTERVAL,
	OPT_SLOTS_FILE,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_STARTUP_CONNECTIONS,
	OPT_AUTHENTICATION_TIMEOUT
};

/* --authentication-timeout: PostgreSQL's authentication_timeout (1s..600s, bare seconds) */
static const DurationSyntax authentication_timeout_syntax = {
	.units = "ms,s,min", .bare = TIME_S, .result = TIME_MS, .max = 600000
};

/* --wal-sender-timeout: PostgreSQL's units of a GUC_UNIT_MS setting, a day at most */
static const DurationSyntax wal_sender_timeout_syntax = {
	.units = "ms,s,min", .bare = TIME_MS, .result = TIME_MS, .max = 24 * 3600 * 1000
};

static const struct
{
	const char *name;
	Misbehave	bit;
}			misbehave_kinds[] =
{
	{"wrong-sysid", MIS_WRONG_SYSID},
	{"lower-timeline", MIS_LOWER_TIMELINE},
	{"wrong-history-name", MIS_WRONG_HISTORY_NAME},
	{"no-keepalive", MIS_NO_KEEPALIVE},
	{"no-copydone", MIS_NO_COPYDONE},
	{"single-commandcomplete", MIS_SINGLE_COMMANDCOMPLETE},
	{"gap", MIS_GAP},
	{"unflushed", MIS_UNFLUSHED},
	{"short-keepalive", MIS_SHORT_KEEPALIVE},
	{"bitflip", MIS_BITFLIP},
	{"take-back", MIS_TAKE_BACK},
};

#define N_MISBEHAVE (sizeof(misbehave_kinds) / sizeof(misbehave_kinds[0]))

bool
misbehave_parse(const char *text, unsigned *mask, WalsimError *err)
{
	const char *p = text;

	*mask = 0;
	while (*p)
	{
		size_t		len = strcspn(p, ",");
		size_t		i;

		for (i = 0; i < N_MISBEHAVE; i++)
			if (strlen(misbehave_kinds[i].name) == len && strncmp(p, misbehave_kinds[i].name, len) == 0)
				break;
		if (i == N_MISBEHAVE)
			return walsim_error_set(err, "--misbehave: unknown kind \"%.*s\" at offset %zu",
									(int) len, p, (size_t) (p - text));
		*mask |= misbehave_kinds[i].bit;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

void
misbehave_format(unsigned mask, char *buf, size_t buflen)
{
	size_t		pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_MISBEHAVE; i++)
		if ((mask & misbehave_kinds[i].bit) && pos < buflen)
			pos += (size_t) snprintf(buf + pos, buflen - pos, "%s%s", pos ? "," : "", misbehave_kinds[i].name);
}

void
sender_options_usage(FILE *f)
{
	fprintf(f,
			"Usage: " PROGNAME " -D WALDIR --listen HOST:PORT [OPTION]...\n"
			"Serve the WAL segments in WALDIR to PostgreSQL 15 standbys and pg_receivewal.\n\n"
			"  -D, --directory=WALDIR       segment files (and history files) to serve\n"
			"  -l, --listen=HOST:PORT       address to listen on (loopback in tests)\n"
			"      --auth=METHOD            trust, password, md5 or scram-sha-256 (default)\n"
			"      --passfile=FILE          accepted role:password lines (or .pgpass lines)\n"
			"      --password-file=FILE     same as --passfile\n"
			"      --wal-sender-timeout=T   close silent clients after T (default 60s; 0 = off;\n"
			"                               units ms, s, min; a bare number is milliseconds)\n"
			"      --follow                 serve WAL as the files grow (default)\n"
			"      --no-follow              serve only what is valid at startup\n"
			"      --poll-interval=MS       follow mode: how often to look for new WAL (default 10)\n"
			"      --system-id=N            report N instead of the segments' system identifier\n"
			"      --slots-file=FILE        physical slot state (default WALDIR/walsim-sender.slots)\n"
			"      --max-connections=N      authenticated replication connections at once;\n"
			"                               more are refused with FATAL 53300 (default 100)\n"
			"      --max-startup-connections=N\n"
			"                               connections not yet authenticated at once; more\n"
			"                               are closed at accept (default 64)\n"
			"      --authentication-timeout=T  time from connect to authenticated (default 60s;\n"
			"                               1s to 10min; a bare number is seconds)\n"
			"      --json-events=FILE       append one JSON object per event to FILE\n"
			"      --misbehave=KIND[,KIND]  deliberate protocol faults (see docs/sender.md):\n"
			"                               wrong-sysid, lower-timeline, wrong-history-name,\n"
			"                               no-keepalive, no-copydone, single-commandcomplete,\n"
			"                               gap, unflushed, short-keepalive, bitflip, take-back\n"
			"  -h, --help                   show this help\n");
}

static void
set_defaults(SenderOptions *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->auth_method = AUTH_SCRAM;
	opt->wal_sender_timeout_ms = DEFAULT_WAL_SENDER_TIMEOUT_MS;
	opt->follow = true;
	opt->poll_interval_ms = DEFAULT_POLL_INTERVAL_MS;
	opt->max_connections = DEFAULT_MAX_CONNECTIONS;
	opt->max_startup_connections = DEFAULT_MAX_STARTUP_CONNECTIONS;
	opt->authentication_timeout_ms = DEFAULT_AUTHENTICATION_TIMEOUT_MS;
}

/* One option with its argument; false with err set when the value is bad. */
static bool
take_option(int c, const char *arg, SenderOptions *opt, WalsimError *err)
{
	uint64_t	ms;

	switch (c)
	{
		case 'D':
			opt->waldir = arg;
			return true;
		case 'l':
			opt->listen = arg;
			return true;
		case OPT_AUTH:
			return auth_method_parse(arg, &opt->auth_method, err);
		case OPT_PASSFILE:
			opt->passfile = arg;
			return true;
		case OPT_WAL_SENDER_TIMEOUT:
			if (!parse_duration("--wal-sender-timeout", arg, &wal_sender_timeout_syntax, &ms, err))
				return false;
			opt->wal_sender_timeout_ms = (int) ms;
			return true;
		case OPT_FOLLOW:
		case OPT_NO_FOLLOW:
			opt->follow = c == OPT_FOLLOW;
			return true;
		case OPT_SYSTEM_ID:
			opt->sysid_override_set = true;
			return parse_u64("--system-id", arg, 0, UINT64_MAX, &opt->sysid_override, err);
		case OPT_JSON_EVENTS:
			opt->json_events = arg;
			return true;
		case OPT_MISBEHAVE:
			return misbehave_parse(arg, &opt->misbehave, err);
		case OPT_POLL_INTERVAL:
			return parse_i32("--poll-interval", arg, 1, MAX_POLL_INTERVAL_MS,
							 &opt->poll_interval_ms, err);
		case OPT_SLOTS_FILE:
			opt->slots_file = arg;
			return true;
		case OPT_MAX_CONNECTIONS:
			return parse_i32("--max-connections", arg, 1, SENDER_MAX_CONNECTIONS,
							 &opt->max_connections, err);
		case OPT_MAX_STARTUP_CONNECTIONS:
			return parse_i32("--max-startup-connections", arg, 1, SENDER_MAX_CONNECTIONS,
							 &opt->max_startup_connections, err);
		case OPT_AUTHENTICATION_TIMEOUT:
			if (!parse_duration("--authentication-timeout", arg, &authentication_timeout_syntax, &ms, err))
				return false;
			if (ms < 1000)
				return walsim_error_set(err, "--authentication-timeout %s: at least 1s", arg);
			opt->authentication_timeout_ms = (int) ms;
			return true;
	}
	return walsim_error_set(err, "internal error: option %d", c);
}

/* What is wrong with the command line as a whole (err), or true. */
static bool
check_combination(int argc, char **argv, const SenderOptions *opt, WalsimError *err)
{
	if (optind < argc)
		return walsim_error_set(err, "unexpected argument \"%s\"", argv[optind]);
	if (opt->waldir == NULL || opt->listen == NULL)
		return walsim_error_set(err, "-D WALDIR and --listen HOST:PORT are required");
	if (opt->passfile == NULL && opt->auth_method != AUTH_TRUST)
		return walsim_error_set(err, "--auth %s needs --passfile FILE with the accepted role:password",
								auth_method_name(opt->auth_method));
	return true;
}

OptionsResult
sender_options_parse(int argc, char **argv, SenderOptions *opt, WalsimError *err)
{
	static const struct option long_options[] = {
		{"directory", required_argument, NULL, 'D'},
		{"listen", required_argument, NULL, 'l'},
		{"auth", required_argument, NULL, OPT_AUTH},
		{"passfile", required_argument, NULL, OPT_PASSFILE},
		{"password-file", required_argument, NULL, OPT_PASSFILE},
		{"wal-sender-timeout", required_argument, NULL, OPT_WAL_SENDER_TIMEOUT},
		{"follow", no_argument, NULL, OPT_FOLLOW},
		{"no-follow", no_argument, NULL, OPT_NO_FOLLOW},
		{"system-id", required_argument, NULL, OPT_SYSTEM_ID},
		{"json-events", required_argument, NULL, OPT_JSON_EVENTS},
		{"misbehave", required_argument, NULL, OPT_MISBEHAVE},
		{"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
		{"slots-file", required_argument, NULL, OPT_SLOTS_FILE},
		{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
		{"max-startup-connections", required_argument, NULL, OPT_MAX_STARTUP_CONNECTIONS},
		{"authentication-timeout", required_argument, NULL, OPT_AUTHENTICATION_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	set_defaults(opt);
	optind = 1;
	while ((c = getopt_long(argc, argv, "D:l:h", long_options, NULL)) != -1)
	{
		if (c == 'h')
		{
			sender_options_usage(stdout);
			return OPTIONS_EXIT_OK;
		}
		if (c == '?')
			return OPTIONS_USAGE;	/* getopt said what is wrong */
		if (!take_option(c, optarg, opt, err))
			return OPTIONS_ERROR;
	}
	if (!check_combination(argc, argv, opt, err))
		return OPTIONS_ERROR;
	return OPTIONS_OK;
}
