/*
 * test_timeline.c — timeline history files.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/timeline.h"
#include "unit_support.h"

/* what PostgreSQL 15 writes for timeline 3 after two promotions */
static const char history3[] =
	"1\t0/3000158\tno recovery target specified\n"
	"\n"
	"2\t0/5000000\tat restore point \"before_upgrade\"\n";

static bool
parse_str(const char *text, uint32_t target, TimelineHistory *h, WalsimError *err)
{
	return timeline_history_parse(text, strlen(text), target, h, err);
}

START_TEST(test_parse_postgres_file)
{
	TimelineHistory h;
	WalsimError err;

	ck_assert_msg(parse_str(history3, 3, &h, &err), "%s", err.message);
	ck_assert_uint_eq(h.target, 3);
	ck_assert_uint_eq(h.count, 3);
	ck_assert_uint_eq(h.entries[0].tli, 1);
	ck_assert_uint_eq(h.entries[0].begin, 0);
	ck_assert_uint_eq(h.entries[0].end, 0x3000158);
	ck_assert_str_eq(h.entries[0].reason, "no recovery target specified");
	ck_assert_uint_eq(h.entries[1].tli, 2);
	ck_assert_uint_eq(h.entries[1].begin, 0x3000158);
	ck_assert_uint_eq(h.entries[1].end, 0x5000000);
	ck_assert_str_eq(h.entries[1].reason, "at restore point \"before_upgrade\"");
	ck_assert_uint_eq(h.entries[2].tli, 3);
	ck_assert_uint_eq(h.entries[2].begin, 0x5000000);
	ck_assert_uint_eq(h.entries[2].end, 0);
	ck_assert_ptr_null(h.entries[2].reason);
	timeline_history_free(&h);
	ck_assert_ptr_null(h.entries);
	timeline_history_free(NULL);
}
END_TEST

START_TEST(test_which_timeline)
{
	TimelineHistory h;
	uint64_t	sp;
	WalsimError err;

	ck_assert(parse_str(history3, 3, &h, &err));
	ck_assert_uint_eq(timeline_of_lsn(&h, 0), 1);
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x3000157), 1);
	/* the switch point itself is the first byte of the child timeline */
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x3000158), 2);
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x4FFFFFF), 2);
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x5000000), 3);
	ck_assert_uint_eq(timeline_of_lsn(&h, UINT64_MAX), 3);

	ck_assert(timeline_switch_point(&h, 1, &sp, &err));
	ck_assert_uint_eq(sp, 0x3000158);
	ck_assert(timeline_switch_point(&h, 2, &sp, &err));
	ck_assert_uint_eq(sp, 0x5000000);
	ck_assert(timeline_switch_point(&h, 3, &sp, &err));
	ck_assert_uint_eq(sp, 0);
	ck_assert(!timeline_switch_point(&h, 4, &sp, &err));
	ck_assert_str_eq(err.message, "timeline 4 is not in the history of timeline 3");
	timeline_history_free(&h);
}
END_TEST

START_TEST(test_empty_history)
{
	/* timeline 1 has no parents: an empty (or all-comment) file */
	TimelineHistory h;
	WalsimError err;

	ck_assert(timeline_history_parse("", 0, 1, &h, &err));
	ck_assert_uint_eq(h.count, 1);
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x12345678), 1);
	timeline_history_free(&h);

	ck_assert(parse_str("# a comment\n\n   \n\t# indented comment\n", 1, &h, &err));
	ck_assert_uint_eq(h.count, 1);
	timeline_history_free(&h);
}
END_TEST

