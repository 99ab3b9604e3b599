/*
 * test_disk_rules.c — the disk simulator's rule syntax, glob matcher and
 * shared region (sim/disk/rules.c, region.c), without preloading anything.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../sim/disk/disk.h"
#include "unit_support.h"

/* Parse a rule from one line of space-separated words. */
static bool
parse_line(DiskRule *rule, const char *line, WalsimError *err)
{
	char		copy[1024];
	char	   *words[32];
	int			n = 0;
	char	   *save = NULL;

	snprintf(copy, sizeof(copy), "%s", line);
	for (char *w = strtok_r(copy, " ", &save); w && n < 32; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	return disk_rule_parse(rule, n, words, err);
}

START_TEST(test_glob)
{
	ck_assert(disk_glob_match("pg_wal/0*", "pg_wal/000000010000000000000001"));
	ck_assert(!disk_glob_match("pg_wal/0*", "pg_wal/archive_status/x.ready"));
	ck_assert(!disk_glob_match("pg_wal/0*", "pg_wal/xlogtemp.123"));
	ck_assert(disk_glob_match("base/*/*", "base/5/16384"));
	ck_assert(!disk_glob_match("base/*", "base/5/16384"));
	ck_assert(disk_glob_match("base/**", "base/5/16384"));
	ck_assert(disk_glob_match("**", "global/pg_control"));
	ck_assert(disk_glob_match("global/pg_control", "global/pg_control"));
	ck_assert(!disk_glob_match("global/pg_control", "global/pg_control2"));
	ck_assert(disk_glob_match("base/?/1638[0-9]", "base/5/16384"));
	ck_assert(!disk_glob_match("base/?/1638[!0-4]", "base/5/16384"));
	ck_assert(disk_glob_match("base/?/1638[!0-3]", "base/5/16384"));
	ck_assert(!disk_glob_match("?", "/"));
	ck_assert(!disk_glob_match("a[", "a["));	/* unterminated class */
	ck_assert(disk_glob_match("a\\*", "a*"));
	ck_assert(!disk_glob_match("a\\*", "ab"));
	ck_assert(disk_glob_match("*", ""));
	ck_assert(!disk_glob_match("x", ""));
}
END_TEST

/*
 * Found by tests/fuzz/fuzz_disk_rules: a run of stars was matched one star at
 * a time, backtracking exponentially; a rule glob of 60 stars hung every
 * file operation the preload library checked against it.  A run of two or
 * more stars means "**".  (Before the fix this test ran into Check's
 * timeout.)
 */
START_TEST(test_glob_star_run)
{
	char		glob[DISK_GLOB_MAX];
	char		path[DISK_REL_MAX];

	memset(glob, '*', sizeof(glob) - 2);
	glob[sizeof(glob) - 2] = 'x';
	glob[sizeof(glob) - 1] = '\0';
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	path[10] = '/';
	ck_assert(!disk_glob_match(glob, path));
	path[sizeof(path) - 2] = 'x';
	ck_assert(disk_glob_match(glob, path));

	ck_assert(disk_glob_match("a***b", "a/x/y/b"));
	ck_assert(disk_glob_match("a***", "a"));
	ck_assert(disk_glob_match("***", ""));
	ck_assert(!disk_glob_match("a*b", "a/b"));
	ck_assert(disk_glob_match("a*/**b", "ax/y/zb"));
}
END_TEST

/*
 * Found by tests/fuzz/fuzz_disk_rules after the fix above: several single
 * stars each try every split of a long name, (path length)^(stars) steps
 * without the memo of failed (glob, path) positions.  Before the memo this
 * test ran into Check's timeout.
 */
START_TEST(test_glob_many_stars)
{
	const char *glob = "*[!a]*[!b]*[!c]*[!d]*[!e]*[!f]*[!g]*[!h]*[!i]*[!j]*y";
	char		path[DISK_REL_MAX];

	memset(path, 'q', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	ck_assert(!disk_glob_match(glob, path));
	path[sizeof(path) - 2] = 'y';
	ck_assert(disk_glob_match(glob, path));
	path[5] = '/';				/* '*' and '[!x]' never match '/' */
	ck_assert(!disk_glob_match(glob, path));
	ck_assert(disk_glob_match("**[!a]*[!b]*y", path));
}
END_TEST

START_TEST(test_parse_and_format)
{
	static const char *const lines[] = {
		"id=wal-eio path=pg_wal/0* ops=fsync when=nth:1 do=errno:EIO limit=0",
		"id=a path=base/*/* ops=write when=after:3 do=torn:512 limit=2",
		"id=b path=** ops=write when=range:8192-16384 do=short limit=0",
		"id=c path=pg_wal/* ops=read when=prob:0.25 do=flip:17.3 limit=1",
		"id=d path=x ops=read,write when=after:0 do=flip limit=0",
		"id=e path=x ops=fsync,fdatasync,sync_file_range when=after:0 do=lie limit=0",
		"id=f path=x ops=open,rename,unlink when=after:0 do=delay:1500 limit=0",
		"id=g path=x ops=write when=after:0 do=errno:ENOSPC limit=0",
		"id=h path=x ops=write when=after:0 do=flip:9 limit=0",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
	{
		DiskRule	rule;
		WalsimError err;
		char		out[512];

		ck_assert_msg(parse_line(&rule, lines[i], &err), "%s: %s", lines[i], err.message);
		disk_rule_format(&rule, out, sizeof(out));
		ck_assert_str_eq(out, lines[i]);
	}
}
END_TEST

START_TEST(test_parse_defaults_and_aliases)
{
	DiskRule	rule;
	WalsimError err;

	ck_assert(parse_line(&rule, "id=x path=p ops=sync do=errno:5", &err));
	ck_assert_uint_eq(rule.ops, 1u << DISK_OP_FSYNC | 1u << DISK_OP_FDATASYNC |
					  1u << DISK_OP_SYNC_FILE_RANGE);
	ck_assert_uint_eq(rule.trigger, DISK_WHEN_AFTER);
	ck_assert_uint_eq(rule.n, 0);
	ck_assert_int_eq(rule.err, EIO);
	ck_assert(parse_line(&rule, "id=x path=p ops=any when=always do=errno:EROFS", &err));
	ck_assert_uint_eq(rule.ops, (1u << DISK_OP_COUNT) - 1);
	ck_assert_int_eq(rule.err, EROFS);
	ck_assert(parse_line(&rule, "id=x path=p ops=write do=short", &err));
	ck_assert_int_eq(rule.keep, -1);
}
END_TEST

/* Every malformed rule is refused with a message naming the bad word. */
START_TEST(test_parse_errors)
{
	static const struct
	{
		const char *line;
		const char *needle;
	}			cases[] = {
		{"path=p ops=write do=lie", "missing id="},
		{"id=x ops=write do=lie", "missing path="},
		{"id=x path=p do=lie", "missing ops="},
		{"id=x path=p ops=write", "missing do="},
		{"id=x path=p ops=write do=lie bogus", "\"bogus\": expected key=value"},
		{"id=x path=p ops=write do=lie color=red", "\"color=red\": unknown key"},
		{"id=all path=p ops=write do=lie", "id=all"},
		{"id=a/b path=p ops=write do=lie", "id=a/b"},
		{"id=x path=/abs ops=write do=lie", "path=/abs"},
		{"id=x path= ops=write do=lie", "path="},
		{"id=x path=p ops=scribble do=lie", "unknown operation \"scribble\""},
		{"id=x path=p ops=, do=lie", "no operation"},
		{"id=x path=p ops=write when=nth:0 do=lie", "when=nth:0"},
		{"id=x path=p ops=write when=nth:x do=lie", "when=nth:x"},
		{"id=x path=p ops=write when=after:-1 do=lie", "when=after:-1"},
		{"id=x path=p ops=write when=range:9-3 do=lie", "when=range:9-3"},
		{"id=x path=p ops=write when=range:9 do=lie", "when=range:9"},
		{"id=x path=p ops=write when=prob:1.5 do=lie", "when=prob:1.5"},
		{"id=x path=p ops=write when=prob:nan do=lie", "when=prob:nan"},
		{"id=x path=p ops=write when=sometimes do=lie", "when=sometimes"},
		{"id=x path=p ops=write when=often:3 do=lie", "unknown trigger"},
		{"id=x path=p ops=write do=errno:EWHAT", "do=errno:EWHAT"},
		{"id=x path=p ops=write do=errno", "do=errno"},
		{"id=x path=p ops=write do=explode", "unknown effect"},
		{"id=x path=p ops=write do=delay", "do=delay"},
		{"id=x path=p ops=write do=delay:9999999999999", "at most one hour"},
		{"id=x path=p ops=write do=flip:1.8", "BIT must be 0..7"},
		{"id=x path=p ops=write do=flip:z", "BYTE must be"},
		{"id=x path=p ops=write do=short:-3", "KEEP must be"},
		{"id=x path=p ops=fsync do=short", "ops=write only"},
		{"id=x path=p ops=fsync do=flip", "ops=read and ops=write only"},
		{"id=x path=p ops=fsync when=range:0-10 do=lie", "when=range"},
		{"id=x path=p ops=write do=lie limit=many", "limit=many"},
		{"id=x path=p ops=write do=lie:3", "unknown effect"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		DiskRule	rule;
		WalsimError err = {{0}};

		ck_assert_msg(!parse_line(&rule, cases[i].line, &err), "accepted: %s", cases[i].line);
		ck_assert_msg(strstr(err.message, cases[i].needle) != NULL,
					  "%s: message \"%s\" lacks \"%s\"", cases[i].line, err.message,
					  cases[i].needle);
	}
}
END_TEST

/*
 * The tables of rules.c: every key, every trigger of when= and every effect
 * of do= with a good value, and the messages that list what the tables
 * accept, word for word.
 */
START_TEST(test_every_key_trigger_effect)
{
	static const struct
	{
		const char *line;
		const char *error;		/* NULL: accepted */
	}			cases[] = {
		/* keys */
		{"id=a.b-c_1 path=p ops=write do=lie", NULL},
		{"id=0123456789012345678901234567890 path=p ops=write do=lie", NULL},
		{"id=01234567890123456789012345678901 path=p ops=write do=lie",
		 "id=01234567890123456789012345678901: must be 1-31 characters of [A-Za-z0-9._-] and not \"all\""},
		{"id=x path=base/*/[0-9]* ops=write do=lie", NULL},
		{"id=x path=/p ops=write do=lie",
		 "path=/p: must be a non-empty glob relative to the data directory, shorter than 128"},
		{"id=x path=p ops=open,close do=lie", NULL},
		{"id=x path=p ops=open,nope do=lie",
		 "ops=open,nope: unknown operation \"nope\" (open, read, write, fsync, fdatasync, "
		 "sync_file_range, rename, unlink, truncate, fallocate, close, sync, any)"},
		{"id=x path=p ops=write do=lie limit=3", NULL},
		{"id=x path=p ops=write do=lie limit=-3", "limit=-3: must be a whole number (0 = no limit)"},
		{"id=x path=p ops=write do=lie when", "\"when\": expected key=value (keys: id, path, ops, when, do, limit)"},
		{"id=x path=p ops=write do=lie =3", "\"=3\": unknown key (id, path, ops, when, do, limit)"},
		{"id=x path=p ops=write do=lie ID=3", "\"ID=3\": unknown key (id, path, ops, when, do, limit)"},
		/* triggers */
		{"id=x path=p ops=write do=lie when=nth:2", NULL},
		{"id=x path=p ops=write do=lie when=after:0", NULL},
		{"id=x path=p ops=write do=lie when=range:0-1", NULL},
		{"id=x path=p ops=write do=lie when=prob:0", NULL},
		{"id=x path=p ops=write do=lie when=always", NULL},
		{"id=x path=p ops=write do=lie when=nth", "when=nth: expected nth:N, after:N, range:LO-HI, prob:P or always"},
		{"id=x path=p ops=write do=lie when=always:1", "when=always:1: unknown trigger (nth, after, range, prob, always)"},
		{"id=x path=p ops=write do=lie when=after:x", "when=after:x: N must be a whole number >= 0"},
		{"id=x path=p ops=write do=lie when=nth:0", "when=nth:0: N must be a whole number >= 1"},
		{"id=x path=p ops=write do=lie when=range:x-1", "when=range:x-1: LO and HI must be byte offsets with LO < HI"},
		{"id=x path=p ops=write do=lie when=range:123456789012345678901234567890123-1",
		 "when=range:123456789012345678901234567890123-1: expected range:LO-HI (byte offsets)"},
		{"id=x path=p ops=write do=lie when=prob:-0.5", "when=prob:-0.5: P must be a number in [0, 1]"},
		/* effects */
		{"id=x path=p ops=write do=errno:ENOSPC", NULL},
		{"id=x path=p ops=write do=errno:28", NULL},
		{"id=x path=p ops=write do=short:10", NULL},
		{"id=x path=p ops=write do=torn", NULL},
		{"id=x path=p ops=read do=flip:0.0", NULL},
		{"id=x path=p ops=write do=delay:1", NULL},
		{"id=x path=p ops=write do=lie", NULL},
		{"id=x path=p ops=write do=errno:0", "do=errno:0: expected errno:NAME (EIO, ENOSPC, EDQUOT, EROFS, ... or a number)"},
		{"id=x path=p ops=write do=torn:k", "do=torn:k: KEEP must be a byte count"},
		{"id=x path=p ops=write do=flip:123456789012345678901234567890123",
		 "do=flip:123456789012345678901234567890123: expected flip[:BYTE[.BIT]]"},
		{"id=x path=p ops=write do=flip:1.", "do=flip:1.: BIT must be 0..7"},
		{"id=x path=p ops=write do=delay:3600000001", "do=delay:3600000001: expected delay:MICROSECONDS (at most one hour)"},
		{"id=x path=p ops=write do=lie:1",
		 "do=lie:1: unknown effect (errno:NAME, short[:KEEP], torn[:KEEP], flip[:BYTE[.BIT]], delay:US, lie)"},
		{"id=x path=p ops=write do=LIE",
		 "do=LIE: unknown effect (errno:NAME, short[:KEEP], torn[:KEEP], flip[:BYTE[.BIT]], delay:US, lie)"},
		{"id=x path=p ops=write when=range:0-9 do=torn:1", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		DiskRule	rule;
		WalsimError err = {{0}};
		bool		ok = parse_line(&rule, cases[i].line, &err);

		if (cases[i].error == NULL)
			ck_assert_msg(ok, "%s: %s", cases[i].line, err.message);
		else
		{
			ck_assert_msg(!ok, "accepted: %s", cases[i].line);
			ck_assert_str_eq(err.message, cases[i].error);
		}
	}
}
END_TEST

START_TEST(test_names)
{
	ck_assert_int_eq(disk_op_from_name("fdatasync"), DISK_OP_FDATASYNC);
	ck_assert_int_eq(disk_op_from_name("fsink"), -1);
	ck_assert_str_eq(disk_op_name(DISK_OP_SYNC_FILE_RANGE), "sync_file_range");
	ck_assert_str_eq(disk_op_name(DISK_OP_COUNT), "?");
	ck_assert_int_eq(disk_errno_from_name("EDQUOT"), EDQUOT);
	ck_assert_int_eq(disk_errno_from_name("28"), ENOSPC);
	ck_assert_int_eq(disk_errno_from_name("0"), -1);
	ck_assert_int_eq(disk_errno_from_name("28x"), -1);
	ck_assert_str_eq(disk_errno_name(ENOSPC), "ENOSPC");
	ck_assert_ptr_null(disk_errno_name(4000));
}
END_TEST

/* A node dir with a data dir inside, removed by the caller's test end. */
static void
make_node(char *node, size_t len)
{
	char		data[512];

	snprintf(node, len, "/tmp/walsim-disk-unit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(node));
	snprintf(data, sizeof(data), "%s/data", node);
	ck_assert_int_eq(mkdir(data, 0700), 0);
}

static void
remove_node(const char *node)
{
	char		cmd[600];

	/* test scaffolding only: the directory was made by mkdtemp above */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", node);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_region_rules)
{
	char		node[256],
				data[512],
				path[512];
	WalsimError err;
	DiskRegion *region;
	DiskRule	rule,
				got;
	uint32_t	gen;

	make_node(node, sizeof(node));
	snprintf(data, sizeof(data), "%s/data", node);
	ck_assert_msg(disk_region_create(node, data, NULL, 42, true, false, &err), "%s", err.message);
	snprintf(path, sizeof(path), "%s/%s", node, DISK_REGION_FILE);
	region = disk_region_map(path, &err);
	ck_assert_ptr_nonnull(region);
	ck_assert_uint_eq(region->seed, 42);
	ck_assert_uint_eq(region->journal, 1);
	ck_assert_uint_eq(region->nactive, 0);

	ck_assert(parse_line(&rule, "id=r1 path=pg_wal/* ops=fsync do=errno:EIO", &err));
	gen = region->generation;
	ck_assert(disk_region_add_rule(region, &rule, &err));
	ck_assert_uint_gt(region->generation, gen);
	ck_assert_uint_eq(region->nactive, 1);
	ck_assert(!disk_region_add_rule(region, &rule, &err));
	ck_assert(strstr(err.message, "already exists") != NULL);
	ck_assert(disk_region_read_rule(region, 0, &got));
	ck_assert_str_eq(got.id, "r1");
	ck_assert(!disk_region_read_rule(region, 1, &got));

	/* fill every slot, then one more */
	for (int i = 1; i < DISK_MAX_RULES; i++)
	{
		snprintf(rule.id, sizeof(rule.id), "n%d", i);
		ck_assert(disk_region_add_rule(region, &rule, &err));
	}
	snprintf(rule.id, sizeof(rule.id), "overflow");
	ck_assert(!disk_region_add_rule(region, &rule, &err));
	ck_assert(strstr(err.message, "no free slot") != NULL);

	/* set replaces in place and restarts the counters; on a new id it adds */
	region->slots[0].calls = 5;
	ck_assert(parse_line(&got, "id=r1 path=base/** ops=write do=lie", &err));
	gen = region->generation;
	ck_assert(disk_region_set_rule(region, &got, &err));
	ck_assert_uint_gt(region->generation, gen);
	ck_assert(disk_region_read_rule(region, 0, &rule));
	ck_assert_str_eq(rule.glob, "base/**");
	ck_assert_uint_eq(region->slots[0].calls, 0);
	ck_assert_uint_eq(region->nactive, DISK_MAX_RULES);
	snprintf(got.id, sizeof(got.id), "brand-new");
	ck_assert(!disk_region_set_rule(region, &got, &err));	/* full */
	ck_assert(strstr(err.message, "no free slot") != NULL);

	ck_assert(!disk_region_del_rule(region, "nope", &err));
	ck_assert(strstr(err.message, "no such rule") != NULL);
	ck_assert(disk_region_del_rule(region, "r1", &err));
	ck_assert_uint_eq(region->nactive, DISK_MAX_RULES - 1);
	ck_assert(disk_region_del_rule(region, "all", &err));
	ck_assert_uint_eq(region->nactive, 0);
	disk_region_unmap(region);
	remove_node(node);
}
END_TEST

START_TEST(test_region_bad_input)
{
	char		node[256],
				data[512],
				path[512];
	WalsimError err;
	FILE	   *f;

	make_node(node, sizeof(node));
	snprintf(data, sizeof(data), "%s/data", node);
	/* the node directory inside the data directory is refused */
	ck_assert(!disk_region_create(data, node, NULL, 0, false, false, &err));
	ck_assert(strstr(err.message, "inside the data directory") != NULL);
	ck_assert(!disk_region_create(node, "/nonexistent/data", NULL, 0, false, false, &err));
	ck_assert(strstr(err.message, "/nonexistent/data") != NULL);
	/* a missing region, then a file that is not one */
	snprintf(path, sizeof(path), "%s/%s", node, DISK_REGION_FILE);
	ck_assert_ptr_null(disk_region_map(path, &err));
	ck_assert(strstr(err.message, DISK_REGION_FILE) != NULL);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not a region", f);
	fclose(f);
	ck_assert_ptr_null(disk_region_map(path, &err));
	ck_assert(strstr(err.message, "too small") != NULL);
	f = fopen(path, "w");
	for (size_t i = 0; i < sizeof(DiskRegion); i++)
		fputc('x', f);
	fclose(f);
	ck_assert_ptr_null(disk_region_map(path, &err));
	ck_assert(strstr(err.message, "bad magic") != NULL);
	remove_node(node);
}
END_TEST

static Suite *
disk_rules_suite(void)
{
	Suite	   *s = suite_create("disk_rules");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_glob);
	tcase_add_test(tc, test_glob_star_run);
	tcase_add_test(tc, test_glob_many_stars);
	tcase_add_test(tc, test_parse_and_format);
	tcase_add_test(tc, test_parse_defaults_and_aliases);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_every_key_trigger_effect);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_region_rules);
	tcase_add_test(tc, test_region_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(disk_rules_suite());
}
