/*
 * test_sampler_line.c — walsim-sampler's samples.jsonl lines and time axis
 * (ref/sampler/line.c): what the observer's reader and the verdicts read.
 */
#include <check.h>
#include <string.h>

#include "../../ref/sampler/line.h"
#include "unit_support.h"

static const SampleAxis axis = {
	.start_mono = 100.0, .start_wall = 1000000.0, .t0_mono = 100.5, .interval = 0.01
};

/* The text of one value of the given type. */
static const char *
value_text(unsigned int type, const char *value)
{
	static char buf[256];
	JsonBuf		j;
	SampleColumn col = {.name = "x", .type = type, .value = value};

	json_init(&j, buf, sizeof(buf));
	line_value(&j, &col);
	return buf;
}

START_TEST(test_values_by_type)
{
	ck_assert_str_eq(value_text(SAMPLE_PG_LSNOID, "0/3000028"), "50331688");
	ck_assert_str_eq(value_text(SAMPLE_PG_LSNOID, "1/0"), "4294967296");
	ck_assert_str_eq(value_text(SAMPLE_INT4OID, "2"), "2");
	ck_assert_str_eq(value_text(SAMPLE_FLOAT8OID, "-1.5e-3"), "-1.5e-3");
	ck_assert_str_eq(value_text(SAMPLE_NUMERICOID, "0.019853"), "0.019853");
	/* not JSON numbers: strings */
	ck_assert_str_eq(value_text(SAMPLE_FLOAT8OID, "NaN"), "\"NaN\"");
	ck_assert_str_eq(value_text(SAMPLE_NUMERICOID, "Infinity"), "\"Infinity\"");
	ck_assert_str_eq(value_text(SAMPLE_BOOLOID, "t"), "true");
	ck_assert_str_eq(value_text(SAMPLE_BOOLOID, "f"), "false");
	ck_assert_str_eq(value_text(SAMPLE_JSONOID, "[{\"a\" : 1}, \n {\"a\" : \"x\\ny\"}]"),
					 "[{\"a\" : 1},   {\"a\" : \"x\\ny\"}]");
	ck_assert_str_eq(value_text(25, "stand\"by\n"), "\"stand\\\"by\\u000a\"");
	ck_assert_str_eq(value_text(25, NULL), "null");
	ck_assert_str_eq(value_text(SAMPLE_PG_LSNOID, "garbage"), "\"garbage\"");
}
END_TEST

START_TEST(test_line_up)
{
	char		buf[1024];
	JsonBuf		j;
	SampleColumn cols[] = {
		{"role", 25, "primary"}, {"insert_lsn", SAMPLE_PG_LSNOID, "0/3000028"},
		{"replay_lsn", SAMPLE_PG_LSNOID, NULL}, {"replication", SAMPLE_JSONOID, "[]"}
	};
	double		offset = -3600.25;

	json_init(&j, buf, sizeof(buf));
	line_up(&j, &axis, 101.25, 1000001.25, "pg1", 7, 1.2345678, NULL, false, cols, 4);
	ck_assert_str_eq(buf, "{\"t\": 1.2500, \"wall\": 1000001.2500, \"node\": \"pg1\", \"up\": true, "
					 "\"round\": 7, \"server_t\": 1.234568, \"role\": \"primary\", "
					 "\"insert_lsn\": 50331688, \"replay_lsn\": null, \"replication\": []}\n");
	json_init(&j, buf, sizeof(buf));
	line_up(&j, &axis, 101.25, 1000001.25, "pg2", 8, 1.25, &offset, true, cols, 0);
	ck_assert_str_eq(buf, "{\"t\": 1.2500, \"wall\": 1000001.2500, \"node\": \"pg2\", \"up\": true, "
					 "\"round\": 8, \"server_t\": 1.250000, \"clock_offset\": -3600.250000, "
					 "\"late\": true}\n");
}
END_TEST

START_TEST(test_line_down)
{
	char		buf[512];
	JsonBuf		j;

	json_init(&j, buf, sizeof(buf));
	line_down(&j, &axis, 100.0, 1000000.0, "pg3", 0,
			  "connection to server at \"127.0.0.12\", port 5433 failed: Connection refused");
	ck_assert_str_eq(buf, "{\"t\": 0.0000, \"wall\": 1000000.0000, \"node\": \"pg3\", \"up\": false, "
					 "\"round\": 0, \"error\": \"connection to server at \\\"127.0.0.12\\\", port 5433 "
					 "failed: Connection refused\"}\n");
}
END_TEST

START_TEST(test_server_time_trusted_inside_the_bracket)
{
	double		t = 0,
				off = 0;

	/* sent at +12.2500, answered at +12.2510: a clock inside is the sample's time */
	ck_assert(!sample_server_time(&axis, 1000012.2505, 1000012.25, 1000012.251, &t, &off));
	ck_assert_double_eq_tol(t, 12.2505, 1e-9);
	/* within the tolerance outside it, too */
	ck_assert(!sample_server_time(&axis, 1000012.2525, 1000012.25, 1000012.251, &t, &off));
	ck_assert_double_eq_tol(t, 12.2525, 1e-9);
}
END_TEST

START_TEST(test_server_time_of_a_moved_clock)
{
	double		t = 0,
				off = 0;

	/* an hour behind (a clock fault): placed at the middle, the offset kept */
	ck_assert(sample_server_time(&axis, 996412.25, 1000012.24, 1000012.26, &t, &off));
	ck_assert_double_eq_tol(t, 12.25, 1e-9);
	ck_assert_double_eq_tol(off, -3600.0, 1e-6);
	ck_assert(sample_server_time(&axis, 1000012.31, 1000012.25, 1000012.251, &t, &off));
	ck_assert_double_eq_tol(off, 0.0595, 1e-9);
}
END_TEST

START_TEST(test_late_is_more_than_a_tick_after_the_tick)
{
	/* round 10's tick is at t0 + 0.1 s = 0.6 s on the run's axis */
	ck_assert(!sample_late(&axis, 10, 0.6005));
	ck_assert(!sample_late(&axis, 10, 0.6099));
	ck_assert(sample_late(&axis, 10, 0.6101));
	ck_assert(!sample_late(&axis, 11, 0.6101));
}
END_TEST

static Suite *
sampler_line_suite(void)
{
	Suite	   *s = suite_create("sampler_line");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_values_by_type);
	tcase_add_test(tc, test_line_up);
	tcase_add_test(tc, test_line_down);
	tcase_add_test(tc, test_server_time_trusted_inside_the_bracket);
	tcase_add_test(tc, test_server_time_of_a_moved_clock);
	tcase_add_test(tc, test_late_is_more_than_a_tick_after_the_tick);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(sampler_line_suite());
}
