/*
 * options.c — command-line parsing of walsim-receiver (see options.h).
 *
 * Checks follow pg_receivewal.c: a directory is required unless only a slot
 * is created or dropped, --synchronous and --no-sync exclude each other,
 * --create-slot and --drop-slot need a slot name.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/parse.h"
#include "options.h"

#define RECEIVER_VERSION "walsim-receiver (walsim) 0.1, speaks PostgreSQL 13 to 18 streaming replication and base backups"

#define MAX_STATUS_INTERVAL_S		(INT_MAX / 1000)	/* kept in milliseconds in an int */
#define MAX_RECONNECT_INTERVAL_S	3600

enum
{
	OPT_CREATE_SLOT = 256,
	OPT_DROP_SLOT,
	OPT_IF_NOT_EXISTS,
	OPT_SYNCHRONOUS,
	OPT_NO_SYNC,
	OPT_VERIFY,
	OPT_NO_VERIFY,
	OPT_VERIFY_ACTION,
	OPT_START,
	OPT_JSON_EVENTS,
	OPT_RECONNECT,
	OPT_CONNECT_TIMEOUT,
	OPT_BASE_BACKUP,
	OPT_HELP,
	OPT_VERSION
};

static void
print_help(void)
{
	printf("walsim-receiver receives PostgreSQL write-ahead logs like pg_receivewal\n"
		   "and verifies every WAL record as it arrives.\n\n"
		   "Usage:\n  walsim-receiver [OPTION]...\n\n"
		   "Options:\n"
		   "  -D, --directory=DIR    receive write-ahead log files into this directory\n"
		   "  -E, --endpos=LSN       exit after receiving the specified LSN\n"
		   "      --if-not-exists    do not error if slot already exists when creating a slot\n"
		   "  -n, --no-loop          do not loop on connection lost\n"
		   "      --no-sync          do not wait for changes to be written safely to disk\n"
		   "  -s, --status-interval=SECS\n"
		   "                         time between status packets sent to server (default: 10)\n"
		   "  -S, --slot=SLOTNAME    replication slot to use\n"
		   "      --synchronous      flush write-ahead log immediately after writing\n"
		   "  -v, --verbose          output verbose messages\n"
		   "  -V, --version          output version information, then exit\n"
		   "  -?, --help             show this help, then exit\n\n"
		   "Verification (walsim):\n"
		   "      --verify           check page headers, xl_prev and CRC of every record (default)\n"
		   "      --no-verify        do not verify (behave exactly like pg_receivewal)\n"
		   "      --verify-action=restream|stop\n"
		   "                         on a bad record re-stream from the segment start\n"
		   "                         (default) or exit with status 1\n"
		   "      --start=LSN        start streaming at this LSN's segment instead of\n"
		   "                         deriving the start from the directory or slot\n"
		   "      --json-events=FILE append one JSON line per event to FILE\n"
		   "      --reconnect-interval=SECS\n"
		   "                         wait before reconnecting (default: 5)\n"
		   "      --connect-timeout=SECS\n"
		   "                         give up a connection attempt after SECS (default: 10;\n"
		   "                         a connect_timeout in -d wins)\n\n"
		   "Base backup (walsim; a data directory as pg_basebackup -X fetch makes it):\n"
		   "      --base-backup      take a base backup of the server into -D (absent or empty)\n"
		   "  -R, --write-recovery-conf\n"
		   "                         write standby.signal and primary_conninfo (and\n"
		   "                         primary_slot_name with -S) for a standby\n"
		   "  -c, --checkpoint=fast|spread\n"
		   "                         set fast or spread (default) checkpointing\n"
		   "  -l, --label=LABEL      set the backup label\n\n"
		   "Connection options:\n"
		   "  -d, --dbname=CONNSTR   connection string\n"
		   "  -h, --host=HOSTNAME    database server host or socket directory\n"
		   "  -p, --port=PORT        database server port number\n"
		   "  -U, --username=NAME    connect as specified database user\n"
		   "  -w, --no-password      never prompt for password (always the case)\n\n"
		   "Optional actions:\n"
		   "      --create-slot      create a new replication slot (for the slot's name see --slot)\n"
		   "      --drop-slot        drop the replication slot (for the slot's name see --slot)\n");
}

