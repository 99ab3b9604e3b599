/*
 * walfiles.c — segment and history files of walsim-receiver (walfiles.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walfiles.h"

#define PARTIAL_SUFFIX ".partial"
#define ZERO_CHUNK (64 * 1024)

static const uint8_t zero_block[ZERO_CHUNK];

/* ------------------------------------------------------- finding the start */

typedef struct FoundFile
{
	uint32_t	tli;
	uint64_t	segno;
	bool		partial;
} FoundFile;

/* Is (a) a better resume point than (b)?  Higher segno, then TLI, complete first. */
static bool
better_file(const FoundFile *a, const FoundFile *b)
{
	if (a->segno != b->segno)
		return a->segno > b->segno;
	if (a->tli != b->tli)
		return a->tli > b->tli;
	return !a->partial && b->partial;
}

static bool
file_size_at(int dirfd, const char *name, off_t *size)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode))
		return false;
	*size = st.st_size;
	return true;
}

/* Collect the WAL files of the directory into a malloc'd array. */
static bool
scan_directory(int dirfd, uint32_t segsize, FoundFile **files, size_t *nfiles,
			   WalsimError *err)
{
	int			fd = dup(dirfd);
	DIR		   *dir;
	struct dirent *de;
	size_t		cap = 0;

	*files = NULL;
	*nfiles = 0;
	if (fd < 0 || (dir = fdopendir(fd)) == NULL)
	{
		if (fd >= 0)
			close(fd);
		return walsim_error_set(err, "could not open directory: %s", strerror(errno));
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL)
	{
		WalFileName parsed;
		off_t		size;

		/* other files (history, .tmp, foreign files) are not resume points */
		if (!wal_file_name_parse(de->d_name, segsize, &parsed, NULL) ||
			parsed.kind == WAL_FILE_HISTORY)
			continue;
		if (!file_size_at(dirfd, de->d_name, &size))
			continue;
		if (parsed.kind == WAL_FILE_SEGMENT && size != (off_t) segsize)
		{
			fprintf(stderr, "walsim-receiver: warning: segment file \"%s\" has incorrect size %lld, skipping\n",
					de->d_name, (long long) size);
			continue;
		}
		if (*nfiles == cap)
		{
			FoundFile  *n;

			cap = cap ? cap * 2 : 64;
			n = realloc(*files, cap * sizeof(FoundFile));
			if (n == NULL)
			{
				closedir(dir);
				free(*files);
				*files = NULL;
				return walsim_error_set(err, "out of memory scanning the directory");
			}
			*files = n;
		}
		(*files)[*nfiles].tli = parsed.tli;
		(*files)[*nfiles].segno = parsed.segno;
		(*files)[*nfiles].partial = parsed.kind == WAL_FILE_PARTIAL;
		(*nfiles)++;
	}
	closedir(dir);
	return true;
}

static bool
has_file(const FoundFile *files, size_t n, uint32_t tli, uint64_t segno, bool partial)
{
	for (size_t i = 0; i < n; i++)
		if (files[i].tli == tli && files[i].segno == segno && files[i].partial == partial)
			return true;
	return false;
}

bool
walfiles_find_start(int dirfd, uint32_t segsize, StreamStart *out, WalsimError *err)
{
	FoundFile  *files;
	size_t		n;
	FoundFile	best;

	memset(out, 0, sizeof(*out));
	if (!scan_directory(dirfd, segsize, &files, &n, err))
		return false;
	if (n == 0)
	{
		free(files);
		return true;
	}
	best = files[0];
	for (size_t i = 1; i < n; i++)
		if (better_file(&files[i], &best))
			best = files[i];

	out->found = true;
	out->tli = best.tli;
	if (!best.partial)
	{
		out->segno = best.segno + 1;
		out->from_partial = false;
	}
	else
	{
		uint64_t	segno = best.segno;

		/* step back over segments left unverified (see walfiles.h) */
		while (segno > 0 && has_file(files, n, best.tli, segno - 1, true) &&
			   !has_file(files, n, best.tli, segno - 1, false))
			segno--;
		out->segno = segno;
		out->from_partial = true;
	}
	free(files);
	return true;
}

/* ---------------------------------------------------------- segment files */

static bool
fsync_dir(int dirfd, WalsimError *err)
{
	if (fsync(dirfd) != 0)
		return walsim_error_set(err, "could not fsync directory: %s", strerror(errno));
	return true;
}

