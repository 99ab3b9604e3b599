/*
 * test_json.c — the JSON writer: escaping, numbers, nesting, the bounded
 * form's cut and the stream form's flushes, and the exact bytes of a
 * walsim-netd trace line (its trace format must not change).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/json.h"
#include "unit_support.h"

START_TEST(test_members)
{
	char		buf[512];
	JsonBuf		j;

	json_init(&j, buf, sizeof(buf));
	json_object_begin(&j, NULL);
	json_str(&j, "s", "text");
	json_u64(&j, "u", UINT64_MAX);
	json_i64(&j, "i", INT64_MIN);
	json_i64(&j, "zero", 0);
	json_bool(&j, "t", true);
	json_bool(&j, "f", false);
	json_null(&j, "n");
	json_str(&j, "nullstr", NULL);
	json_lsn(&j, "lsn", UINT64_C(0x16B374D848));
	json_double(&j, "g", 0.25, 6);
	json_fixed(&j, "f3", 1.5, 3);
	json_double(&j, "inf", 1.0 / 0.0, 6);
	json_member_raw(&j, "raw", "[1,2]");
	json_object_end(&j);
	ck_assert_str_eq(buf, "{\"s\":\"text\",\"u\":18446744073709551615,"
					 "\"i\":-9223372036854775808,\"zero\":0,\"t\":true,\"f\":false,"
					 "\"n\":null,\"nullstr\":null,\"lsn\":\"16/B374D848\",\"g\":0.25,"
					 "\"f3\":1.500,\"inf\":null,\"raw\":[1,2]}");
	ck_assert_uint_eq(j.len, strlen(buf));
	ck_assert(!j.overflow);
}
END_TEST

START_TEST(test_nesting)
{
	char		buf[256];
	JsonBuf		j;

	json_init(&j, buf, sizeof(buf));
	json_object_begin(&j, NULL);
	json_array_begin(&j, "a");
	json_u64(&j, NULL, 1);
	json_str(&j, NULL, "x");
	json_object_begin(&j, NULL);
	json_object_end(&j);
	json_array_begin(&j, NULL);
	json_array_end(&j);
	json_array_end(&j);
	json_object_begin(&j, "o");
	json_bool(&j, "k", true);
	json_object_end(&j);
	json_u64(&j, "after", 2);
	json_object_end(&j);
	ck_assert_str_eq(buf, "{\"a\":[1,\"x\",{},[]],\"o\":{\"k\":true},\"after\":2}");
}
END_TEST

START_TEST(test_escaping)
{
	char		buf[256];
	JsonBuf		j;
	const uint8_t raw[] = {'a', '"', 0x00, 0x7F, 0xC3, 0xA9, '\\'};

	json_init(&j, buf, sizeof(buf));
	json_escape(&j, "q\"b\\n\nt\tc\x01 é");
	ck_assert_str_eq(buf, "\"q\\\"b\\\\n\\u000at\\u0009c\\u0001 é\"");

	/* raw bytes: NUL and 0x7F and above escaped (Latin-1) */
	json_init(&j, buf, sizeof(buf));
	json_bytes(&j, NULL, raw, sizeof(raw));
	ck_assert_str_eq(buf, "\"a\\\"\\u0000\\u007f\\u00c3\\u00a9\\\\\"");

	json_init(&j, buf, sizeof(buf));
	json_hex(&j, "h", raw, 4);
	ck_assert_str_eq(buf, "\"h\":\"6122007f\"");
}
END_TEST

/* A bounded buffer cuts and says so, never writes past cap, stays a string. */
START_TEST(test_bounded_cut)
{
	char		buf[16];
	JsonBuf		j;

	memset(buf, 'X', sizeof(buf));
	json_init(&j, buf, 10);
	json_str(&j, "key", "a long value");
	ck_assert(j.overflow);
	ck_assert_uint_eq(j.len, 9);
	ck_assert_str_eq(buf, "\"key\":\"a ");
	ck_assert_int_eq(buf[10], 'X');
	json_u64(&j, "more", 1);
	ck_assert_uint_eq(j.len, 9);

	/* cap 0 writes nothing at all */
	json_init(&j, buf, 0);
	json_str(&j, "k", "v");
	ck_assert_uint_eq(j.len, 0);
	ck_assert_int_eq(buf[0], '"');
}
END_TEST

