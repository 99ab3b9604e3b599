/*
 * test_receiver_verify.c — the receiver's verification wrapper
 * (ref/receiver/verify.c) over real PostgreSQL 15 WAL (tests/data/wal:
 * three 1 MB segments, the second ending with XLOG_SWITCH).  The event log
 * is ref/lib's (test_events.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "../../ref/receiver/verify.h"
#include "unit_support.h"

#define SEG (UINT32_C(1) << 20)
#define SEG9_LSN UINT64_C(0x900000)

static uint8_t *wal;			/* segments 9, A, B back to back */

static void
setup(void)
{
	wal = unit_load_test_wal();
}

static void
teardown(void)
{
	free(wal);
}

static void
begin(StreamVerifier *v, bool enabled)
{
	WalsimError err;

	ck_assert_msg(verifier_begin(v, enabled, SEG9_LSN, SEG, 0, 15, &err), "%s", err.message);
}

START_TEST(test_safe_end_follows_records)
{
	StreamVerifier v;
	uint64_t	prev = 0;

	begin(&v, true);
	/* fed in odd pieces, the safe end never passes what arrived and never goes back */
	for (size_t off = 0; off < 2 * (size_t) SEG;)
	{
		size_t		n = 7919;
		uint64_t	safe;

		if (off + n > 2 * (size_t) SEG)
			n = 2 * (size_t) SEG - off;
		ck_assert_msg(verifier_feed(&v, wal + off, n), "at %zu: %s", off, v.message);
		off += n;
		safe = verifier_safe_end(&v, SEG9_LSN + off);
		ck_assert_uint_le(safe, SEG9_LSN + off);
		ck_assert_uint_ge(safe, prev);
		prev = safe;
	}
	/* segment A ends with XLOG_SWITCH: everything up to 0/B00000 is verified */
	ck_assert_uint_eq(verifier_safe_end(&v, UINT64_C(0xB00000)), UINT64_C(0xB00000));
	/* a smaller "received" caps it */
	ck_assert_uint_eq(verifier_safe_end(&v, UINT64_C(0xA00000)), UINT64_C(0xA00000));
	ck_assert_uint_eq(v.fed_end, UINT64_C(0xB00000));
	verifier_end(&v);
	verifier_end(&v);
}
END_TEST

START_TEST(test_segment_end_not_verified_by_itself)
{
	StreamVerifier v;

	/* segment 9's last record continues into A: its end is not safe yet */
	begin(&v, true);
	ck_assert(verifier_feed(&v, wal, SEG));
	ck_assert_uint_lt(verifier_safe_end(&v, SEG9_LSN + SEG), SEG9_LSN + SEG);
	ck_assert_uint_ge(verifier_safe_end(&v, SEG9_LSN + SEG), UINT64_C(0x9FFE38));
	verifier_end(&v);
}
END_TEST

START_TEST(test_bit_flip_detected)
{
	StreamVerifier v;
	uint64_t	flip_lsn = UINT64_C(0xA40123);
	char		text[LSN_TEXT_MAX];

	wal[flip_lsn - SEG9_LSN] ^= 0x10;
	begin(&v, true);
	ck_assert(verifier_feed(&v, wal, SEG));
	ck_assert(!verifier_feed(&v, wal + SEG, SEG));
	ck_assert(v.failed);
	ck_assert_int_ne(v.status, WAL_READ_NEED_DATA);
	/* the bad record starts at or before the flipped byte, the good WAL ends before it */
	ck_assert_uint_le(v.fail_lsn, flip_lsn);
	ck_assert_uint_le(v.valid_end, v.fail_lsn);
	ck_assert_uint_le(verifier_safe_end(&v, UINT64_C(0xB00000)), v.fail_lsn);
	lsn_format(v.fail_lsn, text);
	ck_assert_msg(strlen(v.message) > 0, "no message");
	/* once failed, it stays failed */
	ck_assert(!verifier_feed(&v, wal + 2 * (size_t) SEG, 100));
	verifier_end(&v);
}
END_TEST

START_TEST(test_zeroed_tail_is_a_failure)
{
	StreamVerifier v;

	/* segment B ends in zeros at 0/B011A8: a sender never sends that */
	begin(&v, true);
	ck_assert(verifier_feed(&v, wal, 2 * (size_t) SEG));
	ck_assert(!verifier_feed(&v, wal + 2 * (size_t) SEG, SEG));
	ck_assert_int_eq(v.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(v.valid_end, UINT64_C(0xB011A8));
	verifier_end(&v);
}
END_TEST

START_TEST(test_disabled_accepts_everything)
{
	StreamVerifier v;
	static const uint8_t junk[100] = {0xFF};

	begin(&v, false);
	ck_assert(verifier_feed(&v, junk, sizeof(junk)));
	ck_assert_uint_eq(verifier_safe_end(&v, 12345), 12345);
	ck_assert_uint_eq(v.fed_end, SEG9_LSN + sizeof(junk));
	verifier_end(&v);
}
END_TEST

START_TEST(test_unknown_major)
{
	StreamVerifier v;
	WalsimError err;

	ck_assert(!verifier_begin(&v, true, SEG9_LSN, SEG, 0, 99, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "major version 99"));
	ck_assert_ptr_nonnull(strstr(err.message, "--no-verify"));
	/* disabled verification does not care */
	ck_assert(verifier_begin(&v, false, SEG9_LSN, SEG, 0, 99, &err));
}
END_TEST

START_TEST(test_wrong_system_identifier)
{
	StreamVerifier v;
	WalsimError err;

	ck_assert(verifier_begin(&v, true, SEG9_LSN, SEG, UINT64_C(12345), 15, &err));
	ck_assert(!verifier_feed(&v, wal, 8192));
	ck_assert_int_eq(v.status, WAL_READ_BAD_PAGE_HEADER);
	ck_assert_uint_eq(v.fail_lsn, SEG9_LSN);
	verifier_end(&v);
}
END_TEST

static Suite *
verify_suite(void)
{
	Suite	   *s = suite_create("receiver_verify");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_safe_end_follows_records);
	tcase_add_test(tc, test_segment_end_not_verified_by_itself);
	tcase_add_test(tc, test_bit_flip_detected);
	tcase_add_test(tc, test_zeroed_tail_is_a_failure);
	tcase_add_test(tc, test_disabled_accepts_everything);
	tcase_add_test(tc, test_unknown_major);
	tcase_add_test(tc, test_wrong_system_identifier);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(verify_suite());
}
