/*
 * test_lsn.c — LSN text as PostgreSQL's pg_lsn type reads and writes it.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "walsim/lsn.h"
#include "unit_support.h"

START_TEST(test_parse_examples)
{
	uint64_t	lsn;
	WalsimError err;

	ck_assert(lsn_parse("0/3025A70", &lsn, &err));
	ck_assert_uint_eq(lsn, UINT64_C(0x3025A70));
	ck_assert(lsn_parse("16/B374D848", &lsn, &err));
	ck_assert_uint_eq(lsn, UINT64_C(0x16B374D848));
	ck_assert(lsn_parse("0/0", &lsn, &err));
	ck_assert_uint_eq(lsn, 0);
	ck_assert(lsn_parse("FFFFFFFF/FFFFFFFF", &lsn, &err));
	ck_assert_uint_eq(lsn, UINT64_MAX);
	/* pg_lsn accepts lower case and leading zeros */
	ck_assert(lsn_parse("00000001/000000ab", &lsn, &err));
	ck_assert_uint_eq(lsn, UINT64_C(0x1000000AB));
}
END_TEST

START_TEST(test_format_examples)
{
	char		buf[LSN_TEXT_MAX];

	lsn_format(UINT64_C(0x3025A70), buf);
	ck_assert_str_eq(buf, "0/3025A70");
	lsn_format(0, buf);
	ck_assert_str_eq(buf, "0/0");
	lsn_format(UINT64_MAX, buf);
	ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");
	ck_assert_uint_eq(strlen(buf) + 1, LSN_TEXT_MAX);
	lsn_format(UINT64_C(0x100000000), buf);
	ck_assert_str_eq(buf, "1/0");
}
END_TEST

START_TEST(test_round_trip)
{
	/* a spread of values across both halves, including boundaries */
	uint64_t	v = 1;

	for (int i = 0; i < 2000; i++)
	{
		char		buf[LSN_TEXT_MAX];
		uint64_t	back = ~v;

		lsn_format(v, buf);
		ck_assert_msg(lsn_parse(buf, &back, NULL), "%s", buf);
		ck_assert_uint_eq(back, v);
		v = v * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
		if (i % 3 == 0)
			v >>= (i % 64);
	}
}
END_TEST

/* each malformed text with a fragment its message must contain */
static const struct
{
	const char *text;
	const char *reason;
}			bad_lsns[] = {
	{"", "high half is empty"},
	{"/", "high half is empty"},
	{"/0", "high half is empty"},
	{"0/", "low half is empty"},
	{"0", "missing '/'"},
	{"123456789/0", "more than 8 hex digits"},
	{"0/123456789", "more than 8 hex digits"},
	{"0/ZZ", "low half is empty"},
	{"0/1Z", "unexpected character 'Z' at offset 3"},
	{"G/0", "unexpected character 'G'"},
	{"-1/0", "unexpected character '-'"},
	{"+1/0", "unexpected character '+'"},
	{"0/-1", "unexpected character '-'"},
	{" 0/0", "unexpected character ' '"},
	{"0/0 ", "unexpected character ' ' at offset 3"},
	{"0 /0", "expected '/' at offset 1"},
	{"0/ 0", "low half is empty"},
	{"0x1/0", "expected '/' at offset 1"},
	{"0/0/0", "unexpected character '/' at offset 3"},
	{"0:0", "expected '/' at offset 1"},
	{"0/0\n", "unexpected character"},
};

START_TEST(test_reject_malformed)
{
	uint64_t	lsn = UINT64_C(0x1234);
	WalsimError err;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(!lsn_parse(bad_lsns[_i].text, &lsn, &err), "accepted \"%s\"",
				  bad_lsns[_i].text);
	ck_assert_msg(strstr(err.message, bad_lsns[_i].reason) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_lsns[_i].text,
				  err.message, bad_lsns[_i].reason);
	/* the text itself is named */
	ck_assert_msg(strstr(err.message, "LSN \"") == err.message, "%s", err.message);
	/* the output is untouched on failure */
	ck_assert_uint_eq(lsn, UINT64_C(0x1234));
	/* and a NULL error is allowed */
	ck_assert(!lsn_parse(bad_lsns[_i].text, &lsn, NULL));
}
END_TEST

START_TEST(test_null_text)
{
	uint64_t	lsn;
	WalsimError err;

	ck_assert(!lsn_parse(NULL, &lsn, &err));
	ck_assert_str_eq(err.message, "LSN: no text");
}
END_TEST

START_TEST(test_arithmetic)
{
	uint64_t	r;
	WalsimError err;

	ck_assert(lsn_add(UINT64_C(0xFFFFFFFF), 1, &r, &err));
	ck_assert_uint_eq(r, UINT64_C(0x100000000));
	ck_assert(lsn_add(UINT64_MAX - 5, 5, &r, &err));
	ck_assert_uint_eq(r, UINT64_MAX);
	r = 7;
	ck_assert(!lsn_add(UINT64_MAX - 5, 6, &r, &err));
	ck_assert_uint_eq(r, 7);
	ck_assert_ptr_nonnull(strstr(err.message, "FFFFFFFF/FFFFFFFA + 6 bytes passes"));

	ck_assert(lsn_diff(UINT64_C(0x3000000), UINT64_C(0x3025A70), &r, &err));
	ck_assert_uint_eq(r, 0x25A70);
	ck_assert(lsn_diff(5, 5, &r, &err));
	ck_assert_uint_eq(r, 0);
	ck_assert(!lsn_diff(UINT64_C(0x3025A70), UINT64_C(0x3000000), &r, &err));
	ck_assert_str_eq(err.message, "LSN 0/3000000 is before LSN 0/3025A70");

	ck_assert_uint_eq(lsn_hi(UINT64_C(0x16B374D848)), 0x16);
	ck_assert_uint_eq(lsn_lo(UINT64_C(0x16B374D848)), 0xB374D848);
	ck_assert_uint_eq(lsn_align_down(UINT64_C(0x3025A70), 8192), UINT64_C(0x3024000));
	ck_assert_uint_eq(lsn_align_up(UINT64_C(0x3025A70), 8192), UINT64_C(0x3026000));
	ck_assert_uint_eq(lsn_align_up(UINT64_C(0x3026000), 8192), UINT64_C(0x3026000));
}
END_TEST

static Suite *
lsn_suite(void)
{
	Suite	   *s = suite_create("lsn");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_examples);
	tcase_add_test(tc, test_format_examples);
	tcase_add_test(tc, test_round_trip);
	tcase_add_loop_test(tc, test_reject_malformed, 0,
						(int) (sizeof(bad_lsns) / sizeof(bad_lsns[0])));
	tcase_add_test(tc, test_null_text);
	tcase_add_test(tc, test_arithmetic);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(lsn_suite());
}
