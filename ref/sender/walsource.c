/*
 * walsource.c — directory scanning, timelines and reads (see walsource.h).
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
#include "walsim/walpage.h"
#include "walsource.h"

/* Is name 24 upper-case hex digits, optionally followed by ".partial"? */
static bool
looks_like_segment(const char *name, bool *partial)
{
	size_t		len = strlen(name);

	if (len != WAL_SEGMENT_NAME_LEN && !(len == WAL_SEGMENT_NAME_LEN + 8 && strcmp(name + 24, ".partial") == 0))
		return false;
	for (int i = 0; i < WAL_SEGMENT_NAME_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
			return false;
	*partial = len != WAL_SEGMENT_NAME_LEN;
	return true;
}

/* Read the long page header at the start of a segment file. */
static bool
read_long_header(const char *path, WalPageHeader *hdr, WalsimError *err)
{
	uint8_t		buf[WAL_LONG_PHD_SIZE];
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;

	if (fd < 0)
		return walsim_error_set(err, "could not open \"%s\": %s", path, strerror(errno));
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n != (ssize_t) sizeof(buf))
		return walsim_error_set(err, "\"%s\": shorter than a long page header (%zd bytes)", path, n);
	if (!wal_page_header_decode(buf, sizeof(buf), hdr, err))
	{
		walsim_error_prefix(err, "\"%s\": ", path);
		return false;
	}
	return true;
}

/*
 * Walk the directory once: the segment size and system id from the long
 * headers (all must agree; an unwritten .partial is skipped), the highest
 * timeline and the oldest segment.
 */
static bool
scan_directory(WalSource *s, WalsimError *err)
{
	DIR		   *d = opendir(s->dir);
	struct dirent *de;
	uint32_t	max_tli = 0;
	bool		have_segment = false;
	uint64_t	oldest = UINT64_MAX;
	char		first_file[PATH_MAX] = "";

	if (d == NULL)
		return walsim_error_set(err, "could not open WAL directory \"%s\": %s", s->dir, strerror(errno));
	s->seg_size = 0;
	s->sysid = 0;
	s->version = NULL;
	while ((de = readdir(d)) != NULL)
	{
		bool		partial;
		char		path[PATH_MAX + 300];
		WalPageHeader hdr;
		WalFileName fn;
		char		base[WAL_FILE_NAME_MAX];

		if (strlen(de->d_name) == 16 && strcmp(de->d_name + 8, ".history") == 0)
		{
			unsigned int tli;

			if (sscanf(de->d_name, "%08X", &tli) == 1 && tli > max_tli)
				max_tli = tli;
			continue;
		}
		if (!looks_like_segment(de->d_name, &partial))
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
		if (!read_long_header(path, &hdr, err))
		{
			if (partial)
				continue;		/* a receiver may have just created it */
			closedir(d);
			return false;
		}
		if (partial && hdr.magic == 0)
			continue;
		if (wal_version_by_magic(hdr.magic) == NULL)
		{
			char		known[160];

			/* the file's name only: the directory may be long, the list of magics must fit */
			walsim_error_set(err, "%s: first page has magic %04X, which is of %s",
							 de->d_name, hdr.magic, wal_magic_describe(hdr.magic, known, sizeof(known)));
			closedir(d);
			return false;
		}
		if (!hdr.is_long)
		{
			walsim_error_set(err, "\"%s\": first page has info %04X, not a long page header", path, hdr.info);
			closedir(d);
			return false;
		}
		if (s->version != NULL && hdr.magic != s->version->page_magic)
		{
			walsim_error_set(err, "\"%s\" holds WAL of PostgreSQL %d (magic %04X), but \"%s\" of PostgreSQL %d: one directory must hold one major's WAL",
							 de->d_name, wal_version_by_magic(hdr.magic)->major, hdr.magic,
							 first_file, s->version->major);
			closedir(d);
			return false;
		}
		if (s->seg_size == 0)
		{
			if (!wal_segment_size_check(hdr.seg_size, err))
			{
				closedir(d);
				walsim_error_prefix(err, "\"%s\": ", path);
				return false;
			}
			s->seg_size = hdr.seg_size;
			s->sysid = hdr.sysid;
			s->version = wal_version_by_magic(hdr.magic);
			snprintf(first_file, sizeof(first_file), "%s", de->d_name);
		}
		else if (hdr.sysid != s->sysid || hdr.seg_size != s->seg_size)
		{
			/* format before closedir(): de points into the DIR */
			walsim_error_set(err, "\"%s\" belongs to system %llu with %u-byte segments, but \"%s\" to system %llu with %u-byte segments: one directory must hold one system's WAL",
							 de->d_name, (unsigned long long) hdr.sysid, hdr.seg_size,
							 first_file, (unsigned long long) s->sysid, s->seg_size);
			closedir(d);
			return false;
		}
		memcpy(base, de->d_name, WAL_SEGMENT_NAME_LEN);
		base[WAL_SEGMENT_NAME_LEN] = '\0';
		if (!wal_file_name_parse(base, s->seg_size, &fn, err))
		{
			closedir(d);
			return false;
		}
		have_segment = true;
		if (fn.tli > max_tli)
			max_tli = fn.tli;
		if (fn.segno < oldest)
			oldest = fn.segno;
	}
	closedir(d);
	if (!have_segment)
		return walsim_error_set(err, "no WAL segment files in \"%s\"", s->dir);
	s->tli = max_tli;
	s->oldest_lsn = wal_segno_to_lsn(oldest, 0, s->seg_size);
	return true;
}

