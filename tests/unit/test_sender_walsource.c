/*
 * test_sender_walsource.c — what walsim-sender serves from a directory:
 * the end of valid WAL, timelines and the switch segment read from the newer
 * timeline's file, missing segments, mixed systems; and the slot state file.
 * Uses the real PostgreSQL 15 segments of tests/data/wal (1 MB segments,
 * timeline 2 begins at 0/B011A8, see expected.txt there).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../ref/sender/slots.h"
#include "../../ref/sender/walsource.h"
#include "unit_support.h"

#define SEG (1024 * 1024)

static char tmpdir[256];

static void
copy_file(const char *src_name, const char *dst_name, size_t pad_to)
{
	char		src[4096],
				dst[4096];
	FILE	   *in,
			   *out;
	char		buf[65536];
	size_t		n,
				total = 0;

	unit_data_path(src, sizeof(src), src_name);
	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, dst_name);
	in = fopen(src, "rb");
	ck_assert_msg(in != NULL, "cannot open %s", src);
	out = fopen(dst, "wb");
	ck_assert(out != NULL);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
	{
		fwrite(buf, 1, n, out);
		total += n;
	}
	memset(buf, 0, sizeof(buf));
	while (total < pad_to)
	{
		n = pad_to - total < sizeof(buf) ? pad_to - total : sizeof(buf);
		fwrite(buf, 1, n, out);
		total += n;
	}
	fclose(in);
	fclose(out);
}

static void
remove_file(const char *name)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(unlink(path), 0);
}

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/walsim-test-walsource-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char		cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void
timeline1(void)
{
	copy_file("wal/000000010000000000000009", "000000010000000000000009", 0);
	copy_file("wal/00000001000000000000000A", "00000001000000000000000A", 0);
	copy_file("wal/00000001000000000000000B", "00000001000000000000000B", 0);
}

static void
timeline2(void)
{
	copy_file("wal/00000002.history", "00000002.history", 0);
	copy_file("wal/00000002000000000000000B.tli2-head", "00000002000000000000000B", SEG);
}

START_TEST(test_end_of_valid_wal)
{
	WalSource	s;
	WalsimError err;
	uint8_t		buf[64];
	bool		missing;
	char		name[64];

	timeline1();
	ck_assert_msg(walsource_open(&s, tmpdir, &err), "%s", err.message);
	ck_assert_uint_eq(s.seg_size, SEG);
	ck_assert_uint_eq(s.tli, 1);
	ck_assert_uint_eq(s.oldest_lsn, 0x900000);
	/* the last valid record ends at 0/B011A8 (pg_waldump), not at the file's end */
	ck_assert_uint_eq(s.end, 0xB011A8);
	/* the first bytes of a segment: its long page header (magic 0xD110) */
	ck_assert(walsource_read(&s, 1, 0xA00000, buf, sizeof(buf), &missing, name, &err));
	ck_assert_uint_eq(buf[0], 0x10);
	ck_assert_uint_eq(buf[1], 0xD1);
	/* a segment that is not there */
	ck_assert(!walsource_read(&s, 1, 0x800000, buf, sizeof(buf), &missing, name, &err));
	ck_assert(missing);
	ck_assert_str_eq(name, "000000010000000000000008");
	ck_assert_ptr_nonnull(strstr(err.message, "has already been removed"));
	/* a read may not cross a segment end */
	ck_assert(!walsource_read(&s, 1, 0x9FFFF0, buf, sizeof(buf), &missing, name, &err));
	ck_assert(!missing);
	walsource_close(&s);
}
END_TEST

START_TEST(test_timeline_switch)
{
	WalSource	s;
	WalsimError err;
	uint64_t	sp;
	uint8_t		a[8192],
				b[8192];
	bool		missing;
	bool		changed;
	char		name[64];
	char	   *hist;
	size_t		hlen;

	timeline1();
	ck_assert_msg(walsource_open(&s, tmpdir, &err), "%s", err.message);
	ck_assert_uint_eq(s.tli, 1);
	/* a promotion appears: the next refresh moves to timeline 2 */
	timeline2();
	ck_assert_msg(walsource_refresh(&s, &changed, &err), "%s", err.message);
	ck_assert(changed);
	ck_assert_uint_eq(s.tli, 2);
	ck_assert_uint_eq(s.end, 0xB37738);
	ck_assert(walsource_switch_point(&s, 1, &sp));
	ck_assert_uint_eq(sp, 0xB011A8);
	ck_assert(walsource_switch_point(&s, 2, &sp));
	ck_assert_uint_eq(sp, 0);
	ck_assert(!walsource_switch_point(&s, 3, &sp));
	/* the switch segment reads the same whichever timeline asks */
	ck_assert(walsource_read(&s, 1, 0xB00000, a, sizeof(a), &missing, name, &err));
	ck_assert(walsource_read(&s, 2, 0xB00000, b, sizeof(b), &missing, name, &err));
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	/*
	 * bytes before the switch point come from timeline 1's own file, even
	 * when timeline 2's copy does not hold them (yet): a receiver rewrites
	 * that copy from its start after the switch
	 */
	{
		char		path[4096];
		FILE	   *f;
		uint8_t		zeros[8192] = {0};

		snprintf(path, sizeof(path), "%s/00000002000000000000000B", tmpdir);
		f = fopen(path, "r+b");
		ck_assert(f != NULL);
		fwrite(zeros, 1, sizeof(zeros), f);
		fclose(f);
	}
	ck_assert(walsource_read(&s, 2, 0xB00000, a, 64, &missing, name, &err));
	ck_assert_uint_eq(a[0], 0x10);
	ck_assert_uint_eq(a[1], 0xD1);
	walsource_close(&s);
	/* ... and from timeline 2's file when timeline 1's copy is gone, as PostgreSQL */
	remove_file("00000001000000000000000B");
	copy_file("wal/00000002000000000000000B.tli2-head", "00000002000000000000000B", SEG);
	ck_assert_msg(walsource_open(&s, tmpdir, &err), "%s", err.message);
	ck_assert_uint_eq(s.tli, 2);
	ck_assert_uint_eq(s.end, 0xB37738);
	ck_assert(walsource_read(&s, 1, 0xB00000, a, sizeof(a), &missing, name, &err));
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	/* older segments of timeline 2 come from timeline 1's files */
	ck_assert(walsource_read(&s, 2, 0x900000, a, 64, &missing, name, &err));
	ck_assert(walsource_history_file(&s, 2, &hist, &hlen, &err));
	ck_assert_uint_eq(hlen, 40);
	ck_assert(strncmp(hist, "1\t0/B011A8\t", 11) == 0);
	free(hist);
	ck_assert(!walsource_history_file(&s, 1, &hist, &hlen, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "00000001.history"));
	walsource_close(&s);
}
END_TEST

