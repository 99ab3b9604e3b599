/*
 * test_segment.c — WAL segment geometry and file names.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "unit_support.h"

#define MB (UINT32_C(1) << 20)
#define GB (UINT32_C(1) << 30)

START_TEST(test_size_validity)
{
	WalsimError err;

	for (int shift = 20; shift <= 30; shift++)
	{
		ck_assert(wal_segment_size_valid(UINT64_C(1) << shift));
		ck_assert(wal_segment_size_check(UINT64_C(1) << shift, &err));
	}
	ck_assert(!wal_segment_size_valid(0));
	ck_assert(!wal_segment_size_valid(MB / 2));
	ck_assert(!wal_segment_size_valid(UINT64_C(2) * GB));
	ck_assert(!wal_segment_size_valid(3 * MB));
	ck_assert(!wal_segment_size_valid(16 * MB + 1));

	ck_assert(!wal_segment_size_check(3 * MB, &err));
	ck_assert_str_eq(err.message, "WAL segment size 3145728 bytes: not a power of two");
	ck_assert(!wal_segment_size_check(MB / 2, &err));
	ck_assert_str_eq(err.message, "WAL segment size 524288 bytes: must be between 1 MB and 1 GB");
	ck_assert(!wal_segment_size_check(UINT64_C(1) << 31, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "between 1 MB and 1 GB"));
}
END_TEST

START_TEST(test_postgres_example)
{
	/* pg_walfile_name('0/3025A70') on timeline 1 with 16 MB segments */
	char		name[WAL_FILE_NAME_MAX];
	uint64_t	lsn;
	uint64_t	segno;

	ck_assert(lsn_parse("0/3025A70", &lsn, NULL));
	segno = wal_segno_of(lsn, 16 * MB);
	ck_assert_uint_eq(segno, 3);
	wal_segment_name(name, 1, segno, 16 * MB);
	ck_assert_str_eq(name, "000000010000000000000003");
	ck_assert_uint_eq(wal_segment_offset(lsn, 16 * MB), 0x25A70);
	ck_assert_uint_eq(wal_segno_to_lsn(segno, 0x25A70, 16 * MB), lsn);
	wal_partial_name(name, 1, segno, 16 * MB);
	ck_assert_str_eq(name, "000000010000000000000003.partial");
}
END_TEST

START_TEST(test_names_by_size)
{
	char		name[WAL_FILE_NAME_MAX];

	/* 16 MB: 256 segments per xlogid; 1/0 is segment 256 */
	ck_assert_uint_eq(wal_segments_per_xlogid(16 * MB), 256);
	wal_segment_name(name, 1, wal_segno_of(UINT64_C(0x100000000), 16 * MB), 16 * MB);
	ck_assert_str_eq(name, "000000010000000100000000");
	wal_segment_name(name, 1, 255, 16 * MB);
	ck_assert_str_eq(name, "0000000100000000000000FF");

	/* 1 MB: 4096 segments per xlogid; 1/100000 is segment 0x1001 */
	ck_assert_uint_eq(wal_segments_per_xlogid(MB), 4096);
	wal_segment_name(name, 1, wal_segno_of(UINT64_C(0x100100000), MB), MB);
	ck_assert_str_eq(name, "000000010000000100000001");
	wal_segment_name(name, 2, 4095, MB);
	ck_assert_str_eq(name, "000000020000000000000FFF");

	/* 1 GB: 4 segments per xlogid; 1/40000000 is segment 5 */
	ck_assert_uint_eq(wal_segments_per_xlogid(GB), 4);
	ck_assert_uint_eq(wal_segno_of(UINT64_C(0x140000000), GB), 5);
	wal_segment_name(name, 1, 5, GB);
	ck_assert_str_eq(name, "000000010000000100000001");
	wal_segment_name(name, 0xABCDEF12, 3, GB);
	ck_assert_str_eq(name, "ABCDEF120000000000000003");

	/* the very last segment */
	wal_segment_name(name, 1, wal_segno_of(UINT64_MAX, 16 * MB), 16 * MB);
	ck_assert_str_eq(name, "00000001FFFFFFFF000000FF");
}
END_TEST

START_TEST(test_prev_segment)
{
	/* a record ending exactly at a segment boundary belongs to the previous one */
	ck_assert_uint_eq(wal_segno_of_prev(UINT64_C(0x4000000), 16 * MB), 3);
	ck_assert_uint_eq(wal_segno_of(UINT64_C(0x4000000), 16 * MB), 4);
	ck_assert_uint_eq(wal_segno_of_prev(UINT64_C(0x4000001), 16 * MB), 4);
}
END_TEST

