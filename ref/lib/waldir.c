/*
 * waldir.c — the end of valid WAL in a directory of segment files (see
 * walsim/waldir.h).
 *
 * A WalDir owns one WalReader for the whole stream.  Each scan rewinds the
 * reader to the valid end and feeds it the files from there, segment by
 * segment, until the reader stops or a file is missing or short.  Re-reading
 * from the valid end (rather than from where the last scan's bytes ended)
 * is what makes following growing files correct: the zeros that ended WAL
 * in one scan may be records in the next.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "walsim/waldir.h"
#include "walsim/walpage.h"

#define WALDIR_CHUNK	(64 * 1024)

struct WalDir
{
	char	   *dir;
	uint32_t	tli;
	uint64_t	start_lsn;
	uint64_t	prev_lsn;
	uint32_t	seg_size;
	uint16_t	magic;
	bool		use_partial;
	WalRecordCallback on_record;
	void	   *cb_arg;
	WalDirTimeline *timelines;	/* candidates, newest first */
	size_t		ntimelines;
	WalReader  *reader;			/* created by the first scan */
	uint8_t    *chunk;
};

static int
timeline_newest_first(const void *a, const void *b)
{
	const WalDirTimeline *x = a,
			   *y = b;

	return x->tli < y->tli ? 1 : x->tli > y->tli ? -1 : 0;
}

/*
 * The timelines to look in: the history entries not newer than cfg->tli,
 * plus cfg->tli itself (beginning at 0 unless the history says otherwise).
 */
static bool
collect_timelines(WalDir *wd, const WalDirConfig *cfg, WalsimError *err)
{
	bool		have_target = false;

	wd->timelines = calloc(cfg->nhistory + 1, sizeof(WalDirTimeline));
	if (wd->timelines == NULL)
		return walsim_error_set(err, "WAL directory %s: out of memory", cfg->dir);
	for (size_t i = 0; i < cfg->nhistory; i++)
	{
		if (cfg->history[i].tli == 0)
			return walsim_error_set(err, "WAL directory %s: timeline 0 in the history", cfg->dir);
		if (cfg->history[i].tli > cfg->tli)
			continue;
		if (cfg->history[i].tli == cfg->tli)
			have_target = true;
		wd->timelines[wd->ntimelines++] = cfg->history[i];
	}
	if (!have_target)
	{
		wd->timelines[wd->ntimelines].tli = cfg->tli;
		wd->timelines[wd->ntimelines].begin_lsn = 0;
		wd->ntimelines++;
	}
	qsort(wd->timelines, wd->ntimelines, sizeof(WalDirTimeline), timeline_newest_first);
	return true;
}

static bool
is_upper_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* Is this a segment (or, when allowed, .partial) name of a candidate TLI? */
static bool
candidate_name(const WalDir *wd, const char *name)
{
	size_t		len = strlen(name);
	unsigned int tli;

	if (len != WAL_SEGMENT_NAME_LEN &&
		!(wd->use_partial && len == WAL_SEGMENT_NAME_LEN + 8 &&
		  strcmp(name + WAL_SEGMENT_NAME_LEN, ".partial") == 0))
		return false;
	if (!is_upper_hex(name, WAL_SEGMENT_NAME_LEN) || sscanf(name, "%8X", &tli) != 1)
		return false;
	for (size_t i = 0; i < wd->ntimelines; i++)
		if (wd->timelines[i].tli == tli)
			return true;
	return false;
}

/*
 * The oldest segment file of a candidate timeline (names sort like their
 * LSNs within one timeline; across timelines the LSN part decides).
 */
