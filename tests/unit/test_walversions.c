/*
 * test_walversions.c — libwalsim reads real WAL of every supported major
 * (tests/data/wal for 15, tests/data/wal-N for 13, 14, 16, 17, 18; made by
 * make-wal.sh and make-version-wal.py) to the same ends as the server that
 * wrote it (dataset.txt):
 *
 *   switch_end  pg_switch_wal() at the end of segment B: the end of the
 *               XLOG_SWITCH record the reader must find last in B;
 *   tl2_begin   where the promoted server began timeline 2: the end of valid
 *               timeline-1 WAL (the reader stops there in C's timeline-1
 *               file, which is not kept, so this is checked on the timeline-2
 *               file, whose first records are timeline 1's);
 *   end         pg_last_wal_replay_lsn() of the server recovering its own
 *               timeline-2 WAL: where the reader must find WAL to end.
 *
 * And the version table holds each set's magic under its major, and a set
 * read with another major's magic stops at its first page.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/waldir.h"
#include "walsim/walpage.h"
#include "unit_support.h"

#define SEG (1u << 20)

typedef struct DataSet
{
	const char *dir;			/* under tests/data */
	int			major;
	uint16_t	magic;
	char		seg_a[128];
	char		seg_b[128];
	char		seg_c[128];
	uint64_t	switch_end;
	uint64_t	tl2_begin;
	uint64_t	end;
} DataSet;

static const char *const SETS[] = {"wal-13", "wal-14", "wal", "wal-16", "wal-17", "wal-18"};
#define NSETS (sizeof(SETS) / sizeof(SETS[0]))

static uint64_t
lsn_value(const char *text)
{
	uint64_t	v;
	WalsimError err;

	ck_assert_msg(lsn_parse(text, &v, &err), "%s", err.message);
	return v;
}

static void
load_set(const char *dir, DataSet *d)
{
	char		name[256];
	char	   *text;
	size_t		len;
	char	   *save = NULL;

	memset(d, 0, sizeof(*d));
	d->dir = dir;
	snprintf(name, sizeof(name), "%s/dataset.txt", dir);
	text = unit_load_data(name, &len);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char		key[64],
					value[128];

		if (line[0] == '#' || sscanf(line, "%63s %127s", key, value) != 2)
			continue;
		if (strcmp(key, "major") == 0)
			d->major = atoi(value);
		else if (strcmp(key, "magic") == 0)
			d->magic = (uint16_t) strtoul(value, NULL, 16);
		else if (strcmp(key, "segment_a") == 0)
			snprintf(d->seg_a, sizeof(d->seg_a), "%s", value);
		else if (strcmp(key, "segment_b") == 0)
			snprintf(d->seg_b, sizeof(d->seg_b), "%s", value);
		else if (strcmp(key, "segment_c") == 0)
			snprintf(d->seg_c, sizeof(d->seg_c), "%s", value);
		else if (strcmp(key, "switch_end") == 0)
			d->switch_end = lsn_value(value);
		else if (strcmp(key, "tl2_begin") == 0)
			d->tl2_begin = lsn_value(value);
		else if (strcmp(key, "end") == 0)
			d->end = lsn_value(value);
	}
	free(text);
	ck_assert_msg(d->major && d->magic && d->seg_a[0] && d->end, "%s/dataset.txt incomplete", dir);
}

static uint64_t
segment_start(const char *name)
{
	unsigned int tli, log, seg;

	ck_assert(sscanf(name, "%08X%08X%08X", &tli, &log, &seg) == 3);
	return ((uint64_t) log << 32) + (uint64_t) seg * SEG;
}

