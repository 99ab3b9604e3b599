/*
 * walfiles.h — the files walsim-receiver keeps in its directory, handled as
 * pg_receivewal 15 does (receivelog.c, walmethods.c, pg_receivewal.c):
 *
 *   NAME.partial   the segment being received, created zero-padded to the
 *                  full segment size and fsynced (file and directory) before
 *                  any WAL is written into it;
 *   NAME           a complete segment: NAME.partial renamed durably (fsync
 *                  of the file, rename, fsync of the directory);
 *   TTTTTTTT.history  a timeline history file, written as .tmp and renamed.
 *
 * All paths are relative to an open directory descriptor so a rename and the
 * directory fsync that makes it durable refer to the same directory.
 */
#ifndef WALSIM_RECEIVER_WALFILES_H
#define WALSIM_RECEIVER_WALFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "walsim/error.h"
#include "walsim/segment.h"

/* Where streaming resumes, as found in the directory. */
typedef struct StreamStart
{
	bool		found;			/* false: the directory holds no WAL */
	uint32_t	tli;
	uint64_t	segno;			/* stream from the start of this segment */
	bool		from_partial;	/* it is the segment of a .partial file */
} StreamStart;

/*
 * FindStreamingStart: the highest segment number (then the highest
 * timeline) among complete segments of the right size and .partial files; a
 * complete one resumes at the next segment, a .partial at its own start.
 * Complete files of the wrong size are skipped with a warning on stderr.
 *
 * One addition: a .partial directly preceded by another .partial of the same
 * timeline (and no complete file for it) moves the start back to the earlier
 * one.  walsim-receiver leaves a finished segment as .partial until the record
 * that crosses its end has been verified (see stream.c), so after a crash
 * the unverified segment is streamed again.  pg_receivewal never produces
 * such a pair except across timelines, which this rule does not touch.
 */
bool		walfiles_find_start(int dirfd, uint32_t segsize, StreamStart *out,
								WalsimError *err);

/* An open segment file (NAME.partial). */
typedef struct SegmentFile
{
	int			fd;				/* -1 when no file is open */
	uint32_t	tli;
	uint64_t	segno;
	uint32_t	segsize;
	char		name[WAL_FILE_NAME_MAX];	/* NAME, without .partial */
} SegmentFile;

#define SEGMENT_FILE_INIT {.fd = -1}

/*
 * Open NAME.partial for (tli, segno): create it zero-padded (fsync of file
 * and directory when sync), or reopen an existing one of exactly segsize
 * bytes (fsynced when sync), or reuse one of size 0.  Any other size is an
 * error naming the file and both sizes.  mode: permission bits for new files.
 */
bool		segment_open(SegmentFile *seg, int dirfd, uint32_t tli, uint64_t segno,
						 uint32_t segsize, bool sync, mode_t mode, WalsimError *err);

/* pwrite len bytes at offset within the segment (all or an error). */
bool		segment_write(SegmentFile *seg, uint32_t offset, const void *data,
						  size_t len, WalsimError *err);

/* fsync the open file. */
bool		segment_sync(SegmentFile *seg, WalsimError *err);

/*
 * Overwrite [from, to) of the open file with zeros (and fsync when sync):
 * removes bytes received after the last verified record.
 */
bool		segment_zero_range(SegmentFile *seg, uint32_t from, uint32_t to,
							   bool sync, WalsimError *err);

/* fsync (when sync) and close, leaving NAME.partial in place. */
bool		segment_close(SegmentFile *seg, bool sync, WalsimError *err);

/*
 * Rename NAME.partial to NAME for a closed segment, durably when sync
 * (fsync file, rename, fsync directory), as durable_rename() does.
 */
bool		segment_complete(int dirfd, uint32_t tli, uint64_t segno,
							 uint32_t segsize, bool sync, WalsimError *err);

/*
 * Zero [from, to) of the closed NAME.partial of (tli, segno), fsynced when
 * sync: segment_zero_range() for a segment whose file is no longer open.
 */
bool		segment_zero_closed(int dirfd, uint32_t tli, uint64_t segno,
								uint32_t segsize, uint32_t from, uint32_t to,
								bool sync, WalsimError *err);

/* Does TTTTTTTT.history exist? */
bool		history_exists(int dirfd, uint32_t tli);

/* Write TTTTTTTT.history with exactly these bytes (.tmp, fsync, rename, fsync dir). */
bool		history_write(int dirfd, uint32_t tli, const char *content, size_t len,
						  bool sync, mode_t mode, WalsimError *err);

#endif							/* WALSIM_RECEIVER_WALFILES_H */