static bool
oldest_file(const WalDir *wd, char *name, WalsimError *err)
{
	DIR		   *d = opendir(wd->dir);
	struct dirent *de;

	if (d == NULL)
		return walsim_error_set(err, "WAL directory %s: %s", wd->dir, strerror(errno));
	name[0] = '\0';
	while ((de = readdir(d)) != NULL)
	{
		if (!candidate_name(wd, de->d_name))
			continue;
		/* candidate_name() admitted at most 24 digits + ".partial" */
		if (name[0] == '\0' || strncmp(de->d_name + 8, name + 8, 16) < 0)
			memcpy(name, de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	if (name[0] == '\0')
		return walsim_error_set(err, "WAL directory %s: no segment file of timeline %u",
								wd->dir, wd->tli);
	return true;
}

/* Segment size from the long header of a file. */
static bool
read_seg_size(const WalDir *wd, const char *name, uint32_t *seg_size, WalsimError *err)
{
	char		path[4096];
	uint8_t		buf[WAL_LONG_PHD_SIZE];
	WalPageHeader hdr;
	ssize_t		got;
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", wd->dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return walsim_error_set(err, "%s: %s", path, strerror(errno));
	got = read(fd, buf, sizeof(buf));
	close(fd);
	if (got < 0)
		return walsim_error_set(err, "%s: %s", path, strerror(errno));
	if (!wal_page_header_decode(buf, (size_t) got, &hdr, err))
	{
		walsim_error_prefix(err, "%s: ", path);
		return false;
	}
	if (!hdr.is_long)
		return walsim_error_set(err, "%s: first page has no long header, cannot tell the segment size", path);
	if (!wal_segment_size_check(hdr.seg_size, err))
	{
		walsim_error_prefix(err, "%s: ", path);
		return false;
	}
	*seg_size = hdr.seg_size;
	return true;
}

/* Segment size and start LSN when the config leaves them to the directory. */
static bool
resolve_start(WalDir *wd, WalsimError *err)
{
	char		name[WAL_FILE_NAME_MAX];
	WalFileName parsed;
	char		bare[WAL_FILE_NAME_MAX];

	if (wd->seg_size != 0 && wd->start_lsn != 0)
		return true;
	if (!oldest_file(wd, name, err))
		return false;
	if (wd->seg_size == 0 && !read_seg_size(wd, name, &wd->seg_size, err))
		return false;
	if (wd->start_lsn == 0)
	{
		snprintf(bare, sizeof(bare), "%.24s", name);
		if (!wal_file_name_parse(bare, wd->seg_size, &parsed, err))
			return false;
		wd->start_lsn = wal_segno_to_lsn(parsed.segno, 0, wd->seg_size);
	}
	return true;
}

WalDir *
waldir_open(const WalDirConfig *cfg, WalsimError *err)
{
	WalDir	   *wd;
	struct stat st;

	if (cfg->dir == NULL || cfg->dir[0] == '\0')
	{
		walsim_error_set(err, "WAL directory: no path given");
		return NULL;
	}
	if (stat(cfg->dir, &st) != 0)
	{
		walsim_error_set(err, "WAL directory %s: %s", cfg->dir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode))
	{
		walsim_error_set(err, "WAL directory %s: not a directory", cfg->dir);
		return NULL;
	}
	if (cfg->tli == 0)
	{
		walsim_error_set(err, "WAL directory %s: timeline 0 is invalid", cfg->dir);
		return NULL;
	}
	if (cfg->seg_size != 0 && !wal_segment_size_check(cfg->seg_size, err))
		return NULL;
	wd = calloc(1, sizeof(*wd));
	if (wd == NULL || (wd->dir = strdup(cfg->dir)) == NULL ||
		(wd->chunk = malloc(WALDIR_CHUNK)) == NULL)
	{
		walsim_error_set(err, "WAL directory %s: out of memory", cfg->dir);
		waldir_close(wd);
		return NULL;
	}
	wd->tli = cfg->tli;
	wd->start_lsn = cfg->start_lsn;
	wd->prev_lsn = cfg->prev_lsn;
	wd->seg_size = cfg->seg_size;
	wd->magic = cfg->magic;
	wd->use_partial = cfg->use_partial;
	wd->on_record = cfg->on_record;
	wd->cb_arg = cfg->cb_arg;
	if (!collect_timelines(wd, cfg, err))
	{
		waldir_close(wd);
		return NULL;
	}
	return wd;
}

void
waldir_close(WalDir *wd)
{
	if (wd == NULL)
		return;
	walreader_free(wd->reader);
	free(wd->timelines);
	free(wd->chunk);
	free(wd->dir);
	free(wd);
}

/*
 * Open the file holding segment segno: the newest candidate timeline that
 * has begun by the end of the segment and has the file (XLogFileReadAnyTLI).
 * Returns the fd, or -1 with *missing set when no file exists, or -1 with
 * err on another error.
 */
static int
open_segment(WalDir *wd, uint64_t segno, char *name, uint32_t *tli,
			 bool *missing, WalsimError *err)
{
	char		path[4096];

	*missing = false;
	for (size_t i = 0; i < wd->ntimelines; i++)
	{
		const WalDirTimeline *t = &wd->timelines[i];

		if (t->begin_lsn != 0 && wal_segno_of(t->begin_lsn, wd->seg_size) > segno)
			continue;
		for (int partial = 0; partial <= (wd->use_partial ? 1 : 0); partial++)
		{
			int			fd;

			if (partial)
				wal_partial_name(name, t->tli, segno, wd->seg_size);
			else
				wal_segment_name(name, t->tli, segno, wd->seg_size);
			snprintf(path, sizeof(path), "%s/%s", wd->dir, name);
			fd = open(path, O_RDONLY);
			if (fd >= 0)
			{
				*tli = t->tli;
				return fd;
			}
			if (errno != ENOENT)
			{
				walsim_error_set(err, "%s: %s", path, strerror(errno));
				return -1;
			}
		}
	}
	/* name the file of the target timeline in the message */
	wal_segment_name(name, wd->tli, segno, wd->seg_size);
	*missing = true;
	return -1;
}

/*
 * Feed the reader from fd, starting at the reader's position (which lies in
 * this segment), until the reader stops, the file ends or the segment ends.
 * *file_ended is set when the file ended before the segment did.
 */
static bool
feed_segment(WalDir *wd, int fd, const char *name, bool *file_ended, WalsimError *err)
{
	uint64_t	pos = walreader_position(wd->reader);
	uint32_t	offset = wal_segment_offset(pos, wd->seg_size);
	uint64_t	left = wd->seg_size - offset;

	*file_ended = false;
	if (lseek(fd, (off_t) offset, SEEK_SET) < 0)
		return walsim_error_set(err, "%s/%s: seek to %u: %s", wd->dir, name, offset, strerror(errno));
	while (left > 0)
	{
		size_t		want = left < WALDIR_CHUNK ? (size_t) left : WALDIR_CHUNK;
		ssize_t		got = read(fd, wd->chunk, want);

		if (got < 0)
		{
			if (errno == EINTR)
				continue;
			return walsim_error_set(err, "%s/%s: read at offset %lu: %s", wd->dir, name,
									(unsigned long) (wd->seg_size - left), strerror(errno));
		}
		if (got == 0)
		{
			*file_ended = true;
			return true;
		}
		if (walreader_feed(wd->reader, wd->chunk, (size_t) got) != WAL_READ_NEED_DATA)
			return true;
		left -= (uint64_t) got;
	}
	return true;
}

static void
fill_result(const WalDir *wd, WalDirResult *res)
{
	res->status = walreader_status(wd->reader);
	res->valid_end = walreader_valid_end(wd->reader);
	res->last_record = walreader_last_record(wd->reader);
	res->error_lsn = walreader_error_lsn(wd->reader);
	res->records = walreader_record_count(wd->reader);
	res->seg_size = wd->seg_size;
	if (res->status != WAL_READ_NEED_DATA)
		snprintf(res->message, sizeof(res->message), "%s", walreader_message(wd->reader));
}

bool
waldir_scan(WalDir *wd, WalDirResult *res, WalsimError *err)
{
	memset(res, 0, sizeof(*res));
	if (wd->reader == NULL)
	{
		WalReaderConfig rc = {0};

		if (!resolve_start(wd, err))
			return false;
		rc.start_lsn = wd->start_lsn;
		rc.prev_lsn = wd->prev_lsn;
		rc.seg_size = wd->seg_size;
		rc.magic = wd->magic;
		rc.on_record = wd->on_record;
		rc.cb_arg = wd->cb_arg;
		wd->reader = walreader_create(&rc, err);
		if (wd->reader == NULL)
			return false;
	}
	walreader_rewind(wd->reader);

	for (;;)
	{
		uint64_t	pos = walreader_position(wd->reader);
		uint64_t	segno = wal_segno_of(pos, wd->seg_size);
		char		name[WAL_FILE_NAME_MAX];
		char		at[LSN_TEXT_MAX];
		uint32_t	tli = 0;
		bool		missing;
		bool		file_ended;
		bool		ok;
		int			fd;

		fd = open_segment(wd, segno, name, &tli, &missing, err);
		if (fd < 0 && !missing)
			return false;
		snprintf(res->stop_file, sizeof(res->stop_file), "%s", name);
		res->stop_tli = tli;
		lsn_format(pos, at);
		if (fd < 0)
		{
			fill_result(wd, res);
			snprintf(res->message, sizeof(res->message),
					 "WAL continues at %s in segment file %s, which is not in %s",
					 at, name, wd->dir);
			return true;
		}
		ok = feed_segment(wd, fd, name, &file_ended, err);
		close(fd);
		if (!ok)
			return false;
		if (walreader_status(wd->reader) != WAL_READ_NEED_DATA)
		{
			fill_result(wd, res);
			return true;
		}
		if (file_ended)
		{
			char		end[LSN_TEXT_MAX];

			fill_result(wd, res);
			lsn_format(walreader_position(wd->reader), end);
			snprintf(res->message, sizeof(res->message),
					 "file %s ends at %s, before its segment does", name, end);
			return true;
		}
	}
}

bool
waldir_find_end(const WalDirConfig *cfg, WalDirResult *res, WalsimError *err)
{
	WalDir	   *wd = waldir_open(cfg, err);
	bool		ok;

	if (wd == NULL)
		return false;
	ok = waldir_scan(wd, res, err);
	waldir_close(wd);
	return ok;
}