START_TEST(test_lenient_syntax)
{
	/* what readTimeLineHistory also accepts: leading blanks, spaces, CRLF,
	 * no reason, no final newline, skipped timelines */
	const char *text = "  1 0/3000158\r\n# promoted twice\n3    1/A0\t  reason with  spaces  ";
	TimelineHistory h;
	WalsimError err;

	ck_assert_msg(parse_str(text, 5, &h, &err), "%s", err.message);
	ck_assert_uint_eq(h.count, 3);
	ck_assert_ptr_null(h.entries[0].reason);
	ck_assert_uint_eq(h.entries[1].tli, 3);
	ck_assert_uint_eq(h.entries[1].end, UINT64_C(0x1000000A0));
	ck_assert_str_eq(h.entries[1].reason, "reason with  spaces");
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x4000000), 3);
	ck_assert_uint_eq(timeline_of_lsn(&h, UINT64_C(0x1000000A0)), 5);
	timeline_history_free(&h);
}
END_TEST

START_TEST(test_format_round_trip)
{
	TimelineHistory h;
	TimelineHistory back;
	WalsimError err;
	char	   *text;

	ck_assert(parse_str(history3, 3, &h, &err));
	text = timeline_history_format(&h);
	ck_assert_ptr_nonnull(text);
	/* PostgreSQL writes no blank lines; otherwise identical */
	ck_assert_str_eq(text,
					 "1\t0/3000158\tno recovery target specified\n"
					 "2\t0/5000000\tat restore point \"before_upgrade\"\n");
	ck_assert(parse_str(text, 3, &back, &err));
	ck_assert_uint_eq(back.count, h.count);
	for (size_t i = 0; i < h.count; i++)
	{
		ck_assert_uint_eq(back.entries[i].tli, h.entries[i].tli);
		ck_assert_uint_eq(back.entries[i].begin, h.entries[i].begin);
		ck_assert_uint_eq(back.entries[i].end, h.entries[i].end);
	}
	free(text);
	timeline_history_free(&back);
	timeline_history_free(&h);

	/* a missing reason is written as PostgreSQL's default */
	ck_assert(parse_str("1\t0/10\n", 2, &h, &err));
	text = timeline_history_format(&h);
	ck_assert_str_eq(text, "1\t0/10\tno recovery target specified\n");
	free(text);
	timeline_history_free(&h);
}
END_TEST

static const struct
{
	const char *text;
	uint32_t	target;
	const char *reason;
}			bad_histories[] = {
	{"x\t0/1\n", 2, "line 1: expected a numeric timeline ID"},
	{"\n\n-1\t0/1\n", 2, "line 3: expected a numeric timeline ID"},
	{"1\n", 2, "line 1: expected whitespace and a switch point after timeline 1"},
	{"1\t\n", 2, "line 1: missing switch point"},
	{"1/0/1\n", 2, "line 1: expected whitespace"},
	{"1\t0/ZZ\tr\n", 2, "line 1: invalid switch point: LSN \"0/ZZ\""},
	{"1\t0x0/1\n", 2, "line 1: invalid switch point"},
	{"1\t0/123456789\n", 2, "more than 8 hex digits"},
	{"1\t0/111111111111111111111111111111111111\n", 2, "line 1: switch point is too long"},
	{"1\t0/0\n", 2, "line 1: switch point 0/0 is invalid"},
	{"0\t0/1\n", 2, "line 1: timeline 0 does not exist"},
	{"99999999999\t0/1\n", 2, "line 1: expected a numeric timeline ID"},
	{"1\t0/100\n1\t0/200\n", 3, "line 2: timeline IDs must be in increasing sequence (1 after 1)"},
	{"2\t0/100\n1\t0/200\n", 3, "line 2: timeline IDs must be in increasing sequence"},
	{"1\t0/300\n2\t0/200\n", 3, "line 2: switch point 0/200 is before the previous switch point 0/300"},
	{"1\t0/100\n2\t0/200\n", 2, "parent timeline 2 (line 2) is not less than the file's timeline"},
	{"1\t0/100\n", 0, "timeline 0 does not exist"},
};

START_TEST(test_reject_malformed)
{
	TimelineHistory h = {0};
	WalsimError err;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(!parse_str(bad_histories[_i].text, bad_histories[_i].target, &h, &err),
				  "accepted \"%s\"", bad_histories[_i].text);
	ck_assert_msg(strstr(err.message, bad_histories[_i].reason) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_histories[_i].text,
				  err.message, bad_histories[_i].reason);
	ck_assert_ptr_null(h.entries);
}
END_TEST