static bool
load_history(WalSource *s, uint32_t tli, TimelineHistory *h, WalsimError *err)
{
	char		path[PATH_MAX + 64];
	char		name[WAL_FILE_NAME_MAX];

	if (tli == 1)
		return timeline_history_parse("", 0, 1, h, err);
	wal_history_name(name, tli);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if (!timeline_history_read(path, tli, h, err))
	{
		walsim_error_prefix(err, "timeline %u: ", tli);
		return false;
	}
	return true;
}

/* (Re)start the valid-WAL scanner for the current timeline's ancestry. */
static bool
start_scanner(WalSource *s, uint64_t from, WalsimError *err)
{
	WalDirTimeline tl[64];
	size_t		n = 0;
	WalDirConfig cfg = {0};

	for (size_t i = 0; i < s->history.count && n < 64; i++)
	{
		tl[n].tli = s->history.entries[i].tli;
		tl[n].begin_lsn = s->history.entries[i].begin;
		n++;
	}
	cfg.dir = s->dir;
	cfg.tli = s->tli;
	cfg.start_lsn = from;
	cfg.seg_size = s->seg_size;
	cfg.magic = s->version->page_magic;
	cfg.history = tl;
	cfg.nhistory = n;
	cfg.use_partial = true;
	if (s->wd)
		waldir_close(s->wd);
	s->wd = waldir_open(&cfg, err);
	return s->wd != NULL;
}

static bool
scan_end(WalSource *s, WalsimError *err)
{
	WalDirResult res;

	if (!waldir_scan(s->wd, &res, err))
		return false;
	if (res.valid_end > s->end)
		s->end = res.valid_end;
	snprintf(s->stop_message, sizeof(s->stop_message), "%s", res.message);
	return true;
}

bool
walsource_open(WalSource *s, const char *dir, WalsimError *err)
{
	memset(s, 0, sizeof(*s));
	s->read_fd = -1;
	if (strlen(dir) >= sizeof(s->dir))
		return walsim_error_set(err, "WAL directory path too long");
	strcpy(s->dir, dir);
	if (!scan_directory(s, err))
		return false;
	if (!load_history(s, s->tli, &s->history, err))
		return false;
	s->end = s->oldest_lsn;
	if (!start_scanner(s, s->oldest_lsn, err))
		return false;
	return scan_end(s, err);
}

bool
walsource_after_fork(WalSource *s, WalsimError *err)
{
	/*
	 * The scanner's open file shares its offset with the listener's copy;
	 * a private scanner continues from the page holding the inherited end.
	 */
	if (s->read_fd >= 0)
		close(s->read_fd);
	s->read_fd = -1;
	return start_scanner(s, lsn_align_down(s->end, WAL_BLCKSZ), err);
}

