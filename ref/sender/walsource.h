/*
 * walsource.h — the WAL a walsim-sender serves: a directory of segment files
 * (an archive, a copied pg_wal, or a directory a receiver is filling), its
 * timelines, and how far its WAL is valid.
 *
 * The flush pointer of a real primary becomes here the end of valid WAL as
 * libwalsim's waldir finds it by verifying records (page headers, xl_prev,
 * CRC, XLOG_SWITCH), never from file sizes.  The current timeline is the
 * highest one with a history file or a segment; its history file gives the
 * ancestry and the switch points that end the older timelines.  The WAL's
 * page magic says which PostgreSQL major wrote it (13 to 18); every segment
 * of a directory must carry the same one.
 */
#ifndef WALSIM_SENDER_WALSOURCE_H
#define WALSIM_SENDER_WALSOURCE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/timeline.h"
#include "walsim/waldir.h"
#include "walsim/walpage.h"

typedef struct WalSource
{
	char		dir[PATH_MAX];
	uint32_t	seg_size;
	uint64_t	sysid;			/* from the long page headers */
	const WalVersionInfo *version;	/* the major whose page magic the files carry */
	uint32_t	tli;			/* current (newest) timeline */
	TimelineHistory history;	/* ancestry of tli, oldest first, tli last */
	uint64_t	oldest_lsn;		/* start of the oldest segment present */
	WalDir	   *wd;				/* scanner of the current timeline's WAL */
	uint64_t	end;			/* end of valid WAL on tli */
	char		stop_message[WALSIM_ERROR_MAX];
	/* the segment file open for reading */
	int			read_fd;
	uint32_t	read_tli;
	uint64_t	read_segno;
} WalSource;

/* Scan dir: segment size, system id, timelines, end of valid WAL. */
bool		walsource_open(WalSource *s, const char *dir, WalsimError *err);
void		walsource_close(WalSource *s);

/* In a forked connection process: stop sharing file offsets with the parent. */
bool		walsource_after_fork(WalSource *s, WalsimError *err);

/*
 * Look again: a new timeline (history file) and WAL that became valid since
 * the last look.  *changed (may be NULL) says whether the end or the
 * timeline moved.
 */
bool		walsource_refresh(WalSource *s, bool *changed, WalsimError *err);

/*
 * Switch point of tli in the current history (0 when tli is current);
 * false when tli is not in the history.
 */
bool		walsource_switch_point(const WalSource *s, uint32_t tli, uint64_t *lsn);

/*
 * Copy len WAL bytes at lsn as seen from timeline tli (len must not cross a
 * segment boundary).  The segment holding a switch point is read from the
 * old timeline's own file when present, else from the newer timeline's file
 * (as PostgreSQL's WalSndSegmentOpen does).  When no
 * file holds that segment, *missing is set, missing_name gets the file name
 * (>= 64 bytes) and false is returned.
 */
bool		walsource_read(WalSource *s, uint32_t tli, uint64_t lsn, void *buf,
						   size_t len, bool *missing, char *missing_name,
						   WalsimError *err);

/* Contents of %08X.history for tli (malloc'd); false when absent/unreadable. */
bool		walsource_history_file(const WalSource *s, uint32_t tli, char **content,
								   size_t *len, WalsimError *err);

/*
 * Byte length of the segment file on disk holding lsn on tli (0 if none);
 * used by the "unflushed" misbehaviour to serve bytes past the valid end.
 */
uint64_t	walsource_file_end(WalSource *s, uint32_t tli, uint64_t lsn);

#endif							/* WALSIM_SENDER_WALSOURCE_H */
