/*
 * diskctl.c — walsim-diskctl: create and control the shared region of the
 * disk fault simulator of one node, and roll the node back after a simulated
 * power cut.  See docs/disk.md.
 *
 *   walsim-diskctl --node-dir D init [--data-dir P] [--trace F] [--seed N] [--journal]
 *                                    [--strict-dirs]
 *   walsim-diskctl --node-dir D rule add id=.. path=.. ops=.. [when=..] do=.. [limit=..]
 *   walsim-diskctl --node-dir D rule set (same words: replace the rule with that id)
 *   walsim-diskctl --node-dir D rule del ID|all
 *   walsim-diskctl --node-dir D rule list [--json]
 *   walsim-diskctl --node-dir D stats [--json]
 *   walsim-diskctl --node-dir D journal on|off|reset|status
 *   walsim-diskctl --node-dir D crash [--dry-run] [--force]
 *
 * Exit status: 0 success, 2 invalid input or failure.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walsim/json.h"
#include "walsim/parse.h"
#include "disk.h"

#define PROG "walsim-diskctl"

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: " PROG " --node-dir DIR COMMAND ...\n"
			"\n"
			"commands:\n"
			"  init [--data-dir P] [--trace FILE] [--seed N] [--journal] [--strict-dirs]\n"
			"        create the shared region in DIR (data directory default DIR/data)\n"
			"  rule add id=ID path=GLOB ops=OP[,OP] [when=TRIGGER] do=EFFECT [limit=N]\n"
			"        TRIGGER: nth:N | after:N | range:LO-HI | prob:P | always\n"
			"        EFFECT:  errno:NAME | short[:KEEP] | torn[:KEEP] | flip[:BYTE[.BIT]]\n"
			"                 | delay:MICROSECONDS | lie\n"
			"        OP: open read write fsync fdatasync sync_file_range rename unlink\n"
			"            truncate fallocate close sync any\n"
			"  rule set WORDS...     like add, but replaces the rule with that id\n"
			"                        (its counters restart)\n"
			"  rule del ID|all       remove a rule (or every rule)\n"
			"  rule list [--json]    the rules with their counters\n"
			"  stats [--json]        counters per rule and the journal's state\n"
			"  journal on|off|reset|status\n"
			"        record (or not) unsynced writes for 'crash'; reset forgets them\n"
			"  crash [--dry-run] [--force]\n"
			"        after the node was killed: roll every file back to its last\n"
			"        synced content (a power cut), then empty the journal\n");
}

static int
fail(const char *what, const WalsimError *err)
{
	fprintf(stderr, PROG ": %s%s%s\n", what ? what : "", what ? ": " : "", err->message);
	return 2;
}

static int
bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(run " PROG " --help for usage)\n");
	return 2;
}

static void
region_path(char *buf, size_t len, const char *node_dir)
{
	snprintf(buf, len, "%s/%s", node_dir, DISK_REGION_FILE);
}

static int
cmd_init(const char *node_dir, int argc, char **argv)
{
	char		data_default[PATH_MAX];
	const char *data_dir = NULL;
	const char *trace = NULL;
	uint64_t	seed = 0;
	bool		journal = false;
	bool		strict_dirs = false;
	WalsimError err;

	for (int i = 0; i < argc; i++)
	{
		if (strcmp(argv[i], "--journal") == 0)
			journal = true;
		else if (strcmp(argv[i], "--strict-dirs") == 0)
			strict_dirs = true;
		else if (i + 1 < argc && strcmp(argv[i], "--data-dir") == 0)
			data_dir = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--trace") == 0)
			trace = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
		{
			if (!parse_u64_hex_ok("--seed", argv[++i], &seed, NULL))
				return bad_usage("init: --seed \"%s\": expected an unsigned integer",
								 argv[i]);
		}
		else
			return bad_usage("init: unexpected argument \"%s\"", argv[i]);
	}
	if (data_dir == NULL)
	{
		snprintf(data_default, sizeof(data_default), "%s/data", node_dir);
		data_dir = data_default;
	}
	if (trace != NULL && trace[0] != '/')
		return bad_usage("init: --trace \"%s\": must be an absolute path", trace);
	if (!disk_region_create(node_dir, data_dir, trace, seed, journal, strict_dirs, &err))
		return fail("init", &err);
	return 0;
}

static DiskRegion *
open_region(const char *node_dir, int *lock_fd, WalsimError *err)
{
	char		path[PATH_MAX];
	DiskRegion *region;

	region_path(path, sizeof(path), node_dir);
	if (lock_fd)
	{
		*lock_fd = disk_region_lock(path, err);
		if (*lock_fd < 0)
			return NULL;
	}
	region = disk_region_map(path, err);
	if (region == NULL && lock_fd)
		disk_region_unlock(*lock_fd);
	return region;
}

/* One line per rule: the rule as "rule add" words, or a JSON object. */
static void
print_rules(DiskRegion *region, bool json)
{
	for (int i = 0; i < DISK_MAX_RULES; i++)
	{
		DiskRule	rule;
		char		text[512];
		uint64_t	calls,
					fired;

		if (!disk_region_read_rule(region, i, &rule))
			continue;
		calls = __atomic_load_n(&region->slots[i].calls, __ATOMIC_RELAXED);
		fired = __atomic_load_n(&region->slots[i].fired, __ATOMIC_RELAXED);
		disk_rule_format(&rule, text, sizeof(text));
		if (json)
		{
			char		line[1024];
			JsonBuf		j;

			json_init(&j, line, sizeof(line));
			json_object_begin(&j, NULL);
			json_str(&j, "id", rule.id);
			json_str(&j, "rule", text);
			json_u64(&j, "calls", calls);
			json_u64(&j, "fired", fired);
			json_object_end(&j);
			puts(line);
		}
		else
			printf("%s calls=%" PRIu64 " fired=%" PRIu64 "\n", text, calls, fired);
	}
}