void
walsource_close(WalSource *s)
{
	if (s->wd)
		waldir_close(s->wd);
	s->wd = NULL;
	if (s->read_fd >= 0)
		close(s->read_fd);
	s->read_fd = -1;
	timeline_history_free(&s->history);
}

bool
walsource_refresh(WalSource *s, bool *changed, WalsimError *err)
{
	char		path[PATH_MAX + 64];
	char		name[WAL_FILE_NAME_MAX];
	struct stat st;
	uint64_t	old_end = s->end;
	uint32_t	old_tli = s->tli;

	/* a promotion upstream shows up as the next timeline's history file */
	wal_history_name(name, s->tli + 1);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if (stat(path, &st) == 0)
	{
		TimelineHistory h;

		if (!load_history(s, s->tli + 1, &h, err))
			return false;
		uint64_t	sp = 0;
		uint64_t	from;

		timeline_history_free(&s->history);
		s->history = h;
		s->tli++;
		timeline_switch_point(&s->history, old_tli, &sp, NULL);
		/*
		 * Re-verify the switch segment from its start, now in the new
		 * timeline's file: that is the file served for it from now on, and
		 * a receiver may still be filling it (pg_receivewal restarts a new
		 * timeline at the segment start, over a zero-padded .partial).  The
		 * end of WAL may move back meanwhile; the old timeline's clients stop
		 * at the switch point anyway.
		 */
		from = lsn_align_down(sp != 0 && sp < s->end ? sp : s->end, s->seg_size);
		if (from < s->oldest_lsn)
			from = s->oldest_lsn;
		s->end = from;
		if (!start_scanner(s, from, err))
			return false;
	}
	if (!scan_end(s, err))
		return false;
	if (changed)
		*changed = s->end != old_end || s->tli != old_tli;
	return true;
}

bool
walsource_switch_point(const WalSource *s, uint32_t tli, uint64_t *lsn)
{
	return timeline_switch_point(&s->history, tli, lsn, NULL);
}