/* -s and --reconnect-interval: whole seconds without a unit, as pg_receivewal */
static bool
parse_seconds(const char *what, const char *text, uint64_t max, int *ms, WalsimError *err)
{
	const DurationSyntax seconds = {.units = "", .bare = TIME_S, .result = TIME_S, .max = max};
	uint64_t	v;

	if (!parse_duration(what, text, &seconds, &v, err))
		return false;
	*ms = (int) (v * 1000);
	return true;
}

static void
set_defaults(ReceiverOptions *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->do_sync = true;
	opt->status_interval_ms = 10 * 1000;
	opt->verify = true;
	opt->verify_action = VERIFY_ACTION_RESTREAM;
	opt->reconnect_ms = 5 * 1000;
	opt->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_S * 1000;
}

static bool
check_combination(const ReceiverOptions *opt, WalsimError *err)
{
	if (opt->create_slot && opt->drop_slot)
		return walsim_error_set(err, "cannot use --create-slot together with --drop-slot");
	if ((opt->create_slot || opt->drop_slot) && opt->slot == NULL)
		return walsim_error_set(err, "%s needs a slot to be specified using --slot",
								opt->create_slot ? "--create-slot" : "--drop-slot");
	if (opt->drop_slot && (opt->synchronous || opt->endpos || opt->have_start))
		return walsim_error_set(err, "--drop-slot cannot be combined with streaming options");
	if (opt->directory == NULL && !opt->create_slot && !opt->drop_slot)
		return walsim_error_set(err, "no target directory specified (use -D DIR)");
	if (opt->synchronous && !opt->do_sync)
		return walsim_error_set(err, "cannot use --synchronous together with --no-sync");
	if (opt->if_not_exists && !opt->create_slot)
		return walsim_error_set(err, "--if-not-exists needs --create-slot");
	if (opt->base_backup && (opt->create_slot || opt->drop_slot || opt->synchronous ||
							 opt->endpos || opt->have_start))
		return walsim_error_set(err, "--base-backup cannot be combined with slot actions or streaming options");
	if (!opt->base_backup && (opt->write_recovery_conf || opt->label || opt->fast_checkpoint))
		return walsim_error_set(err, "-R, --checkpoint and --label need --base-backup");
	return true;
}