static int
cmd_rule(const char *node_dir, int argc, char **argv)
{
	WalsimError err;
	DiskRegion *region;
	DiskRule	rule;
	int			lock_fd = -1;
	bool		ok = true;

	if (argc < 1)
		return bad_usage("rule: expected add, set, del or list%s", "");
	if (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "set") == 0)
	{
		const char *what = argv[0][0] == 'a' ? "rule add" : "rule set";

		/* parse before touching the region: a bad rule changes nothing */
		if (!disk_rule_parse(&rule, argc - 1, argv + 1, &err))
			return fail(what, &err);
		if ((region = open_region(node_dir, &lock_fd, &err)) == NULL)
			return fail(what, &err);
		if (argv[0][0] == 'a')
			ok = disk_region_add_rule(region, &rule, &err);
		else
			ok = disk_region_set_rule(region, &rule, &err);
	}
	else if (strcmp(argv[0], "del") == 0)
	{
		if (argc != 2)
			return bad_usage("rule del: expected one rule id (or \"all\")%s", "");
		if ((region = open_region(node_dir, &lock_fd, &err)) == NULL)
			return fail("rule del", &err);
		ok = disk_region_del_rule(region, argv[1], &err);
	}
	else if (strcmp(argv[0], "list") == 0)
	{
		bool		json = argc == 2 && strcmp(argv[1], "--json") == 0;

		if (argc > 2 || (argc == 2 && !json))
			return bad_usage("rule list: unexpected argument \"%s\"", argv[1]);
		if ((region = open_region(node_dir, NULL, &err)) == NULL)
			return fail("rule list", &err);
		print_rules(region, json);
	}
	else
		return bad_usage("rule: unknown subcommand \"%s\" (add, set, del, list)", argv[0]);
	disk_region_unmap(region);
	disk_region_unlock(lock_fd);
	if (!ok)
		return fail(argv[0][0] == 'a' ? "rule add" : argv[0][0] == 's' ? "rule set" : "rule del",
					&err);
	return 0;
}

static int
cmd_stats(const char *node_dir, int argc, char **argv)
{
	WalsimError err;
	DiskRegion *region;
	bool		json = argc == 1 && strcmp(argv[0], "--json") == 0;

	if (argc > 1 || (argc == 1 && !json))
		return bad_usage("stats: unexpected argument \"%s\"", argv[0]);
	if ((region = open_region(node_dir, NULL, &err)) == NULL)
		return fail("stats", &err);
	if (json)
	{
		char		line[256];
		JsonBuf		j;

		json_init(&j, line, sizeof(line));
		json_object_begin(&j, NULL);
		json_bool(&j, "journal", region->journal != 0);
		json_u64(&j, "journal_seq", region->journal_seq);
		json_u64(&j, "rules", region->nactive);
		json_object_end(&j);
		puts(line);
	}
	else
		printf("data_dir=%s journal=%s rules=%u trace=%s\n", region->data_dir,
			   region->journal ? "on" : "off", region->nactive, region->trace_path);
	print_rules(region, json);
	disk_region_unmap(region);
	return 0;
}

