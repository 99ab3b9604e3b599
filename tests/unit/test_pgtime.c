/*
 * test_pgtime.c — PostgreSQL timestamps (µs since 2000-01-01 UTC).
 */
#include <check.h>
#include <stdint.h>
#include <time.h>

#include "walsim/pgtime.h"
#include "unit_support.h"

START_TEST(test_epochs)
{
	/* 2000-01-01 00:00:00 UTC is 946684800 in Unix time and 0 for PostgreSQL */
	ck_assert_int_eq(pg_timestamp_from_unix(946684800, 0), 0);
	ck_assert_int_eq(pg_timestamp_from_unix(0, 0), -INT64_C(946684800000000));
	ck_assert_int_eq(pg_timestamp_to_unix_usec(0), INT64_C(946684800000000));
	/* SELECT extract(epoch from '2026-11-26 21:40:00.123456+00'::timestamptz) */
	ck_assert_int_eq(pg_timestamp_from_unix(1795729200, 123456),
					 (INT64_C(1795729200) - INT64_C(946684800)) * 1000000 + 123456);
	ck_assert_int_eq(pg_timestamp_from_unix_usec(INT64_C(946684800000001)), 1);
}
END_TEST

START_TEST(test_round_trip)
{
	int64_t		samples[] = {0, 1, -1, 999999, -999999, 1000000, -1000001,
		INT64_C(848000000000000), -INT64_C(946684800000000) - 7};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
	{
		PgTimestamp ts = samples[i];
		struct timespec t = pg_timestamp_to_timespec(ts);

		ck_assert_int_ge(t.tv_nsec, 0);
		ck_assert_int_lt(t.tv_nsec, 1000000000L);
		ck_assert_int_eq(t.tv_nsec % 1000, 0);
		ck_assert_int_eq(pg_timestamp_from_unix((int64_t) t.tv_sec,
												(int32_t) (t.tv_nsec / 1000)), ts);
		ck_assert_int_eq(pg_timestamp_from_unix_usec(pg_timestamp_to_unix_usec(ts)), ts);
	}
}
END_TEST

START_TEST(test_negative_timespec)
{
	/* 1999-12-31 23:59:59.5 UTC: half a second before the PostgreSQL epoch */
	struct timespec t = pg_timestamp_to_timespec(-500000);

	ck_assert_int_eq((int64_t) t.tv_sec, INT64_C(946684799));
	ck_assert_int_eq(t.tv_nsec, 500000000L);
	/* before the Unix epoch as well */
	t = pg_timestamp_to_timespec(pg_timestamp_from_unix(-2, 250000));
	ck_assert_int_eq((int64_t) t.tv_sec, -2);
	ck_assert_int_eq(t.tv_nsec, 250000000L);
}
END_TEST

START_TEST(test_now)
{
	struct timespec before, after;
	PgTimestamp ts;

	clock_gettime(CLOCK_REALTIME, &before);
	ts = pg_timestamp_now();
	clock_gettime(CLOCK_REALTIME, &after);
	ck_assert_int_ge(ts, pg_timestamp_from_unix(before.tv_sec, (int32_t) (before.tv_nsec / 1000)));
	ck_assert_int_le(ts, pg_timestamp_from_unix(after.tv_sec, (int32_t) (after.tv_nsec / 1000)));
	/* it is after 2020-01-01 (631152000 s after the PostgreSQL epoch) */
	ck_assert_int_gt(ts, INT64_C(631152000) * 1000000);
}
END_TEST

START_TEST(test_diff_ms)
{
	ck_assert_int_eq(pg_timestamp_diff_ms(0, 10000000), 10000);
	ck_assert_int_eq(pg_timestamp_diff_ms(10000000, 0), -10000);
	ck_assert_int_eq(pg_timestamp_diff_ms(0, 999), 0);
}
END_TEST

static Suite *
pgtime_suite(void)
{
	Suite	   *s = suite_create("pgtime");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_epochs);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_negative_timespec);
	tcase_add_test(tc, test_now);
	tcase_add_test(tc, test_diff_ms);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(pgtime_suite());
}
