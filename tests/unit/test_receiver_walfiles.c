/*
 * test_receiver_walfiles.c — segment/history files and the resume point of
 * walsim-receiver (ref/receiver/walfiles.c), in a temporary directory.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../ref/receiver/walfiles.h"
#include "unit_support.h"

#define SEG (UINT32_C(1) << 20)

static char dirpath[64];
static int	dirfd_;

static void
setup(void)
{
	strcpy(dirpath, "/tmp/walsim-test-walfiles-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dirpath));
	dirfd_ = open(dirpath, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dirfd_, 0);
}

static void
teardown(void)
{
	DIR		   *d = opendir(dirpath);
	struct dirent *de;

	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd_, de->d_name, 0);
	closedir(d);
	close(dirfd_);
	rmdir(dirpath);
}

/* create a file of the given size filled with byte b */
static void
make_file(const char *name, off_t size, int b)
{
	int			fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char		buf[4096];

	ck_assert_int_ge(fd, 0);
	memset(buf, b, sizeof(buf));
	for (off_t done = 0; done < size;)
	{
		size_t		n = (size_t) (size - done) < sizeof(buf) ? (size_t) (size - done) : sizeof(buf);

		ck_assert_int_eq(write(fd, buf, n), (ssize_t) n);
		done += (off_t) n;
	}
	close(fd);
}

static off_t
file_size(const char *name)
{
	struct stat st;

	if (fstatat(dirfd_, name, &st, 0) != 0)
		return -1;
	return st.st_size;
}

static StreamStart
find(void)
{
	StreamStart s;
	WalsimError err;

	ck_assert_msg(walfiles_find_start(dirfd_, SEG, &s, &err), "%s", err.message);
	return s;
}

START_TEST(test_empty_directory)
{
	StreamStart s;

	make_file("unrelated.txt", 10, 'x');
	make_file("00000002.history", 10, 'x');
	make_file("000000010000000000000003.gz", SEG, 0);
	s = find();
	ck_assert(!s.found);
}
END_TEST

START_TEST(test_complete_then_next)
{
	StreamStart s;

	make_file("000000010000000000000004", SEG, 0);
	make_file("000000010000000000000005", SEG, 0);
	s = find();
	ck_assert(s.found);
	ck_assert_uint_eq(s.tli, 1);
	ck_assert_uint_eq(s.segno, 6);
	ck_assert(!s.from_partial);
}
END_TEST

START_TEST(test_partial_resumes_at_its_start)
{
	StreamStart s;

	make_file("000000010000000000000005", SEG, 0);
	make_file("000000010000000000000006.partial", SEG, 0);
	s = find();
	ck_assert_uint_eq(s.segno, 6);
	ck_assert(s.from_partial);
}
END_TEST

START_TEST(test_higher_timeline_and_complete_preferred)
{
	StreamStart s;

	/* pg_receivewal after a promotion: old and new .partial side by side */
	make_file("000000010000000000000004.partial", SEG, 0);
	make_file("000000020000000000000004.partial", SEG, 0);
	make_file("000000010000000000000003", SEG, 0);
	s = find();
	ck_assert_uint_eq(s.tli, 2);
	ck_assert_uint_eq(s.segno, 4);
	ck_assert(s.from_partial);

	/* a complete file beats a .partial of the same segment and timeline */
	make_file("000000020000000000000004", SEG, 0);
	s = find();
	ck_assert_uint_eq(s.tli, 2);
	ck_assert_uint_eq(s.segno, 5);
	ck_assert(!s.from_partial);
}
END_TEST

START_TEST(test_wrong_size_complete_skipped)
{
	StreamStart s;

	make_file("000000010000000000000004", SEG, 0);
	make_file("000000010000000000000005", SEG - 1, 0);
	s = find();
	ck_assert_uint_eq(s.segno, 5);
	ck_assert(!s.from_partial);
}
END_TEST

