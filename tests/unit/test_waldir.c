/*
 * test_waldir.c — the end of valid WAL in a directory of real PostgreSQL 15
 * segment files: the same end as pg_waldump, missing, short and .partial
 * files, files that grow between scans, and the file of the newer timeline
 * chosen for a timeline's first segment.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walsim/timeline.h"
#include "walsim/waldir.h"
#include "unit_support.h"

#define SEG_SIZE	(1u << 20)
/*
 * The segments in tests/data/wal and what pg_waldump found in them (the
 * "all" line of expected.txt, checked against that file in
 * test_expectations_file).  Some tests below cut segment 0B inside its
 * records; pg_waldump lists them as: 0/B00028 (76 bytes), 0/B00078 (64),
 * 0/B000B8 (34), 0/B000E0 (4066), 0/B010C8 (64), 0/B01108 (34, a commit),
 * 0/B01130 (114, the shutdown checkpoint).  Regenerating the data with
 * make-wal.sh means updating these.
 */
#define SEG9		"000000010000000000000009"
#define SEGA		"00000001000000000000000A"
#define SEGB		"00000001000000000000000B"
#define LAST_RECORD	UINT64_C(0xB01130)
#define END_OF_WAL	UINT64_C(0xB011A8)
#define RECORDS		1152
/* timeline 2's segment 0B (expected.txt, "tli2:" line): 613 records */
#define TLI2_SEGB	"00000002000000000000000B"
#define TLI2_LAST	UINT64_C(0xB376C0)
#define TLI2_END	UINT64_C(0xB37738)
#define TLI2_RECORDS (RECORDS - 7 + 613)

static char dir[256];

static void
write_file(const char *name, const uint8_t *data, size_t len)
{
	char		path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

static uint8_t *
read_data(const char *seg)
{
	char		path[1024];
	char		name[64];
	uint8_t    *buf = malloc(SEG_SIZE);
	FILE	   *f;

	snprintf(name, sizeof(name), "wal/%s", seg);
	unit_data_path(path, sizeof(path), name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_uint_eq(fread(buf, 1, SEG_SIZE, f), SEG_SIZE);
	fclose(f);
	return buf;
}

/* Copy a test segment into the scratch directory under another name. */
static void
copy_segment(const char *seg, const char *as)
{
	uint8_t    *buf = read_data(seg);

	write_file(as, buf, SEG_SIZE);
	free(buf);
}

static void
remove_file(const char *name)
{
	char		path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(unlink(path), 0);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walsim-test-waldir.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	copy_segment(SEG9, SEG9);
	copy_segment(SEGA, SEGA);
	copy_segment(SEGB, SEGB);
}

static void
teardown(void)
{
	char		cmd[512];

	/* the scratch directory holds only files this test wrote */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static WalDirConfig
config(void)
{
	WalDirConfig cfg = {
		.dir = dir,
		.tli = 1,
		.magic = 0xD110,
	};

	return cfg;
}

/* The constants above are what make-wal.sh recorded from pg_waldump */
START_TEST(test_expectations_file)
{
	char		path[1024];
	char		line[512];
	char		want[512];
	char		want2[512];
	bool		found = false;
	bool		found2 = false;
	FILE	   *f;

	unit_data_path(path, sizeof(path), "wal/expected.txt");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	snprintf(want, sizeof(want), "all 0/%08X 0/%08X %d zeroed 0/%X\n",
			 0x900000 + 0x2F0, (unsigned) LAST_RECORD, RECORDS, (unsigned) END_OF_WAL);
	snprintf(want2, sizeof(want2), "tli2:%s 0/00B00028 0/%08X 613 zeroed 0/%X\n",
			 TLI2_SEGB, (unsigned) TLI2_LAST, (unsigned) TLI2_END);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "all ", 4) == 0)
		{
			ck_assert_str_eq(line, want);
			found = true;
		}
		else if (strncmp(line, "tli2:", 5) == 0)
		{
			ck_assert_str_eq(line, want2);
			found2 = true;
		}
	fclose(f);
	ck_assert(found && found2);
}
END_TEST

/* Oldest segment and segment size found in the directory; pg_waldump's end */
START_TEST(test_find_end_like_pg_waldump)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;

	ck_assert_msg(waldir_find_end(&cfg, &res, &err), "%s", err.message);
	ck_assert_int_eq(res.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(res.seg_size, SEG_SIZE);
	ck_assert_uint_eq(res.last_record, LAST_RECORD);
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_uint_eq(res.error_lsn, END_OF_WAL);
	ck_assert_uint_eq(res.records, RECORDS);
	ck_assert_str_eq(res.stop_file, SEGB);
	ck_assert_uint_eq(res.stop_tli, 1);
	ck_assert_str_eq(res.message, "invalid record length at 0/B011A8: wanted 24, got 0 (end of WAL)");

	/* the same from an explicit start and segment size */
	cfg.start_lsn = UINT64_C(0xA00000);
	cfg.seg_size = SEG_SIZE;
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_uint_eq(res.records, 627 + 7);
}
END_TEST

/* Records reach the callback */
static void
count_records(const WalRecordInfo *rec, void *arg)
{
	uint64_t   *n = arg;

	(void) rec;
	(*n)++;
}

START_TEST(test_callback)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	uint64_t	n = 0;

	cfg.on_record = count_records;
	cfg.cb_arg = &n;
	ck_assert(waldir_find_end(&cfg, &res, NULL));
	ck_assert_uint_eq(n, RECORDS);
}
END_TEST