START_TEST(test_history_name)
{
	char		name[WAL_FILE_NAME_MAX];

	wal_history_name(name, 2);
	ck_assert_str_eq(name, "00000002.history");
	wal_history_name(name, 0x1A);
	ck_assert_str_eq(name, "0000001A.history");
}
END_TEST

START_TEST(test_name_round_trip)
{
	static const uint32_t sizes[] = {MB, 2 * MB, 16 * MB, 64 * MB, 256 * MB, GB};
	static const uint64_t lsns[] = {0, 0x3025A70, UINT64_C(0xFFFFFFFF),
		UINT64_C(0x100000000), UINT64_C(0x16B374D848), UINT64_MAX};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (size_t l = 0; l < sizeof(lsns) / sizeof(lsns[0]); l++)
		{
			char		name[WAL_FILE_NAME_MAX];
			WalFileName parsed;
			WalsimError err;
			uint64_t	segno = wal_segno_of(lsns[l], sizes[s]);

			wal_segment_name(name, 7, segno, sizes[s]);
			ck_assert_msg(wal_file_name_parse(name, sizes[s], &parsed, &err),
						  "%s: %s", name, err.message);
			ck_assert_int_eq(parsed.kind, WAL_FILE_SEGMENT);
			ck_assert_uint_eq(parsed.tli, 7);
			ck_assert_uint_eq(parsed.segno, segno);

			wal_partial_name(name, 7, segno, sizes[s]);
			ck_assert(wal_file_name_parse(name, sizes[s], &parsed, &err));
			ck_assert_int_eq(parsed.kind, WAL_FILE_PARTIAL);
			ck_assert_uint_eq(parsed.segno, segno);
		}
}
END_TEST

START_TEST(test_parse_history)
{
	WalFileName parsed;
	WalsimError err;

	ck_assert(wal_file_name_parse("0000000A.history", 16 * MB, &parsed, &err));
	ck_assert_int_eq(parsed.kind, WAL_FILE_HISTORY);
	ck_assert_uint_eq(parsed.tli, 10);
}
END_TEST

static const struct
{
	const char *name;
	uint32_t	segsize;
	const char *reason;
}			bad_names[] = {
	{"", 16 * MB, "empty"},
	{"00000001000000000000003", 16 * MB, "23 characters"},
	{"0000000100000000000000031", 16 * MB, "unknown suffix \"1\""},
	{"000000010000000000000003.partia", 16 * MB, "unknown suffix"},
	{"000000010000000000000003.gz", 16 * MB, "unknown suffix \".gz\""},
	{"000000010000000000000003.partial.gz", 16 * MB, "unknown suffix"},
	{"00000001000000000000000g", 16 * MB, "not a hex digit at offset 23"},
	{"0000000100000000000000ab", 16 * MB, "lower-case hex digit 'a' at offset 22"},
	{"00000000000000000000000A", 16 * MB, "timeline 0"},
	{"000000010000000000000100", 16 * MB, "segment field 00000100 is out of range"},
	{"000000010000000000000004", GB, "out of range for 1073741824-byte segments"},
	{"000000010000000000001000", MB, "out of range"},
	{"00000000.history", 16 * MB, "timeline 0"},
	{"0000000x.history", 16 * MB, "not a hex digit at offset 7"},
	{"0000001.history", 16 * MB, "15 characters"},
	{"00000001.History", 16 * MB, "16 characters"},
	{"pg_wal/000000010000000000000003", 16 * MB, "contains a directory"},
	{"-00000010000000000000003", 16 * MB, "not a hex digit at offset 0"},
	{" 00000010000000000000003", 16 * MB, "not a hex digit at offset 0"},
	{"000000010000000000000003", 3 * MB, "not a power of two"},
};

START_TEST(test_reject_bad_names)
{
	WalFileName parsed;
	WalsimError err;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(!wal_file_name_parse(bad_names[_i].name, bad_names[_i].segsize,
									   &parsed, &err),
				  "accepted \"%s\"", bad_names[_i].name);
	ck_assert_msg(strstr(err.message, bad_names[_i].reason) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_names[_i].name,
				  err.message, bad_names[_i].reason);
	ck_assert(!wal_file_name_parse(bad_names[_i].name, bad_names[_i].segsize,
								   &parsed, NULL));
}
END_TEST

