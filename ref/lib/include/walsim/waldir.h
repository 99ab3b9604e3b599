/*
 * waldir.h — the end of valid WAL in a directory of segment files.
 *
 * Reads segment files named %08X%08X%08X (timeline, log, seg), or
 * NAME.partial when use_partial is set and NAME is absent, in LSN order from
 * a start LSN, verifying every record with walreader.h.  File sizes say
 * nothing about where WAL ends (segments are pre-allocated, recycled or
 * zero-padded), so the end is where the records stop being valid.
 *
 * Timelines: with no history the files of cfg->tli are read.  With a history
 * (the ancestry of cfg->tli, each timeline and the LSN where it begins) each
 * segment is read from the newest timeline that begins at or before the end
 * of that segment and has a file for it, as PostgreSQL's XLogFileReadAnyTLI
 * does; so the segment holding a timeline switch is read from the newer
 * timeline's file.
 *
 * Follow mode: a WalDir remembers where it stopped; each waldir_scan()
 * continues from the valid end, re-reading only from there, so a sender can
 * call it again whenever it wants to know whether more WAL became valid.
 */
#ifndef WALSIM_WALDIR_H
#define WALSIM_WALDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/walreader.h"

typedef struct WalDirTimeline
{
	uint32_t	tli;
	uint64_t	begin_lsn;		/* first LSN of this timeline (0 for the first) */
} WalDirTimeline;

typedef struct WalDirConfig
{
	const char *dir;			/* directory holding the segment files */
	uint32_t	tli;			/* timeline to read (without history) */
	uint64_t	start_lsn;		/* see WalReaderConfig.start_lsn; 0 is fine */
	uint64_t	prev_lsn;		/* see WalReaderConfig.prev_lsn */
	uint32_t	seg_size;		/* 0: take it from the first file's long header */
	uint16_t	magic;			/* expected XLOG_PAGE_MAGIC (15: 0xD110) */
	const WalDirTimeline *history;	/* optional ancestry, any order */
	size_t		nhistory;
	bool		use_partial;	/* read NAME.partial when NAME is missing */
	WalRecordCallback on_record;	/* optional, per valid record */
	void	   *cb_arg;
} WalDirConfig;

typedef struct WalDirResult
{
	WalReadStatus status;		/* why the scan stopped; NEED_DATA when the
								 * next file is missing or ends early */
	uint64_t	valid_end;		/* end of valid WAL */
	uint64_t	last_record;	/* start of the last valid record (0: none) */
	uint64_t	error_lsn;		/* see walreader_error_lsn() */
	uint64_t	records;		/* valid records in total since waldir_open */
	uint32_t	seg_size;		/* segment size used */
	uint32_t	stop_tli;		/* timeline of the file where it stopped */
	char		stop_file[64];	/* name of that file ("" if none was found) */
	char		message[WALSIM_ERROR_MAX];	/* what stopped it, for people */
} WalDirResult;

typedef struct WalDir WalDir;

/* Prepare to scan; fails on a bad config or unreadable directory. */
WalDir	   *waldir_open(const WalDirConfig *cfg, WalsimError *err);

/*
 * Read from where the last scan left valid WAL to where WAL stops being
 * valid now.  Returns false only for I/O errors (err says which file); the
 * end of WAL and its reason, good or bad, are in *res.
 */
bool		waldir_scan(WalDir *wd, WalDirResult *res, WalsimError *err);

void		waldir_close(WalDir *wd);

/* waldir_open + waldir_scan + waldir_close. */
bool		waldir_find_end(const WalDirConfig *cfg, WalDirResult *res,
							WalsimError *err);

#endif							/* WALSIM_WALDIR_H */