/* A missing segment after XLOG_SWITCH: valid up to the segment end */
START_TEST(test_missing_segment)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;

	remove_file(SEGB);
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_NEED_DATA);
	ck_assert_uint_eq(res.valid_end, UINT64_C(0xB00000));
	ck_assert_str_eq(res.stop_file, SEGB);
	ck_assert_msg(strstr(res.message, "WAL continues at 0/B00000 in segment file " SEGB ", which is not in") != NULL,
				  "%s", res.message);
}
END_TEST

/* .partial is read only when asked for */
START_TEST(test_partial_file)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	uint8_t    *b = read_data(SEGB);

	remove_file(SEGB);
	write_file(SEGB ".partial", b, SEG_SIZE);
	free(b);
	ck_assert(waldir_find_end(&cfg, &res, NULL));
	ck_assert_uint_eq(res.valid_end, UINT64_C(0xB00000));
	cfg.use_partial = true;
	ck_assert(waldir_find_end(&cfg, &res, NULL));
	ck_assert_int_eq(res.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_str_eq(res.stop_file, SEGB ".partial");
}
END_TEST

/*
 * A file that is being written: first shorter than a segment, then with
 * zeros where records will be, then complete; each scan continues from the
 * valid end and the total matches the clean reading.
 */
START_TEST(test_follow_growing_file)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;
	WalDir	   *wd;
	uint8_t    *b = read_data(SEGB);
	uint8_t    *part = calloc(1, SEG_SIZE);
	uint64_t	first_end;

	/* a short file ending inside the third record of 0B */
	write_file(SEGB, b, 0x200);
	wd = waldir_open(&cfg, &err);
	ck_assert_ptr_nonnull(wd);
	ck_assert(waldir_scan(wd, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_NEED_DATA);
	ck_assert_msg(strstr(res.message, "file " SEGB " ends at 0/B00200, before its segment does") != NULL,
				  "%s", res.message);
	first_end = res.valid_end;
	ck_assert_uint_gt(first_end, UINT64_C(0xB00000));
	ck_assert_uint_lt(first_end, UINT64_C(0xB00200));

	/*
	 * Full size, but zero after 0x1124: a pre-allocated file written up to
	 * there.  The commit record at 0/B01108 is torn, so its CRC fails.
	 */
	memcpy(part, b, 0x1124);
	write_file(SEGB, part, SEG_SIZE);
	ck_assert(waldir_scan(wd, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_BAD_CRC);
	ck_assert_uint_eq(first_end, UINT64_C(0xB000E0));
	ck_assert_uint_eq(res.valid_end, UINT64_C(0xB01108));
	ck_assert_uint_eq(res.error_lsn, res.valid_end);

	/* nothing new: the same answer again */
	{
		uint64_t	end = res.valid_end;
		uint64_t	records = res.records;

		ck_assert(waldir_scan(wd, &res, &err));
		ck_assert_uint_eq(res.valid_end, end);
		ck_assert_uint_eq(res.records, records);
	}

	/* complete */
	write_file(SEGB, b, SEG_SIZE);
	ck_assert(waldir_scan(wd, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_uint_eq(res.records, RECORDS);
	waldir_close(wd);
	free(part);
	free(b);
}
END_TEST

/*
 * Timeline 2 begins in segment 0B: its file 00000002...0B is read instead
 * of timeline 1's (here: damaged), the older segments from timeline 1.
 */
START_TEST(test_timeline_switch_segment)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;
	WalDirTimeline history[] = {
		{.tli = 1, .begin_lsn = 0},
		{.tli = 2, .begin_lsn = UINT64_C(0xB00100)},
	};
	uint8_t    *b = read_data(SEGB);

	write_file("00000002000000000000000B", b, SEG_SIZE);
	memset(b + 0x100, 0x5A, 0x1000);	/* timeline 1's copy went elsewhere */
	write_file(SEGB, b, SEG_SIZE);
	free(b);

	/* without the history timeline 1's file is read and found bad */
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_int_ne(res.status, WAL_READ_ZEROED);
	ck_assert_uint_lt(res.valid_end, END_OF_WAL);

	cfg.tli = 2;
	cfg.history = history;
	cfg.nhistory = 2;
	ck_assert_msg(waldir_find_end(&cfg, &res, &err), "%s", err.message);
	ck_assert_int_eq(res.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_str_eq(res.stop_file, "00000002000000000000000B");
	ck_assert_uint_eq(res.stop_tli, 2);
	ck_assert_uint_eq(res.records, RECORDS);

	/* the history need not list the target; timeline 3 has no files */
	cfg.tli = 3;
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_uint_eq(res.stop_tli, 2);
}
END_TEST

/*
 * The real promotion in the test data: 00000002.history says timeline 2
 * began at 0/B011A8.  With that history, segments 09 and 0A come from
 * timeline 1 and 0B from timeline 2, to the end pg_waldump found there.
 */

static void
install_tli2_segment(void)
{
	char		path[1024];
	uint8_t    *buf = calloc(1, SEG_SIZE);
	FILE	   *f;

	unit_data_path(path, sizeof(path), "wal/" TLI2_SEGB ".tli2-head");
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_uint_eq(fread(buf, 1, SEG_SIZE, f), 256 * 1024);
	fclose(f);
	write_file(TLI2_SEGB, buf, SEG_SIZE);
	free(buf);
}

START_TEST(test_real_timeline_2)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;
	TimelineHistory h;
	WalDirTimeline tl[8];
	char		path[1024];

	install_tli2_segment();
	unit_data_path(path, sizeof(path), "wal/00000002.history");
	ck_assert_msg(timeline_history_read(path, 2, &h, &err), "%s", err.message);
	ck_assert_uint_eq(h.count, 2);
	for (size_t i = 0; i < h.count; i++)
	{
		tl[i].tli = h.entries[i].tli;
		tl[i].begin_lsn = h.entries[i].begin;
	}
	ck_assert_uint_eq(tl[1].begin_lsn, END_OF_WAL);	/* the switch point */
	cfg.tli = 2;
	cfg.history = tl;
	cfg.nhistory = h.count;
	ck_assert_msg(waldir_find_end(&cfg, &res, &err), "%s", err.message);
	ck_assert_msg(res.status == WAL_READ_ZEROED, "%s", res.message);
	ck_assert_uint_eq(res.valid_end, TLI2_END);
	ck_assert_uint_eq(res.last_record, TLI2_LAST);
	ck_assert_uint_eq(res.records, TLI2_RECORDS);
	ck_assert_str_eq(res.stop_file, TLI2_SEGB);
	ck_assert_uint_eq(res.stop_tli, 2);

	/* timeline 1 alone still ends where it ended */
	cfg = config();
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_uint_eq(res.valid_end, END_OF_WAL);
	ck_assert_str_eq(res.stop_file, SEGB);

	/* timeline 2 without its history has no segment 09 */
	cfg.tli = 2;
	cfg.start_lsn = UINT64_C(0x900000);
	cfg.seg_size = SEG_SIZE;
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_NEED_DATA);
	ck_assert_str_eq(res.stop_file, "000000020000000000000009");
	timeline_history_free(&h);
}
END_TEST

START_TEST(test_bad_input)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;
	WalDirTimeline bad_history[] = {{.tli = 0, .begin_lsn = 0}};
	char		path[512];

	cfg.dir = "/nonexistent/walsim";
	ck_assert_ptr_null(waldir_open(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL directory /nonexistent/walsim: No such file or directory");
	cfg.dir = "";
	ck_assert_ptr_null(waldir_open(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL directory: no path given");
	snprintf(path, sizeof(path), "%s/%s", dir, SEG9);
	cfg.dir = path;
	ck_assert_ptr_null(waldir_open(&cfg, &err));
	ck_assert_msg(strstr(err.message, "not a directory") != NULL, "%s", err.message);

	cfg = config();
	cfg.tli = 0;
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "timeline 0 is invalid") != NULL, "%s", err.message);
	cfg = config();
	cfg.seg_size = 12345;
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	cfg = config();
	cfg.history = bad_history;
	cfg.nhistory = 1;
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "timeline 0 in the history") != NULL, "%s", err.message);

	/* no segment of the timeline */
	cfg = config();
	cfg.tli = 7;
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "no segment file of timeline 7") != NULL, "%s", err.message);

	/* an unknown page magic */
	cfg = config();
	cfg.magic = 0x1234;
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "1234") != NULL, "%s", err.message);
}
END_TEST

