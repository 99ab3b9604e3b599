/*
 * test_parse.c — the strict number, duration and size parsers: every
 * spelling the programs accepted before they shared them, what they must
 * refuse, and the messages that name the input.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "walsim/parse.h"
#include "unit_support.h"

/* walsim-sender's --wal-sender-timeout: bare milliseconds, ms/s/min, a day at most */
static const DurationSyntax timeout_ms = {"ms,s,min", TIME_MS, TIME_MS, 24 * 3600 * 1000};
/* walsim-netd's delay=: bare seconds with a fraction, us/ms/s, in microseconds */
static const DurationSyntax delay_us = {"us,ms,s", TIME_S, TIME_US, UINT64_C(1000000000000000)};
/* walsim-receiver's -s: whole seconds, no unit */
static const DurationSyntax seconds_only = {"", TIME_S, TIME_S, 3600};
/* walsim-netd's rate=: bytes, k/M/G (either case) and PostgreSQL's units */
static const SizeSyntax rate = {"B,kB,MB,GB,k,K,m,M,g,G", true, UINT64_MAX};
/* SHOW wal_segment_size: a unit is required */
static const SizeSyntax segsize = {"kB,MB,GB", false, UINT64_MAX};

START_TEST(test_integers)
{
	uint64_t	u;
	uint32_t	u32;
	int			i;
	WalsimError err;

	ck_assert(parse_u64("n", "0", 0, UINT64_MAX, &u, &err));
	ck_assert_uint_eq(u, 0);
	ck_assert(parse_u64("n", "18446744073709551615", 0, UINT64_MAX, &u, &err));
	ck_assert_uint_eq(u, UINT64_MAX);
	ck_assert(parse_u64("n", "007", 1, 10, &u, &err));
	ck_assert_uint_eq(u, 7);
	ck_assert(parse_u32("n", "4294967295", 0, UINT32_MAX, &u32, &err));
	ck_assert_uint_eq(u32, UINT32_MAX);
	ck_assert(parse_i32("n", "-2147483648", INT32_MIN, INT32_MAX, &i, &err));
	ck_assert_int_eq(i, INT32_MIN);
	ck_assert(parse_i32("n", "2147483647", INT32_MIN, INT32_MAX, &i, &err));
	ck_assert_int_eq(i, INT32_MAX);
	ck_assert(parse_i32("n", "-0", -1, 1, &i, &err));
	ck_assert_int_eq(i, 0);
	ck_assert(parse_u64_hex_ok("--seed", "0xFFfF", &u, &err));
	ck_assert_uint_eq(u, 0xFFFF);
	ck_assert(parse_u64_hex_ok("--seed", "0755", &u, &err));
	ck_assert_uint_eq(u, 755);	/* a leading zero is not octal */
}
END_TEST

/* each bad integer with the message it must produce */
static const struct
{
	const char *text;
	uint64_t	min;
	uint64_t	max;
	const char *message;
}			bad_u64[] = {
	{"", 0, UINT64_MAX, "n \"\": not a non-negative integer"},
	{"abc", 0, UINT64_MAX, "n \"abc\": not a non-negative integer"},
	{"-1", 0, UINT64_MAX, "n \"-1\": not a non-negative integer"},
	{"+1", 0, UINT64_MAX, "n \"+1\": not a non-negative integer"},
	{" 1", 0, UINT64_MAX, "n \" 1\": not a non-negative integer"},
	{"1 ", 0, UINT64_MAX, "n \"1 \": not a non-negative integer"},
	{"0x10", 0, UINT64_MAX, "n \"0x10\": not a non-negative integer"},
	{"18446744073709551616", 0, UINT64_MAX, "n \"18446744073709551616\": out of range (at most 18446744073709551615)"},
	{"0", 1, 10000, "n \"0\": expected an integer from 1 to 10000"},
	{"10001", 1, 10000, "n \"10001\": expected an integer from 1 to 10000"},
	{"99999999999999999999999", 1, 10000, "n \"99999999999999999999999\": expected an integer from 1 to 10000"},
	{"1.5", 1, 10000, "n \"1.5\": expected an integer from 1 to 10000"},
};