START_TEST(test_unverified_pending_walk_back)
{
	StreamStart s;

	/* two .partials in a row on one timeline: restream from the first */
	make_file("000000010000000000000004", SEG, 0);
	make_file("000000010000000000000005.partial", SEG, 0);
	make_file("000000010000000000000006.partial", SEG, 0);
	make_file("000000010000000000000007.partial", SEG, 0);
	s = find();
	ck_assert_uint_eq(s.segno, 5);
	ck_assert(s.from_partial);
	/* ...but not across a complete one */
	make_file("000000010000000000000006", SEG, 0);
	s = find();
	ck_assert_uint_eq(s.segno, 7);
}
END_TEST

START_TEST(test_open_new_segment_padded)
{
	SegmentFile seg = SEGMENT_FILE_INIT;
	WalsimError err;
	char		buf[16];
	int			fd;

	ck_assert_msg(segment_open(&seg, dirfd_, 1, 3, SEG, true, 0640, &err), "%s", err.message);
	ck_assert_str_eq(seg.name, "000000010000000000000003");
	ck_assert_int_eq(file_size("000000010000000000000003.partial"), SEG);
	ck_assert(segment_write(&seg, 100, "walwalwal", 9, &err));
	ck_assert(!segment_write(&seg, SEG - 4, "walwalwal", 9, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "passes the end of segment 000000010000000000000003"));
	ck_assert(segment_sync(&seg, &err));
	ck_assert(segment_zero_range(&seg, 103, 106, true, &err));
	ck_assert(segment_close(&seg, true, &err));
	ck_assert_int_eq(seg.fd, -1);
	ck_assert(segment_close(&seg, true, &err));	/* closing twice is harmless */
	ck_assert(segment_zero_closed(dirfd_, 1, 3, SEG, 107, 108, false, &err));
	ck_assert(segment_zero_closed(dirfd_, 1, 3, SEG, 5, 5, false, &err));

	ck_assert(segment_complete(dirfd_, 1, 3, SEG, true, &err));
	ck_assert_int_eq(file_size("000000010000000000000003.partial"), -1);
	ck_assert_int_eq(file_size("000000010000000000000003"), SEG);
	fd = openat(dirfd_, "000000010000000000000003", O_RDONLY);
	ck_assert_int_eq(pread(fd, buf, 9, 100), 9);
	ck_assert_int_eq(memcmp(buf, "wal\0\0\0w\0l", 9), 0);
	ck_assert_int_eq(pread(fd, buf, 4, 0), 4);
	ck_assert_int_eq(memcmp(buf, "\0\0\0\0", 4), 0);
	close(fd);

	/* completing or zeroing a segment that has no .partial */
	ck_assert(!segment_complete(dirfd_, 1, 3, SEG, true, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "000000010000000000000003.partial"));
	ck_assert(!segment_complete(dirfd_, 1, 3, SEG, false, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "could not rename"));
	ck_assert(!segment_zero_closed(dirfd_, 1, 3, SEG, 0, 1, false, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "could not open"));
}
END_TEST

/* --no-sync: a new segment is extended, not written with zeros (sparse, reads as zeros) */
START_TEST(test_open_new_segment_without_sync_is_sparse)
{
	SegmentFile seg = SEGMENT_FILE_INIT;
	WalsimError err;
	struct stat st;
	char		buf[8];
	int			fd;

	ck_assert_msg(segment_open(&seg, dirfd_, 1, 9, SEG, false, 0600, &err), "%s", err.message);
	ck_assert_int_eq(file_size("000000010000000000000009.partial"), SEG);
	ck_assert_int_eq(fstat(seg.fd, &st), 0);
	ck_assert_int_lt((long long) st.st_blocks * 512, SEG);	/* no zeros were written */
	ck_assert(segment_write(&seg, 4096, "wal", 3, &err));
	ck_assert(segment_close(&seg, false, &err));
	fd = openat(dirfd_, "000000010000000000000009.partial", O_RDONLY);
	ck_assert_int_eq(pread(fd, buf, 8, 4092), 8);
	ck_assert_int_eq(memcmp(buf, "\0\0\0\0wal\0", 8), 0);
	ck_assert_int_eq(pread(fd, buf, 8, SEG - 8), 8);
	ck_assert_int_eq(memcmp(buf, "\0\0\0\0\0\0\0\0", 8), 0);
	close(fd);
}
END_TEST