/* max_string cuts a value (not inside a UTF-8 sequence) and marks it. */
START_TEST(test_max_string)
{
	char		buf[64];
	JsonBuf		j;

	json_init(&j, buf, sizeof(buf));
	j.max_string = 4;
	json_str(&j, NULL, "abcdef");
	json_str(&j, NULL, "abcd");
	json_str(&j, NULL, "abcé");	/* é is 2 bytes: cut before it */
	ck_assert_str_eq(buf, "\"abcd...\",\"abcd\",\"abc...\"");
	ck_assert(!j.overflow);
}
END_TEST

/* The stream form writes everything through a small buffer. */
START_TEST(test_stream)
{
	char	   *text = NULL;
	size_t		len = 0;
	FILE	   *mem = open_memstream(&text, &len);
	char		buf[8];
	char		big[300];
	JsonBuf		j;

	ck_assert_ptr_nonnull(mem);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_init_stream(&j, buf, sizeof(buf), mem);
	json_object_begin(&j, NULL);
	json_str(&j, "big", big);
	json_u64(&j, "n", 1234567890);
	json_object_end(&j);
	ck_assert(json_flush(&j));
	ck_assert(!j.overflow);
	fclose(mem);
	ck_assert_uint_eq(len, strlen(big) + 25);
	ck_assert(strncmp(text, "{\"big\":\"zzz", 11) == 0);
	ck_assert_str_eq(text + len - 17, "\",\"n\":1234567890}");
	free(text);
}
END_TEST

/*
 * The bytes of a walsim-netd trace line as trace.c wrote it before the
 * writer moved here (trace_begin: raw "{", seq, t_ns, seed, event; fields;
 * trace_end: "}"), including the member-by-hand style of conn stats.
 */
START_TEST(test_netd_trace_bytes)
{
	char		buf[512];
	JsonBuf		j;

	json_init(&j, buf, sizeof(buf));
	json_raw(&j, "{");
	json_u64(&j, "seq", 7);
	json_u64(&j, "t_ns", UINT64_C(1234567890123));
	json_u64(&j, "seed", 42);
	json_str(&j, "event", "fault");
	json_str(&j, "rule", "f1");
	json_str(&j, "sql", "START_REPLICATION 0/3000000 TIMELINE 1\n");
	json_lsn(&j, "lsn", UINT64_C(0x3000000));
	json_i64(&j, "bit", -1);
	json_member_raw(&j, "fault", "{\"id\":\"f1\"}");
	json_raw(&j, ",");
	json_escape(&j, "up");
	json_raw(&j, ":{");
	j.first = true;
	json_u64(&j, "bytes_in", 0);
	json_raw(&j, "}");
	j.first = false;
	json_raw(&j, "}");
	ck_assert_str_eq(buf, "{\"seq\":7,\"t_ns\":1234567890123,\"seed\":42,\"event\":\"fault\","
					 "\"rule\":\"f1\",\"sql\":\"START_REPLICATION 0/3000000 TIMELINE 1\\u000a\","
					 "\"lsn\":\"0/3000000\",\"bit\":-1,\"fault\":{\"id\":\"f1\"},"
					 "\"up\":{\"bytes_in\":0}}");
}
END_TEST

static Suite *
json_suite(void)
{
	Suite	   *s = suite_create("json");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_members);
	tcase_add_test(tc, test_nesting);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_bounded_cut);
	tcase_add_test(tc, test_max_string);
	tcase_add_test(tc, test_stream);
	tcase_add_test(tc, test_netd_trace_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(json_suite());
}