START_TEST(test_bad_directories)
{
	WalSource	s;
	WalsimError err;
	char		path[4096];
	FILE	   *f;
	uint8_t		one = 0x42;

	/* empty */
	ck_assert(!walsource_open(&s, tmpdir, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "no WAL segment files"));
	/* missing */
	ck_assert(!walsource_open(&s, "/nonexistent/walsim", &err));
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/walsim"));
	/* two systems in one directory */
	timeline1();
	copy_file("wal/000000010000000000000009", "000000010000000000000008", 0);
	snprintf(path, sizeof(path), "%s/000000010000000000000008", tmpdir);
	f = fopen(path, "r+b");
	ck_assert(f != NULL);
	fseek(f, 24, SEEK_SET);		/* xlp_sysid of the long header */
	fwrite(&one, 1, 1, f);
	fclose(f);
	ck_assert(!walsource_open(&s, tmpdir, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "one directory must hold one system's WAL"));
	remove_file("000000010000000000000008");
	/* not WAL at all */
	snprintf(path, sizeof(path), "%s/000000010000000000000007", tmpdir);
	f = fopen(path, "wb");
	ck_assert(f != NULL);
	fputs("this is not a WAL segment, just some text of more than forty bytes", f);
	fclose(f);
	ck_assert(!walsource_open(&s, tmpdir, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "000000010000000000000007"));
}
END_TEST

START_TEST(test_slots)
{
	char		file[4096];
	SlotInfo	info;
	WalsimError err;
	pid_t		active;

	snprintf(file, sizeof(file), "%s/slots", tmpdir);
	ck_assert_int_eq(slots_get(file, "s1", &info, &err), SLOT_NOT_FOUND);
	ck_assert_int_eq(slots_create(file, "s1", 0, &err), SLOT_OK);
	ck_assert_int_eq(slots_create(file, "s1", 0, &err), SLOT_EXISTS);
	ck_assert_int_eq(slots_get(file, "s1", &info, &err), SLOT_OK);
	ck_assert_uint_eq(info.restart_lsn, 0);
	/* active for us; another live process cannot take it (pid 1 is alive) */
	ck_assert_int_eq(slots_acquire(file, "s1", 1, &active, &err), SLOT_OK);
	ck_assert_int_eq(slots_acquire(file, "s1", getpid(), &active, &err), SLOT_ACTIVE);
	ck_assert_int_eq(active, 1);
	ck_assert_int_eq(slots_drop(file, "s1", &active, &err), SLOT_ACTIVE);
	slots_release(file, "s1", 1);
	ck_assert_int_eq(slots_acquire(file, "s1", getpid(), &active, &err), SLOT_OK);
	/* restart_lsn only moves forward */
	ck_assert_int_eq(slots_advance(file, "s1", 0x3000000, &err), SLOT_OK);
	ck_assert_int_eq(slots_advance(file, "s1", 0x2000000, &err), SLOT_OK);
	ck_assert_int_eq(slots_get(file, "s1", &info, &err), SLOT_OK);
	ck_assert_uint_eq(info.restart_lsn, 0x3000000);
	ck_assert_int_eq(info.active_pid, getpid());
	slots_release(file, "s1", getpid());
	ck_assert_int_eq(slots_drop(file, "s1", &active, &err), SLOT_OK);
	ck_assert_int_eq(slots_drop(file, "s1", &active, &err), SLOT_NOT_FOUND);
	ck_assert_int_eq(slots_advance(file, "s1", 1, &err), SLOT_NOT_FOUND);
}
END_TEST

START_TEST(test_slot_file_errors)
{
	char		file[4096];
	SlotInfo	info;
	WalsimError err;
	FILE	   *f;

	snprintf(file, sizeof(file), "%s/slots", tmpdir);
	f = fopen(file, "w");
	ck_assert(f != NULL);
	fputs("s1 0/ZZ 0\n", f);
	fclose(f);
	ck_assert_int_eq(slots_get(file, "s1", &info, &err), SLOT_IO_ERROR);
	ck_assert_ptr_nonnull(strstr(err.message, "line 1"));
	/* a directory that does not exist */
	ck_assert_int_eq(slots_create("/nonexistent/walsim/slots", "s1", 0, &err), SLOT_IO_ERROR);
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("sender_walsource");
	TCase	   *tc = tcase_create("walsource");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_end_of_valid_wal);
	tcase_add_test(tc, test_timeline_switch);
	tcase_add_test(tc, test_bad_directories);
	tcase_add_test(tc, test_slots);
	tcase_add_test(tc, test_slot_file_errors);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