START_TEST(test_reopen_existing_partial)
{
	SegmentFile seg = SEGMENT_FILE_INIT;
	WalsimError err;
	char		b;
	int			fd;

	/* full-size .partial: reused as is, overwritten from where we write */
	make_file("000000010000000000000004.partial", SEG, 'z');
	ck_assert(segment_open(&seg, dirfd_, 1, 4, SEG, true, 0600, &err));
	ck_assert(segment_write(&seg, 0, "a", 1, &err));
	ck_assert(segment_close(&seg, false, &err));
	fd = openat(dirfd_, "000000010000000000000004.partial", O_RDONLY);
	ck_assert_int_eq(pread(fd, &b, 1, 1), 1);
	ck_assert_int_eq(b, 'z');
	close(fd);

	/* empty .partial (a crash while creating): padded */
	make_file("000000010000000000000005.partial", 0, 0);
	ck_assert(segment_open(&seg, dirfd_, 1, 5, SEG, false, 0600, &err));
	ck_assert_int_eq(file_size("000000010000000000000005.partial"), SEG);
	ck_assert(segment_close(&seg, false, &err));

	/* any other size is an error and the file is left alone */
	make_file("000000010000000000000006.partial", 12345, 'q');
	ck_assert(!segment_open(&seg, dirfd_, 1, 6, SEG, true, 0600, &err));
	ck_assert_str_eq(err.message, "write-ahead log file \"000000010000000000000006.partial\" has 12345 bytes, should be 0 or 1048576");
	ck_assert_int_eq(file_size("000000010000000000000006.partial"), 12345);
	ck_assert_int_eq(seg.fd, -1);
}
END_TEST

START_TEST(test_open_in_readonly_directory)
{
	SegmentFile seg = SEGMENT_FILE_INIT;
	WalsimError err;
	/* a directory nobody may create files in, not even root: /proc */
	int			fd = open("/proc", O_RDONLY | O_DIRECTORY);

	ck_assert(!segment_open(&seg, fd, 1, 1, SEG, false, 0600, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "could not open \"000000010000000000000001.partial\""));
	ck_assert(!history_write(fd, 2, "x", 1, false, 0600, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "could not create \"00000002.history.tmp\""));
	close(fd);
}
END_TEST

START_TEST(test_history_files)
{
	static const char content[] = "1\t0/4040828\tno recovery target specified\n";
	WalsimError err;
	char		buf[128];
	int			fd;

	ck_assert(!history_exists(dirfd_, 2));
	ck_assert(history_write(dirfd_, 2, content, strlen(content), true, 0600, &err));
	ck_assert(history_exists(dirfd_, 2));
	ck_assert_int_eq(file_size("00000002.history.tmp"), -1);
	fd = openat(dirfd_, "00000002.history", O_RDONLY);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), (ssize_t) strlen(content));
	ck_assert_int_eq(memcmp(buf, content, strlen(content)), 0);
	close(fd);
	/* rewriting replaces the bytes exactly */
	ck_assert(history_write(dirfd_, 2, "x", 1, false, 0600, &err));
	ck_assert_int_eq(file_size("00000002.history"), 1);
}
END_TEST

static Suite *
walfiles_suite(void)
{
	Suite	   *s = suite_create("receiver_walfiles");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_directory);
	tcase_add_test(tc, test_complete_then_next);
	tcase_add_test(tc, test_partial_resumes_at_its_start);
	tcase_add_test(tc, test_higher_timeline_and_complete_preferred);
	tcase_add_test(tc, test_wrong_size_complete_skipped);
	tcase_add_test(tc, test_unverified_pending_walk_back);
	tcase_add_test(tc, test_open_new_segment_padded);
	tcase_add_test(tc, test_open_new_segment_without_sync_is_sparse);
	tcase_add_test(tc, test_reopen_existing_partial);
	tcase_add_test(tc, test_open_in_readonly_directory);
	tcase_add_test(tc, test_history_files);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(walfiles_suite());
}