START_TEST(test_u64_rejects)
{
	uint64_t	u = 42;
	WalsimError err;

	ck_assert(!parse_u64("n", bad_u64[_i].text, bad_u64[_i].min, bad_u64[_i].max, &u, &err));
	ck_assert_str_eq(err.message, bad_u64[_i].message);
	ck_assert_uint_eq(u, 42);
}
END_TEST

START_TEST(test_other_rejects)
{
	int			i = 42;
	uint64_t	u = 42;
	double		d = 42;
	WalsimError err;

	ck_assert(!parse_i32("--n", "2147483648", INT32_MIN, INT32_MAX, &i, &err));
	ck_assert_str_eq(err.message, "--n \"2147483648\": expected an integer from -2147483648 to 2147483647");
	ck_assert(!parse_i32("--n", "-", 0, 5, &i, &err));
	ck_assert(!parse_i32("--n", "-1", 0, 5, &i, &err));
	ck_assert(!parse_i32("--n", "--1", -5, 5, &i, &err));
	ck_assert(!parse_i32("--n", "-99999999999999999999", INT32_MIN, 0, &i, &err));
	ck_assert_int_eq(i, 42);

	ck_assert(!parse_u64_hex_ok("--seed", "0x", &u, &err));
	ck_assert_str_eq(err.message, "--seed \"0x\": no hexadecimal digits after \"0x\"");
	ck_assert(!parse_u64_hex_ok("--seed", "0x1g", &u, &err));
	ck_assert(!parse_u64_hex_ok("--seed", "0x10000000000000000", &u, &err));
	ck_assert(!parse_u64_hex_ok("--seed", "-5", &u, &err));
	ck_assert_uint_eq(u, 42);

	/* "key=" subjects quote the word as written */
	ck_assert(!parse_double("prob=", "1.5", 0, 1, &d, &err));
	ck_assert_str_eq(err.message, "prob=1.5: expected a number from 0 to 1");
	ck_assert(!parse_double("prob=", "-0.5", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "nan", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "inf", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "0x0.8p0", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", " 0.5", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "0.5 ", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "1e", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "", 0, 1, &d, &err));
	ck_assert(!parse_double("prob=", "1e-400", 0, 1, &d, &err));
	ck_assert(d == 42);
}
END_TEST

START_TEST(test_doubles)
{
	double		d;

	ck_assert(parse_double("p", "0.25", 0, 1, &d, NULL));
	ck_assert(d == 0.25);
	ck_assert(parse_double("p", ".5", 0, 1, &d, NULL));
	ck_assert(d == 0.5);
	ck_assert(parse_double("p", "1e-3", 0, 1, &d, NULL));
	ck_assert(d == 1e-3);
	ck_assert(parse_double("p", "1", 0, 1, &d, NULL));
	ck_assert(d == 1.0);
	ck_assert(parse_double("p", "0", 0, 1, &d, NULL));
	ck_assert(d == 0.0);
}
END_TEST

START_TEST(test_bools)
{
	static const char *const yes[] = {"true", "t", "TRUE", "tr", "yes", "y", "on", "ON", "1"};
	static const char *const no[] = {"false", "f", "no", "n", "off", "of", "OFF", "0"};
	static const char *const neither[] = {"", "o", "truex", "onn", "2", "01", "database", "offf"};
	bool		b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(parse_pg_bool(yes[i], &b) && b, "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(parse_pg_bool(no[i], &b) && !b, "%s", no[i]);
	for (size_t i = 0; i < sizeof(neither) / sizeof(neither[0]); i++)
		ck_assert_msg(!parse_pg_bool(neither[i], &b), "%s", neither[i]);
}
END_TEST

/* every spelling the old private duration parsers accepted, and its value */
static const struct
{
	const DurationSyntax *syntax;
	const char *text;
	uint64_t	value;
}			good_durations[] = {
	{&timeout_ms, "60s", 60000},
	{&timeout_ms, "500ms", 500},
	{&timeout_ms, "1min", 60000},
	{&timeout_ms, "0", 0},
	{&timeout_ms, "250", 250},
	{&timeout_ms, "10ms", 10},
	{&timeout_ms, "1440min", 86400000},
	{&timeout_ms, "1.5s", 1500},
	{&delay_us, "2.5", 2500000},
	{&delay_us, "250ms", 250000},
	{&delay_us, "3s", 3000000},
	{&delay_us, "100us", 100},
	{&delay_us, "0", 0},
	{&delay_us, ".5", 500000},
	{&delay_us, "0.1", 100000},
	{&delay_us, "0.25ms", 250},
	{&delay_us, "1.000000000000000000000", 1000000},
	{&delay_us, "1000000000", UINT64_C(1000000000000000)},
	{&seconds_only, "10", 10},
	{&seconds_only, "3600", 3600},
};

START_TEST(test_duration_accepts)
{
	uint64_t	v = 42;
	WalsimError err = {{0}};

	ck_assert_msg(parse_duration("d", good_durations[_i].text, good_durations[_i].syntax, &v, &err),
				  "%s: %s", good_durations[_i].text, err.message);
	ck_assert_uint_eq(v, good_durations[_i].value);
}
END_TEST

static const struct
{
	const DurationSyntax *syntax;
	const char *text;
	const char *message;
}			bad_durations[] = {
	{&timeout_ms, "5h", "--t \"5h\": unknown unit \"h\" (ms, s, min)"},
	{&timeout_ms, "abc", "--t \"abc\": expected a non-negative number of milliseconds or a number with a unit (ms, s, min)"},
	{&timeout_ms, "-1s", "--t \"-1s\": expected a non-negative number of milliseconds"},
	{&timeout_ms, "", "expected a non-negative number"},
	{&timeout_ms, ".", "expected a non-negative number"},
	{&timeout_ms, "2.", "expected a non-negative number"},
	{&timeout_ms, "s", "expected a non-negative number"},
	{&timeout_ms, "1 s", "unknown unit \" s\""},
	{&timeout_ms, "1S", "unknown unit \"S\""},
	{&timeout_ms, "1.5ms", "--t \"1.5ms\": not a whole number of milliseconds"},
	{&timeout_ms, "1441min", "--t \"1441min\": at most 86400000 milliseconds"},
	{&timeout_ms, "99999999999999999999999", "at most 86400000 milliseconds"},
	{&delay_us, "0.0000001", "not a whole number of microseconds"},
	{&delay_us, "1.0000000000000000000001", "not a whole number of microseconds"},
	{&delay_us, "1000000001", "at most 1000000000000000 microseconds"},
	{&delay_us, "1e3", "unknown unit \"e3\" (us, ms, s)"},
	{&delay_us, "10min", "unknown unit \"min\" (us, ms, s)"},
	{&seconds_only, "ten", "--t \"ten\": expected a non-negative number of seconds"},
	{&seconds_only, "5x", "--t \"5x\": expected a non-negative number of seconds"},
	{&seconds_only, "10s", "--t \"10s\": expected a non-negative number of seconds"},
	{&seconds_only, "4000", "--t \"4000\": at most 3600 seconds"},
	{&seconds_only, "1.5", "--t \"1.5\": not a whole number of seconds"},
};

START_TEST(test_duration_rejects)
{
	uint64_t	v = 42;
	WalsimError err;

	ck_assert(!parse_duration("--t", bad_durations[_i].text, bad_durations[_i].syntax, &v, &err));
	ck_assert_msg(strstr(err.message, bad_durations[_i].message) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_durations[_i].text, err.message,
				  bad_durations[_i].message);
	ck_assert_uint_eq(v, 42);
}
END_TEST

static const struct
{
	const SizeSyntax *syntax;
	const char *text;
	uint64_t	value;
}			good_sizes[] = {
	{&rate, "1000", 1000},
	{&rate, "64k", 64 * 1024},
	{&rate, "64K", 64 * 1024},
	{&rate, "64kB", 64 * 1024},
	{&rate, "10M", 10 * 1024 * 1024},
	{&rate, "10m", 10 * 1024 * 1024},
	{&rate, "1MB", 1024 * 1024},
	{&rate, "1G", UINT64_C(1) << 30},
	{&rate, "1g", UINT64_C(1) << 30},
	{&rate, "2GB", UINT64_C(2) << 30},
	{&rate, "7B", 7},
	{&rate, "16777216G", UINT64_C(1) << 54},
	{&segsize, "16MB", 16 * 1024 * 1024},
	{&segsize, "1GB", UINT64_C(1) << 30},
	{&segsize, "512kB", 512 * 1024},
};

START_TEST(test_size_accepts)
{
	uint64_t	v = 42;
	WalsimError err = {{0}};

	ck_assert_msg(parse_size("s", good_sizes[_i].text, good_sizes[_i].syntax, &v, &err),
				  "%s: %s", good_sizes[_i].text, err.message);
	ck_assert_uint_eq(v, good_sizes[_i].value);
}
END_TEST

static const struct
{
	const SizeSyntax *syntax;
	const char *text;
	const char *message;
}			bad_sizes[] = {
	{&rate, "abc", "rate=abc: expected a number of bytes with an optional unit (B, kB, MB, GB, k, K, m, M, g, G)"},
	{&rate, "10X", "rate=10X: unknown unit \"X\" (B, kB, MB, GB, k, K, m, M, g, G)"},
	{&rate, "-1", "rate=-1: expected a number of bytes"},
	{&rate, "1.5M", "rate=1.5M: unknown unit \".5M\""},
	{&rate, "10 k", "unknown unit \" k\""},
	{&rate, "1kb", "unknown unit \"kb\""},
	{&rate, "1TB", "unknown unit \"TB\""},
	{&rate, "16777216T", "unknown unit \"T\""},
	{&rate, "17179869184G", "rate=17179869184G: number too large (at most 18446744073709551615 bytes)"},
	{&rate, "99999999999999999999", "number too large"},
	{&segsize, "16", "rate=16: unknown unit \"\" (kB, MB, GB)"},
	{&segsize, "MB", "rate=MB: expected a number followed by a unit (kB, MB, GB)"},
	{&segsize, "16mb", "unknown unit \"mb\""},
	{&segsize, "16M", "unknown unit \"M\""},
};

START_TEST(test_size_rejects)
{
	uint64_t	v = 42;
	WalsimError err;

	ck_assert(!parse_size("rate=", bad_sizes[_i].text, bad_sizes[_i].syntax, &v, &err));
	ck_assert_msg(strstr(err.message, bad_sizes[_i].message) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_sizes[_i].text, err.message,
				  bad_sizes[_i].message);
	ck_assert_uint_eq(v, 42);
}
END_TEST

/* A size limit below the type's. */
START_TEST(test_size_max)
{
	static const SizeSyntax small = {"k", true, 4096};
	uint64_t	v;
	WalsimError err;

	ck_assert(parse_size("--buf", "4k", &small, &v, &err));
	ck_assert_uint_eq(v, 4096);
	ck_assert(!parse_size("--buf", "5k", &small, &v, &err));
	ck_assert_str_eq(err.message, "--buf \"5k\": number too large (at most 4096 bytes)");
	ck_assert(!parse_size("--buf", "4097", &small, &v, &err));
}
END_TEST

/* Long input is quoted in part, and a NULL err is allowed. */
START_TEST(test_long_input)
{
	char		text[600];
	uint64_t	v;
	WalsimError err;

	memset(text, '9', sizeof(text) - 2);
	text[sizeof(text) - 2] = 'x';
	text[sizeof(text) - 1] = '\0';
	ck_assert(!parse_u64("--n", text, 0, 10, &v, &err));
	ck_assert_uint_lt(strlen(err.message), WALSIM_ERROR_MAX);
	ck_assert(strncmp(err.message, "--n \"999", 8) == 0);
	ck_assert(!parse_duration("--n", text, &timeout_ms, &v, NULL));
	ck_assert(!parse_size("--n", text, &rate, &v, NULL));
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite	   *s = suite_create("parse");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_integers);
	tcase_add_loop_test(tc, test_u64_rejects, 0, (int) (sizeof(bad_u64) / sizeof(bad_u64[0])));
	tcase_add_test(tc, test_other_rejects);
	tcase_add_test(tc, test_doubles);
	tcase_add_test(tc, test_bools);
	tcase_add_loop_test(tc, test_duration_accepts, 0,
						(int) (sizeof(good_durations) / sizeof(good_durations[0])));
	tcase_add_loop_test(tc, test_duration_rejects, 0,
						(int) (sizeof(bad_durations) / sizeof(bad_durations[0])));
	tcase_add_loop_test(tc, test_size_accepts, 0, (int) (sizeof(good_sizes) / sizeof(good_sizes[0])));
	tcase_add_loop_test(tc, test_size_rejects, 0, (int) (sizeof(bad_sizes) / sizeof(bad_sizes[0])));
	tcase_add_test(tc, test_size_max);
	tcase_add_test(tc, test_long_input);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(parse_suite());
}