static int
open_segment(const WalSource *s, uint32_t tli, uint64_t segno)
{
	char		name[WAL_FILE_NAME_MAX];
	char		path[PATH_MAX + 64];
	int			fd;

	wal_segment_name(name, tli, segno, s->seg_size);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	snprintf(path, sizeof(path), "%s/%s.partial", s->dir, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * Try one timeline's file for segment segno; remembers the first timeline
 * tried for the "has already been removed" message.
 */
static bool
try_open(WalSource *s, uint32_t file_tli, uint32_t owner, uint64_t segno,
		 uint32_t *first_tli, WalsimError *err)
{
	int			fd;

	if (*first_tli == 0)
		*first_tli = file_tli;
	fd = open_segment(s, file_tli, segno);
	if (fd < 0)
	{
		if (errno != ENOENT)
			walsim_error_set(err, "could not open segment %llu of timeline %u: %s",
							 (unsigned long long) segno, file_tli, strerror(errno));
		return false;
	}
	s->read_fd = fd;
	s->read_tli = owner;
	s->read_segno = segno;
	return true;
}

/*
 * Open a file holding the bytes of segment segno that belong to timeline
 * owner (the timeline that wrote them, per the history).  Owner's own file
 * first: it is the one whose bytes were verified when they became valid,
 * while a newer timeline's copy of the segment may still be being written
 * from its start by a receiver (pg_receivewal restarts a new timeline at the
 * segment start over a zero-padded .partial).  Then the newer timelines'
 * files, which hold the same bytes up to their switch point: that is what
 * PostgreSQL's WalSndSegmentOpen reads for a switch segment, because the old
 * timeline's copy is often never archived.
 */
static bool
open_owner(WalSource *s, uint32_t owner, uint64_t segno, bool *missing,
		   char *missing_name, WalsimError *err)
{
	uint32_t	first_tli = 0;

	*missing = false;
	if (s->read_fd >= 0 && s->read_segno == segno && s->read_tli == owner)
		return true;
	if (s->read_fd >= 0)
		close(s->read_fd);
	s->read_fd = -1;
	if (try_open(s, owner, owner, segno, &first_tli, err))
		return true;
	for (size_t i = 0; i < s->history.count; i++)
	{
		uint32_t	t = s->history.entries[i].tli;

		if (t > owner && try_open(s, t, owner, segno, &first_tli, err))
			return true;
	}
	*missing = true;
	wal_segment_name(missing_name, first_tli ? first_tli : owner, segno, s->seg_size);
	return walsim_error_set(err, "requested WAL segment %s has already been removed", missing_name);
}

/* The history entry of tli, or NULL. */
static const TimelineEntry *
history_entry(const WalSource *s, uint32_t tli)
{
	for (size_t i = 0; i < s->history.count; i++)
		if (s->history.entries[i].tli == tli)
			return &s->history.entries[i];
	return NULL;
}

bool
walsource_read(WalSource *s, uint32_t tli, uint64_t lsn, void *buf, size_t len,
			   bool *missing, char *missing_name, WalsimError *err)
{
	uint64_t	segno = wal_segno_of(lsn, s->seg_size);
	uint32_t	off = wal_segment_offset(lsn, s->seg_size);
	size_t		done = 0;

	*missing = false;
	if ((uint64_t) off + len > s->seg_size)
		return walsim_error_set(err, "read of %zu bytes at offset %u crosses a segment end", len, off);
	if (history_entry(s, tli) == NULL)
		return walsim_error_set(err, "timeline %u is not in the history of timeline %u", tli, s->tli);
	while (done < len)
	{
		uint64_t	pos = lsn + done;
		uint32_t	owner = timeline_of_lsn(&s->history, pos);
		const TimelineEntry *e = history_entry(s, owner);
		size_t		want = len - done;
		ssize_t		n;

		/* bytes past the owner's switch point belong to the next timeline */
		if (e != NULL && e->end != 0 && pos + want > e->end)
			want = (size_t) (e->end - pos);
		if (!open_owner(s, owner, segno, missing, missing_name, err))
			return false;
		n = pread(s->read_fd, (uint8_t *) buf + done, want, (off_t) off + (off_t) done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return walsim_error_set(err, "could not read segment %llu at offset %zu: %s",
									(unsigned long long) segno, off + done, strerror(errno));
		if (n == 0)
		{
			/* a file shorter than the valid end was cut: zeros follow */
			memset((uint8_t *) buf + done, 0, want);
			n = (ssize_t) want;
		}
		done += (size_t) n;
	}
	return true;
}

bool
walsource_history_file(const WalSource *s, uint32_t tli, char **content, size_t *len,
					   WalsimError *err)
{
	char		name[WAL_FILE_NAME_MAX];
	char		path[PATH_MAX + 64];
	int			fd;
	struct stat st;
	ssize_t		n;

	wal_history_name(name, tli);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return walsim_error_set(err, "could not open file \"pg_wal/%s\": %s", name, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_size > 16 * 1024 * 1024)
	{
		close(fd);
		return walsim_error_set(err, "history file \"%s\" is too large", name);
	}
	*content = malloc((size_t) st.st_size + 1);
	if (*content == NULL)
	{
		close(fd);
		return walsim_error_set(err, "out of memory");
	}
	n = pread(fd, *content, (size_t) st.st_size, 0);
	close(fd);
	if (n < 0)
	{
		free(*content);
		return walsim_error_set(err, "could not read file \"%s\": %s", name, strerror(errno));
	}
	(*content)[n] = '\0';
	*len = (size_t) n;
	return true;
}

uint64_t
walsource_file_end(WalSource *s, uint32_t tli, uint64_t lsn)
{
	uint64_t	segno = wal_segno_of(lsn, s->seg_size);
	bool		missing;
	char		name[64];
	struct stat st;

	(void) tli;
	if (!open_owner(s, timeline_of_lsn(&s->history, lsn), segno, &missing, name, NULL))
		return 0;
	if (fstat(s->read_fd, &st) != 0)
		return 0;
	return wal_segno_to_lsn(segno, 0, s->seg_size) + (uint64_t) st.st_size;
}