/* Segment size from a first page that cannot tell it */
START_TEST(test_bad_first_page)
{
	WalDirConfig cfg = config();
	WalDirResult res;
	WalsimError err;
	uint8_t    *b = read_data(SEG9);

	remove_file(SEGA);
	remove_file(SEGB);
	/* names sort before 09; other files are ignored */
	write_file("000000010000000000000001", b, 10);
	write_file("00000001000000000000000x", b, 10);
	write_file("README", b, 10);
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "000000010000000000000001: WAL page header: 10 bytes, need 24") != NULL,
				  "%s", err.message);
	/* no long header */
	b[2] = 0x05;
	write_file("000000010000000000000001", b, 100);
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "no long header") != NULL, "%s", err.message);
	/* a long header naming an impossible segment size */
	b[2] = 0x06;
	b[32] = 0x77;
	write_file("000000010000000000000001", b, 100);
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	ck_assert_msg(strstr(err.message, "000000010000000000000001: ") != NULL, "%s", err.message);
	/* an empty file: nothing to read */
	write_file("000000010000000000000001", b, 0);
	ck_assert(!waldir_find_end(&cfg, &res, &err));
	/* with the size given, the short oldest file is simply where WAL ends */
	cfg.seg_size = SEG_SIZE;
	ck_assert(waldir_find_end(&cfg, &res, &err));
	ck_assert_int_eq(res.status, WAL_READ_NEED_DATA);
	ck_assert_uint_eq(res.valid_end, UINT64_C(0x100000));
	free(b);
}
END_TEST

static Suite *
waldir_suite(void)
{
	Suite	   *s = suite_create("waldir");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_expectations_file);
	tcase_add_test(tc, test_find_end_like_pg_waldump);
	tcase_add_test(tc, test_callback);
	tcase_add_test(tc, test_missing_segment);
	tcase_add_test(tc, test_partial_file);
	tcase_add_test(tc, test_follow_growing_file);
	tcase_add_test(tc, test_timeline_switch_segment);
	tcase_add_test(tc, test_real_timeline_2);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_bad_first_page);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(waldir_suite());
}
