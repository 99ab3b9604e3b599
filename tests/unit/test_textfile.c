/*
 * test_textfile.c — reading a whole file or stream into memory: the bytes
 * as they are (NULs included) with a NUL after them, streams longer than
 * one read, the size limit, and read errors.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walsim/textfile.h"
#include "unit_support.h"

START_TEST(test_reads_everything)
{
	FILE	   *f = tmpfile();
	char	   *text;
	size_t		len;
	WalsimError err;
	static const char data[] = "line 1\nbinary\0byte\n";

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, sizeof(data) - 1, f), sizeof(data) - 1);
	rewind(f);
	ck_assert_msg(textfile_read(f, "t", 1024, &text, &len, &err), "%s", err.message);
	ck_assert_uint_eq(len, sizeof(data) - 1);
	ck_assert(memcmp(text, data, len) == 0);
	ck_assert_int_eq(text[len], '\0');
	free(text);

	/* an empty stream is an empty string */
	rewind(f);
	ck_assert_int_eq(ftruncate(fileno(f), 0), 0);
	ck_assert(textfile_read(f, "t", 1024, &text, &len, &err));
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(text, "");
	free(text);
	fclose(f);
}
END_TEST

START_TEST(test_large_and_limited)
{
	FILE	   *f = tmpfile();
	char	   *text;
	size_t		len;
	WalsimError err;
	size_t		size = 300 * 1000 + 7;	/* several reads and reallocations */

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < size; i++)
		fputc('a' + (int) (i % 26), f);
	rewind(f);
	ck_assert(textfile_read(f, "big", size, &text, &len, &err));
	ck_assert_uint_eq(len, size);
	ck_assert_int_eq(text[size - 1], 'a' + (int) ((size - 1) % 26));
	ck_assert_int_eq(text[size], '\0');
	free(text);

	rewind(f);
	text = NULL;
	ck_assert(!textfile_read(f, "big", size - 1, &text, &len, &err));
	ck_assert_str_eq(err.message, "\"big\": larger than 300006 bytes");
	ck_assert_ptr_null(text);
	fclose(f);
}
END_TEST

START_TEST(test_read_error)
{
	FILE	   *f = fopen("/tmp", "r");
	char	   *text = NULL;
	size_t		len;
	WalsimError err;

	ck_assert_ptr_nonnull(f);
	ck_assert(!textfile_read(f, "/tmp", 1024, &text, &len, &err));
	ck_assert_str_eq(err.message, "could not read \"/tmp\": Is a directory");
	ck_assert_ptr_null(text);
	fclose(f);
}
END_TEST

static Suite *
textfile_suite(void)
{
	Suite	   *s = suite_create("textfile");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_reads_everything);
	tcase_add_test(tc, test_large_and_limited);
	tcase_add_test(tc, test_read_error);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(textfile_suite());
}