static bool
pwrite_all(int fd, const void *data, size_t len, off_t offset, const char *name,
		   WalsimError *err)
{
	const uint8_t *p = data;

	while (len > 0)
	{
		ssize_t		n = pwrite(fd, p, len, offset);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return walsim_error_set(err, "could not write to \"%s\" at offset %lld: %s",
									name, (long long) offset, strerror(errno));
		}
		if (n == 0)
			return walsim_error_set(err, "could not write to \"%s\": no space written", name);
		p += n;
		len -= (size_t) n;
		offset += n;
	}
	return true;
}

static bool
write_zeros(int fd, off_t from, off_t to, const char *name, WalsimError *err)
{
	while (from < to)
	{
		size_t		n = (size_t) (to - from) < ZERO_CHUNK ? (size_t) (to - from) : ZERO_CHUNK;

		if (!pwrite_all(fd, zero_block, n, from, name, err))
			return false;
		from += (off_t) n;
	}
	return true;
}

/*
 * Fill a new segment file with zeros and make file and name durable, so
 * the later writes never extend the file (what pg_receivewal does for
 * uncompressed segments: the metadata is settled before any WAL arrives).
 *
 * Without sync there is nothing to settle: the file is extended to its size
 * with ftruncate() instead (a sparse file reads as the same zeros).  Writing
 * the zeros first made the kernel copy every byte of WAL twice, the bulk of
 * the receiver's CPU (docs/benchmarks.md).
 */
static bool
pad_new_segment(int fd, int dirfd, const char *name, uint32_t segsize, bool sync,
				WalsimError *err)
{
	if (!sync)
	{
		if (ftruncate(fd, (off_t) segsize) != 0)
			return walsim_error_set(err, "could not extend \"%s\" to %" PRIu32 " bytes: %s",
									name, segsize, strerror(errno));
		return true;
	}
	if (!write_zeros(fd, 0, segsize, name, err))
		return false;
	if (fsync(fd) != 0)
		return walsim_error_set(err, "could not fsync \"%s\": %s", name, strerror(errno));
	return fsync_dir(dirfd, err);
}