/* A scratch directory with segments A and B, and timeline 2's C padded to a full segment. */
static void
make_dir(const DataSet *d, char *tmp, size_t size)
{
	const char *names[] = {d->seg_a, d->seg_b, "00000002.history"};
	char		src[512],
				dst[512],
				head[64];
	void	   *data;
	size_t		len;
	FILE	   *f;
	uint8_t    *full;

	snprintf(tmp, size, "/tmp/walsim-test-walversions-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	for (size_t i = 0; i < 3; i++)
	{
		snprintf(src, sizeof(src), "%s/%s", d->dir, names[i]);
		data = unit_load_data(src, &len);
		snprintf(dst, sizeof(dst), "%s/%s", tmp, names[i]);
		f = fopen(dst, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(data, 1, len, f), len);
		fclose(f);
		free(data);
	}
	snprintf(head, sizeof(head), "00000002%s", d->seg_c + 8);
	snprintf(src, sizeof(src), "%s/%s.tli2-head", d->dir, head);
	data = unit_load_data(src, &len);
	full = calloc(1, SEG);
	ck_assert_ptr_nonnull(full);
	memcpy(full, data, len);
	snprintf(dst, sizeof(dst), "%s/%s", tmp, head);
	f = fopen(dst, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(full, 1, SEG, f), SEG);
	fclose(f);
	free(full);
	free(data);
}

static void
remove_dir(const char *tmp)
{
	DIR		   *dir = opendir(tmp);
	struct dirent *e;
	char		path[1024];

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
		{
			snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
			unlink(path);
		}
	closedir(dir);
	rmdir(tmp);
}

typedef struct Seen
{
	uint64_t	switch_end;		/* end of the last XLOG_SWITCH record */
	uint64_t	last_tl1_end;	/* end of the last record below tl2_begin */
	uint64_t	tl2_begin;
} Seen;

static void
on_record(const WalRecordInfo *rec, void *arg)
{
	Seen	   *s = arg;

	/* the reader's end of a switch record is the segment end; pg_switch_wal() names the record's own end */
	if (rec->is_switch)
		s->switch_end = WAL_MAXALIGN(rec->start_lsn + rec->tot_len);
	if (rec->start_lsn < s->tl2_begin)
		s->last_tl1_end = rec->end_lsn;
}

START_TEST(test_version_table_has_every_set)
{
	for (size_t i = 0; i < NSETS; i++)
	{
		DataSet		d;
		char		name[256];
		uint8_t    *seg;
		size_t		len;

		load_set(SETS[i], &d);
		ck_assert_ptr_nonnull(wal_version_by_major(d.major));
		ck_assert_uint_eq(wal_version_by_major(d.major)->page_magic, d.magic);
		ck_assert_int_eq(wal_version_by_magic(d.magic)->major, d.major);
		/* the magic recorded is the one in the file */
		snprintf(name, sizeof(name), "%s/%s", d.dir, d.seg_a);
		seg = unit_load_data(name, &len);
		ck_assert_uint_eq(len, SEG);
		ck_assert_uint_eq(wal_get_u16(seg), d.magic);
		free(seg);
	}
	ck_assert_ptr_null(wal_version_by_major(12));
	ck_assert_ptr_null(wal_version_by_major(19));
	ck_assert_ptr_null(wal_version_by_magic(0xD101));	/* PostgreSQL 12 */
}
END_TEST

START_TEST(test_magic_described)
{
	char		buf[200];

	ck_assert_str_eq(wal_magic_describe(0xD116, buf, sizeof(buf)), "PostgreSQL 17");
	ck_assert_str_eq(wal_magic_describe(0xD101, buf, sizeof(buf)),
					 "no PostgreSQL version walsim knows (13: D106, 14: D10D, 15: D110, 16: D113, 17: D116, 18: D118)");
}
END_TEST

/* Every set is read to the server's ends, across the switch to timeline 2. */
START_TEST(test_read_to_server_ends)
{
	DataSet		d;
	char		tmp[256];
	WalDirTimeline tl[2];
	WalDirConfig cfg;
	WalDirResult res;
	WalsimError err;
	Seen		seen = {0};

	load_set(SETS[_i], &d);
	make_dir(&d, tmp, sizeof(tmp));
	tl[0].tli = 1;
	tl[0].begin_lsn = 0;
	tl[1].tli = 2;
	tl[1].begin_lsn = d.tl2_begin;
	seen.tl2_begin = d.tl2_begin;
	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = tmp;
	cfg.tli = 2;
	cfg.start_lsn = segment_start(d.seg_a);
	cfg.seg_size = SEG;
	cfg.magic = d.magic;
	cfg.history = tl;
	cfg.nhistory = 2;
	cfg.on_record = on_record;
	cfg.cb_arg = &seen;
	ck_assert_msg(waldir_find_end(&cfg, &res, &err), "%s: %s", d.dir, err.message);
	remove_dir(tmp);
	ck_assert_msg(res.status == WAL_READ_ZEROED, "%s: stopped with %d: %s", d.dir, res.status, res.message);
	ck_assert_msg(res.valid_end == d.end, "%s: walsim ends at %llX, the server at %llX", d.dir,
				  (unsigned long long) res.valid_end, (unsigned long long) d.end);
	ck_assert_msg(seen.switch_end == d.switch_end, "%s: XLOG_SWITCH ends at %llX, pg_switch_wal() said %llX",
				  d.dir, (unsigned long long) seen.switch_end, (unsigned long long) d.switch_end);
	ck_assert_msg(seen.last_tl1_end == d.tl2_begin, "%s: timeline 1 ends at %llX, timeline 2 begins at %llX",
				  d.dir, (unsigned long long) seen.last_tl1_end, (unsigned long long) d.tl2_begin);
}
END_TEST

/* Read with the magic of the next major: stops at the first page, naming both magics. */
START_TEST(test_wrong_major_stops)
{
	DataSet		d;
	char		tmp[256];
	WalDirConfig cfg;
	WalDirResult res;
	WalsimError err;
	const WalVersionInfo *other;

	load_set(SETS[_i], &d);
	other = wal_version_by_major(d.major == 18 ? 13 : d.major + 1);
	make_dir(&d, tmp, sizeof(tmp));
	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = tmp;
	cfg.tli = 1;
	cfg.start_lsn = segment_start(d.seg_a);
	cfg.seg_size = SEG;
	cfg.magic = other->page_magic;
	ck_assert_msg(waldir_find_end(&cfg, &res, &err), "%s", err.message);
	remove_dir(tmp);
	ck_assert_int_eq(res.status, WAL_READ_BAD_MAGIC);
	ck_assert_uint_eq(res.valid_end, segment_start(d.seg_a));
	ck_assert_msg(strstr(res.message, "invalid magic number") != NULL, "%s", res.message);
}
END_TEST

static Suite *
walversions_suite(void)
{
	Suite	   *s = suite_create("walversions");
	TCase	   *tc = tcase_create("real");

	tcase_add_test(tc, test_version_table_has_every_set);
	tcase_add_test(tc, test_magic_described);
	tcase_add_loop_test(tc, test_read_to_server_ends, 0, NSETS);
	tcase_add_loop_test(tc, test_wrong_major_stops, 0, NSETS);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(walversions_suite());
}