START_TEST(test_null_name)
{
	WalFileName parsed;
	WalsimError err;

	ck_assert(!wal_file_name_parse(NULL, 16 * MB, &parsed, &err));
	ck_assert_str_eq(err.message, "WAL file name: empty");
}
END_TEST

START_TEST(test_size_text)
{
	uint32_t	size = 0;
	WalsimError err;
	char		buf[16];

	ck_assert(wal_segment_size_parse("16MB", &size, &err));
	ck_assert_uint_eq(size, 16 * MB);
	ck_assert(wal_segment_size_parse("1GB", &size, &err));
	ck_assert_uint_eq(size, GB);
	ck_assert(wal_segment_size_parse("1MB", &size, &err));
	ck_assert_uint_eq(size, MB);
	ck_assert(wal_segment_size_parse("1024kB", &size, &err));
	ck_assert_uint_eq(size, MB);

	for (int shift = 20; shift <= 30; shift++)
	{
		uint32_t	back = 0;

		wal_segment_size_format(UINT32_C(1) << shift, buf);
		ck_assert_msg(wal_segment_size_parse(buf, &back, &err), "%s", err.message);
		ck_assert_uint_eq(back, UINT32_C(1) << shift);
	}
	wal_segment_size_format(16 * MB, buf);
	ck_assert_str_eq(buf, "16MB");
	wal_segment_size_format(GB, buf);
	ck_assert_str_eq(buf, "1GB");
	wal_segment_size_format(512 * 1024, buf);
	ck_assert_str_eq(buf, "512kB");
}
END_TEST

static const struct
{
	const char *text;
	const char *reason;
}			bad_sizes[] = {
	{"", "expected a number"},
	{"MB", "expected a number"},
	{"-16MB", "expected a number"},
	{"16", "unknown unit \"\""},
	{"16 MB", "unknown unit \" MB\""},
	{"16mb", "unknown unit \"mb\""},
	{"16MBx", "unknown unit \"MBx\""},
	{"16TB", "unknown unit"},
	{"3MB", "not a power of two"},
	{"2GB", "between 1 MB and 1 GB"},
	{"512kB", "between 1 MB and 1 GB"},
	{"0MB", "between 1 MB and 1 GB"},
	{"99999999999MB", "between 1 MB and 1 GB"},
	{"99999999999999999999MB", "number too large"},
	{"4294967296kB", "between 1 MB and 1 GB"},
};

START_TEST(test_size_text_rejects)
{
	uint32_t	size = 42;
	WalsimError err;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(!wal_segment_size_parse(bad_sizes[_i].text, &size, &err),
				  "accepted \"%s\"", bad_sizes[_i].text);
	ck_assert_msg(strstr(err.message, bad_sizes[_i].reason) != NULL,
				  "\"%s\": message \"%s\" lacks \"%s\"", bad_sizes[_i].text,
				  err.message, bad_sizes[_i].reason);
	ck_assert_uint_eq(size, 42);
}
END_TEST

START_TEST(test_size_text_null)
{
	uint32_t	size;
	WalsimError err;

	ck_assert(!wal_segment_size_parse(NULL, &size, &err));
	ck_assert_str_eq(err.message, "wal_segment_size: no text");
	ck_assert(!wal_segment_size_parse("3MB", &size, &err));
	ck_assert_str_eq(err.message, "wal_segment_size \"3MB\": WAL segment size 3145728 bytes: not a power of two");
}
END_TEST

static Suite *
segment_suite(void)
{
	Suite	   *s = suite_create("segment");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_size_validity);
	tcase_add_test(tc, test_postgres_example);
	tcase_add_test(tc, test_names_by_size);
	tcase_add_test(tc, test_prev_segment);
	tcase_add_test(tc, test_history_name);
	tcase_add_test(tc, test_name_round_trip);
	tcase_add_test(tc, test_parse_history);
	tcase_add_loop_test(tc, test_reject_bad_names, 0,
						(int) (sizeof(bad_names) / sizeof(bad_names[0])));
	tcase_add_test(tc, test_null_name);
	tcase_add_test(tc, test_size_text);
	tcase_add_loop_test(tc, test_size_text_rejects, 0,
						(int) (sizeof(bad_sizes) / sizeof(bad_sizes[0])));
	tcase_add_test(tc, test_size_text_null);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(segment_suite());
}