bool
segment_open(SegmentFile *seg, int dirfd, uint32_t tli, uint64_t segno,
			 uint32_t segsize, bool sync, mode_t mode, WalsimError *err)
{
	char		partial[WAL_FILE_NAME_MAX];
	struct stat st;
	int			fd;
	bool		created = false;

	wal_partial_name(partial, tli, segno, segsize);
	fd = openat(dirfd, partial, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
	{
		fd = openat(dirfd, partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		created = true;
	}
	if (fd < 0)
		return walsim_error_set(err, "could not open \"%s\": %s", partial, strerror(errno));
	if (fstat(fd, &st) != 0)
	{
		walsim_error_set(err, "could not stat \"%s\": %s", partial, strerror(errno));
		close(fd);
		return false;
	}
	if (st.st_size == 0)
	{
		/* new (or an empty one left by a crash during creation): pad it */
		if (!pad_new_segment(fd, dirfd, partial, segsize, sync, err))
		{
			close(fd);
			if (created)
				unlinkat(dirfd, partial, 0);
			return false;
		}
	}
	else if (st.st_size == (off_t) segsize)
	{
		/* what a previous run left: make sure it is on disk before reusing it */
		if (sync && fsync(fd) != 0)
		{
			walsim_error_set(err, "could not fsync \"%s\": %s", partial, strerror(errno));
			close(fd);
			return false;
		}
	}
	else
	{
		walsim_error_set(err, "write-ahead log file \"%s\" has %lld bytes, should be 0 or %" PRIu32,
						 partial, (long long) st.st_size, segsize);
		close(fd);
		return false;
	}
	seg->fd = fd;
	seg->tli = tli;
	seg->segno = segno;
	seg->segsize = segsize;
	wal_segment_name(seg->name, tli, segno, segsize);
	return true;
}

bool
segment_write(SegmentFile *seg, uint32_t offset, const void *data, size_t len,
			  WalsimError *err)
{
	if ((uint64_t) offset + len > seg->segsize)
		return walsim_error_set(err, "write of %zu bytes at offset %" PRIu32 " passes the end of segment %s",
								len, offset, seg->name);
	return pwrite_all(seg->fd, data, len, offset, seg->name, err);
}

bool
segment_sync(SegmentFile *seg, WalsimError *err)
{
	if (fsync(seg->fd) != 0)
		return walsim_error_set(err, "could not fsync \"%s.partial\": %s", seg->name, strerror(errno));
	return true;
}

bool
segment_zero_range(SegmentFile *seg, uint32_t from, uint32_t to, bool sync,
				   WalsimError *err)
{
	if (from >= to)
		return true;
	if (!write_zeros(seg->fd, from, to, seg->name, err))
		return false;
	return !sync || segment_sync(seg, err);
}

bool
segment_close(SegmentFile *seg, bool sync, WalsimError *err)
{
	bool		ok = true;

	if (seg->fd < 0)
		return true;
	if (sync)
		ok = segment_sync(seg, err);
	if (close(seg->fd) != 0 && ok)
		ok = walsim_error_set(err, "could not close \"%s.partial\": %s", seg->name, strerror(errno));
	seg->fd = -1;
	return ok;
}

bool
segment_complete(int dirfd, uint32_t tli, uint64_t segno, uint32_t segsize,
				 bool sync, WalsimError *err)
{
	char		partial[WAL_FILE_NAME_MAX];
	char		name[WAL_FILE_NAME_MAX];

	wal_partial_name(partial, tli, segno, segsize);
	wal_segment_name(name, tli, segno, segsize);
	if (sync)
	{
		/* durable_rename(): the data must be on disk before the name says "complete" */
		int			fd = openat(dirfd, partial, O_RDWR | O_CLOEXEC);

		if (fd < 0)
			return walsim_error_set(err, "could not open \"%s\": %s", partial, strerror(errno));
		if (fsync(fd) != 0)
		{
			walsim_error_set(err, "could not fsync \"%s\": %s", partial, strerror(errno));
			close(fd);
			return false;
		}
		close(fd);
	}
	if (renameat(dirfd, partial, dirfd, name) != 0)
		return walsim_error_set(err, "could not rename \"%s\" to \"%s\": %s",
								partial, name, strerror(errno));
	return !sync || fsync_dir(dirfd, err);
}

bool
segment_zero_closed(int dirfd, uint32_t tli, uint64_t segno, uint32_t segsize,
					uint32_t from, uint32_t to, bool sync, WalsimError *err)
{
	SegmentFile seg = SEGMENT_FILE_INIT;
	char		partial[WAL_FILE_NAME_MAX];
	bool		ok;

	if (from >= to)
		return true;
	wal_partial_name(partial, tli, segno, segsize);
	seg.fd = openat(dirfd, partial, O_RDWR | O_CLOEXEC);
	if (seg.fd < 0)
		return walsim_error_set(err, "could not open \"%s\": %s", partial, strerror(errno));
	seg.tli = tli;
	seg.segno = segno;
	seg.segsize = segsize;
	wal_segment_name(seg.name, tli, segno, segsize);
	ok = segment_zero_range(&seg, from, to, sync, err);
	if (!segment_close(&seg, false, ok ? err : NULL))
		ok = false;
	return ok;
}

/* ---------------------------------------------------------- history files */

bool
history_exists(int dirfd, uint32_t tli)
{
	char		name[WAL_FILE_NAME_MAX];
	struct stat st;

	wal_history_name(name, tli);
	return fstatat(dirfd, name, &st, 0) == 0;
}

bool
history_write(int dirfd, uint32_t tli, const char *content, size_t len,
			  bool sync, mode_t mode, WalsimError *err)
{
	char		name[WAL_FILE_NAME_MAX];
	char		tmp[WAL_FILE_NAME_MAX + 8];
	int			fd;

	wal_history_name(name, tli);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return walsim_error_set(err, "could not create \"%s\": %s", tmp, strerror(errno));
	if (!pwrite_all(fd, content, len, 0, tmp, err) ||
		(sync && fsync(fd) != 0 &&
		 !walsim_error_set(err, "could not fsync \"%s\": %s", tmp, strerror(errno))))
	{
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return false;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name) != 0)
	{
		walsim_error_set(err, "could not rename \"%s\" to \"%s\": %s", tmp, name, strerror(errno));
		unlinkat(dirfd, tmp, 0);
		return false;
	}
	return !sync || fsync_dir(dirfd, err);
}