static int
cmd_journal(const char *node_dir, int argc, char **argv)
{
	WalsimError err;
	DiskRegion *region;
	int			lock_fd;
	int			rc = 0;

	if (argc != 1 || (strcmp(argv[0], "on") != 0 && strcmp(argv[0], "off") != 0 &&
					  strcmp(argv[0], "reset") != 0 && strcmp(argv[0], "status") != 0))
		return bad_usage("journal: expected on, off, reset or status%s", "");
	if ((region = open_region(node_dir, &lock_fd, &err)) == NULL)
		return fail("journal", &err);
	if (strcmp(argv[0], "on") == 0)
		__atomic_store_n(&region->journal, 1, __ATOMIC_RELEASE);
	else if (strcmp(argv[0], "off") == 0)
		__atomic_store_n(&region->journal, 0, __ATOMIC_RELEASE);
	else if (strcmp(argv[0], "reset") == 0)
	{
		if (!disk_journal_reset(region, &err))
			rc = fail("journal reset", &err);
	}
	else
		printf("%s\n", region->journal ? "on" : "off");
	disk_region_unmap(region);
	disk_region_unlock(lock_fd);
	return rc;
}

/* Is pid a zombie (dead, not yet reaped)? */
static bool
is_zombie(long pid)
{
	char		path[64];
	char		buf[512];
	FILE	   *f;
	char	   *close_paren;
	bool		zombie = false;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;			/* gone */
	if (fgets(buf, sizeof(buf), f) && (close_paren = strrchr(buf, ')')) != NULL)
		zombie = close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X');
	fclose(f);
	return zombie;
}

/*
 * A live process that still maps the region, i.e. a process of the node
 * (the postmaster's children outlive a SIGKILLed postmaster for a moment);
 * 0 if none.
 */
static long
process_using_region(const char *node_dir)
{
	char		region[PATH_MAX];
	char		want[PATH_MAX];
	DIR		   *proc = opendir("/proc");
	struct dirent *de;
	long		found = 0;

	region_path(want, sizeof(want), node_dir);
	if (realpath(want, region) == NULL || proc == NULL)
	{
		if (proc)
			closedir(proc);
		return 0;
	}
	while (found == 0 && (de = readdir(proc)) != NULL)
	{
		char		path[300];
		char		line[PATH_MAX + 256];
		long		pid = strtol(de->d_name, NULL, 10);
		FILE	   *f;

		if (pid <= 0 || pid == (long) getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f))
		{
			line[strcspn(line, "\n")] = '\0';
			if (strstr(line, region) != NULL && !is_zombie(pid))
			{
				found = pid;
				break;
			}
		}
		fclose(f);
	}
	closedir(proc);
	return found;
}

static int
cmd_crash(const char *node_dir, int argc, char **argv)
{
	WalsimError err;
	DiskRegion *region;
	DiskRollbackStats st;
	bool		dry_run = false,
				force = false;
	int			lock_fd;
	long		pid;
	bool		ok;

	for (int i = 0; i < argc; i++)
	{
		if (strcmp(argv[i], "--dry-run") == 0)
			dry_run = true;
		else if (strcmp(argv[i], "--force") == 0)
			force = true;
		else
			return bad_usage("crash: unexpected argument \"%s\"", argv[i]);
	}
	if ((region = open_region(node_dir, &lock_fd, &err)) == NULL)
		return fail("crash", &err);
	pid = process_using_region(node_dir);
	if (pid != 0 && !force && !dry_run)
	{
		fprintf(stderr, PROG ": crash: the node is still running (process %ld maps "
				"%s/%s); kill all its processes first (SIGKILL), or use --force\n",
				pid, node_dir, DISK_REGION_FILE);
		disk_region_unmap(region);
		disk_region_unlock(lock_fd);
		return 2;
	}
	ok = disk_journal_rollback(region, dry_run, &st, &err);
	disk_region_unmap(region);
	disk_region_unlock(lock_fd);
	if (!ok)
		return fail("crash", &err);
	printf("%s: %" PRIu64 " journal records; undid %" PRIu64 " writes (%" PRIu64
		   " bytes) in %" PRIu64 " files and %" PRIu64 " directory entries; %"
		   PRIu64 " unrecoverable\n", dry_run ? "dry run" : "rolled back", st.records,
		   st.data_undone, st.bytes_restored, st.files_touched, st.entries_undone,
		   st.unrecoverable);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *node_dir = NULL;
	int			i = 1;

	for (; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if ((strcmp(argv[i], "--node-dir") == 0 || strcmp(argv[i], "-n") == 0) &&
			i + 1 < argc)
			node_dir = argv[++i];
		else
			break;
	}
	if (node_dir == NULL)
		return bad_usage("missing --node-dir DIR%s", "");
	if (i >= argc)
		return bad_usage("missing command (init, rule, stats, journal, crash)%s", "");
	if (strcmp(argv[i], "init") == 0)
		return cmd_init(node_dir, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "rule") == 0)
		return cmd_rule(node_dir, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "stats") == 0)
		return cmd_stats(node_dir, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "journal") == 0)
		return cmd_journal(node_dir, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "crash") == 0)
		return cmd_crash(node_dir, argc - i - 1, argv + i + 1);
	return bad_usage("unknown command \"%s\" (init, rule, stats, journal, crash)", argv[i]);
}