START_TEST(test_reject_nul)
{
	static const char text[] = "1\t0/100\n\0002\t0/200\n";
	TimelineHistory h;
	WalsimError err;

	ck_assert(!timeline_history_parse(text, sizeof(text) - 1, 3, &h, &err));
	ck_assert_str_eq(err.message, "timeline history: contains a NUL byte at offset 8");
}
END_TEST

START_TEST(test_truncated_at_each_byte)
{
	/* every prefix either parses (ending at a whole field) or names a line */
	size_t		len = strlen(history3);

	for (size_t n = 0; n <= len; n++)
	{
		TimelineHistory h;
		WalsimError err;

		memset(&err, 0, sizeof(err));
		if (timeline_history_parse(history3, n, 3, &h, &err))
		{
			ck_assert_uint_ge(h.count, 1);
			ck_assert_uint_eq(h.entries[h.count - 1].tli, 3);
			timeline_history_free(&h);
		}
		else
			ck_assert_msg(strncmp(err.message, "line ", 5) == 0,
						  "prefix %zu: %s", n, err.message);
	}
}
END_TEST

START_TEST(test_read_file)
{
	char		path[] = "/tmp/walsim-test-timeline-XXXXXX";
	int			fd = mkstemp(path);
	TimelineHistory h;
	WalsimError err;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, history3, strlen(history3)), (ssize_t) strlen(history3));
	close(fd);
	ck_assert_msg(timeline_history_read(path, 3, &h, &err), "%s", err.message);
	ck_assert_uint_eq(h.count, 3);
	timeline_history_free(&h);

	/* a file that is wrong for its timeline names the file */
	ck_assert(!timeline_history_read(path, 2, &h, &err));
	ck_assert_ptr_nonnull(strstr(err.message, path));
	ck_assert_ptr_nonnull(strstr(err.message, "not less than"));
	unlink(path);

	ck_assert(!timeline_history_read(path, 3, &h, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "could not open"));
	ck_assert_ptr_nonnull(strstr(err.message, "No such file"));

	/* a directory opens but cannot be read */
	ck_assert(!timeline_history_read("/tmp", 3, &h, &err));
	ck_assert_str_eq(err.message, "could not read \"/tmp\": Is a directory");
}
END_TEST

START_TEST(test_read_large_file)
{
	/* more than one read buffer and many entries */
	char		path[] = "/tmp/walsim-test-timeline-XXXXXX";
	int			fd = mkstemp(path);
	FILE	   *f;
	TimelineHistory h;
	WalsimError err;
	const int	n = 3000;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	for (int i = 1; i <= n; i++)
		fprintf(f, "%d\t0/%X\tpromotion number %d with a longish reason to fill the buffer\n",
				i, i * 0x1000, i);
	fclose(f);
	ck_assert_msg(timeline_history_read(path, n + 1, &h, &err), "%s", err.message);
	ck_assert_uint_eq(h.count, (size_t) n + 1);
	ck_assert_uint_eq(timeline_of_lsn(&h, 0x1000 * 1500), 1501);
	timeline_history_free(&h);
	unlink(path);
}
END_TEST

static Suite *
timeline_suite(void)
{
	Suite	   *s = suite_create("timeline");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_postgres_file);
	tcase_add_test(tc, test_which_timeline);
	tcase_add_test(tc, test_empty_history);
	tcase_add_test(tc, test_lenient_syntax);
	tcase_add_test(tc, test_format_round_trip);
	tcase_add_loop_test(tc, test_reject_malformed, 0,
						(int) (sizeof(bad_histories) / sizeof(bad_histories[0])));
	tcase_add_test(tc, test_reject_nul);
	tcase_add_test(tc, test_truncated_at_each_byte);
	tcase_add_test(tc, test_read_file);
	tcase_add_test(tc, test_read_large_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(timeline_suite());
}