OptionsResult
receiver_options_parse(int argc, char **argv, ReceiverOptions *opt, WalsimError *err)
{
	static const struct option long_options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"no-password", no_argument, NULL, 'w'},
		{"directory", required_argument, NULL, 'D'},
		{"endpos", required_argument, NULL, 'E'},
		{"no-loop", no_argument, NULL, 'n'},
		{"status-interval", required_argument, NULL, 's'},
		{"slot", required_argument, NULL, 'S'},
		{"verbose", no_argument, NULL, 'v'},
		{"create-slot", no_argument, NULL, OPT_CREATE_SLOT},
		{"drop-slot", no_argument, NULL, OPT_DROP_SLOT},
		{"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
		{"synchronous", no_argument, NULL, OPT_SYNCHRONOUS},
		{"no-sync", no_argument, NULL, OPT_NO_SYNC},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"no-verify", no_argument, NULL, OPT_NO_VERIFY},
		{"verify-action", required_argument, NULL, OPT_VERIFY_ACTION},
		{"start", required_argument, NULL, OPT_START},
		{"json-events", required_argument, NULL, OPT_JSON_EVENTS},
		{"reconnect-interval", required_argument, NULL, OPT_RECONNECT},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"base-backup", no_argument, NULL, OPT_BASE_BACKUP},
		{"write-recovery-conf", no_argument, NULL, 'R'},
		{"checkpoint", required_argument, NULL, 'c'},
		{"label", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	int			c;
	WalsimError lsn_err;

	set_defaults(opt);
	optind = 1;
	opterr = 0;					/* we report unknown options ourselves */
	while ((c = getopt_long(argc, argv, ":d:h:p:U:wD:E:ns:S:vV?Rc:l:", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt->connstr = optarg;
				break;
			case 'h':
				opt->host = optarg;
				break;
			case 'p':
				opt->port = optarg;
				break;
			case 'U':
				opt->user = optarg;
				break;
			case 'w':
				break;
			case 'D':
				opt->directory = optarg;
				break;
			case 'E':
				if (!lsn_parse(optarg, &opt->endpos, &lsn_err))
				{
					walsim_error_set(err, "invalid --endpos: %s", lsn_err.message);
					return OPTIONS_ERROR;
				}
				break;
			case 'n':
				opt->no_loop = true;
				break;
			case 's':
				if (!parse_seconds("invalid status interval", optarg, MAX_STATUS_INTERVAL_S,
								   &opt->status_interval_ms, err))
					return OPTIONS_ERROR;
				break;
			case 'S':
				opt->slot = optarg;
				break;
			case 'v':
				opt->verbose++;
				break;
			case OPT_CREATE_SLOT:
				opt->create_slot = true;
				break;
			case OPT_DROP_SLOT:
				opt->drop_slot = true;
				break;
			case OPT_IF_NOT_EXISTS:
				opt->if_not_exists = true;
				break;
			case OPT_SYNCHRONOUS:
				opt->synchronous = true;
				break;
			case OPT_NO_SYNC:
				opt->do_sync = false;
				break;
			case OPT_VERIFY:
				opt->verify = true;
				break;
			case OPT_NO_VERIFY:
				opt->verify = false;
				break;
			case OPT_VERIFY_ACTION:
				if (strcmp(optarg, "restream") == 0)
					opt->verify_action = VERIFY_ACTION_RESTREAM;
				else if (strcmp(optarg, "stop") == 0)
					opt->verify_action = VERIFY_ACTION_STOP;
				else
				{
					walsim_error_set(err, "invalid --verify-action \"%s\": expected restream or stop", optarg);
					return OPTIONS_ERROR;
				}
				break;
			case OPT_START:
				if (!lsn_parse(optarg, &opt->start, &lsn_err))
				{
					walsim_error_set(err, "invalid --start: %s", lsn_err.message);
					return OPTIONS_ERROR;
				}
				opt->have_start = true;
				break;
			case OPT_JSON_EVENTS:
				opt->json_events = optarg;
				break;
			case OPT_RECONNECT:
				if (!parse_seconds("invalid reconnect interval", optarg, MAX_RECONNECT_INTERVAL_S,
								   &opt->reconnect_ms, err))
					return OPTIONS_ERROR;
				break;
			case OPT_CONNECT_TIMEOUT:
				if (!parse_seconds("invalid connect timeout", optarg, MAX_RECONNECT_INTERVAL_S,
								   &opt->connect_timeout_ms, err))
					return OPTIONS_ERROR;
				if (opt->connect_timeout_ms == 0)
				{
					walsim_error_set(err, "invalid connect timeout \"%s\": must be at least 1", optarg);
					return OPTIONS_ERROR;
				}
				break;
			case OPT_BASE_BACKUP:
				opt->base_backup = true;
				break;
			case 'R':
				opt->write_recovery_conf = true;
				break;
			case 'c':
				if (strcmp(optarg, "fast") == 0)
					opt->fast_checkpoint = true;
				else if (strcmp(optarg, "spread") != 0)
				{
					walsim_error_set(err, "invalid checkpoint argument \"%s\", must be \"fast\" or \"spread\"", optarg);
					return OPTIONS_ERROR;
				}
				break;
			case 'l':
				if (strchr(optarg, '\'') != NULL || strchr(optarg, '\\') != NULL || strlen(optarg) > 200)
				{
					walsim_error_set(err, "invalid --label: at most 200 characters, no quotes or backslashes");
					return OPTIONS_ERROR;
				}
				opt->label = optarg;
				break;
			case OPT_HELP:
				print_help();
				return OPTIONS_EXIT_OK;
			case 'V':
			case OPT_VERSION:
				printf("%s\n", RECEIVER_VERSION);
				return OPTIONS_EXIT_OK;
			case '?':
				/* getopt returns '?' both for -? and for an unknown option */
				if (optopt == '?' || optopt == 0)
				{
					if (optopt == 0 && optind > 0 && strcmp(argv[optind - 1], "-?") != 0)
					{
						walsim_error_set(err, "unrecognized option \"%s\"", argv[optind - 1]);
						return OPTIONS_ERROR;
					}
					print_help();
					return OPTIONS_EXIT_OK;
				}
				walsim_error_set(err, "invalid option -- '%c'", optopt);
				return OPTIONS_ERROR;
			case ':':
				walsim_error_set(err, "option \"%s\" requires an argument", argv[optind - 1]);
				return OPTIONS_ERROR;
			default:
				walsim_error_set(err, "internal error: option %d", c);
				return OPTIONS_ERROR;
		}
	}
	if (optind < argc)
	{
		walsim_error_set(err, "too many command-line arguments (first is \"%s\")", argv[optind]);
		return OPTIONS_ERROR;
	}
	if (!check_combination(opt, err))
		return OPTIONS_ERROR;
	return OPTIONS_OK;
}
