/*
 * timeline.h — timeline history files ("00000003.history").
 *
 * Each non-comment line is "parentTLI<TAB>switchpoint<TAB>reason": timeline
 * parentTLI ran until LSN switchpoint (exclusive), where its child began.
 * As PostgreSQL's readTimeLineHistory(): leading whitespace is skipped,
 * blank lines and lines starting with '#' are ignored, the separator may be
 * any run of whitespace, the reason is free text and may be missing, parent
 * timelines must increase.  Unlike PostgreSQL (which stops at a line it
 * cannot parse with a FATAL "syntax error in history file"), malformed lines
 * are rejected with their line number.
 *
 * The parsed history of timeline T is the list of entries in the file plus T
 * itself, which has no end (switchpoint LSN_INVALID meaning "still running").
 */
#ifndef WALSIM_TIMELINE_H
#define WALSIM_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

typedef struct TimelineEntry
{
	uint32_t	tli;
	uint64_t	begin;			/* first LSN on this timeline (0 for the oldest) */
	uint64_t	end;			/* switch point; 0 = current timeline, no end */
	char	   *reason;			/* malloc'd text after the switch point, or NULL */
} TimelineEntry;

typedef struct TimelineHistory
{
	uint32_t	target;			/* the timeline the file belongs to */
	size_t		count;			/* entries, oldest first, target last */
	TimelineEntry *entries;		/* malloc'd */
} TimelineHistory;

/*
 * Parse the contents of the history file of timeline target (len bytes, not
 * necessarily NUL-terminated).  On success *out owns malloc'd memory (free
 * with timeline_history_free()).  Errors: "line 3: invalid switch point
 * \"0/ZZ\"", "line 2: timeline IDs must be in increasing sequence", "line 4:
 * parent timeline 5 is not less than timeline 5".
 */
bool		timeline_history_parse(const char *text, size_t len, uint32_t target,
								   TimelineHistory *out, WalsimError *err);

/* Read and parse a history file from disk (target taken from the caller). */
bool		timeline_history_read(const char *path, uint32_t target,
								  TimelineHistory *out, WalsimError *err);

void		timeline_history_free(TimelineHistory *h);

/*
 * The timeline holding lsn in this history (tliOfPointInHistory): the entry
 * whose [begin, end) contains lsn, or the target for lsn at or after the
 * last switch point.
 */
uint32_t	timeline_of_lsn(const TimelineHistory *h, uint64_t lsn);

/*
 * Switch point of tli (tliSwitchPoint): the LSN where tli ended, 0 when tli
 * is the target (still running).  False when tli is not in the history.
 */
bool		timeline_switch_point(const TimelineHistory *h, uint32_t tli,
								  uint64_t *lsn, WalsimError *err);

/*
 * Render history as PostgreSQL writes it (writeTimeLineHistory): one line
 * "%u\t%X/%X\t%s\n" per ancestor (the target itself has no line); an entry
 * without a reason gets "no recovery target specified".  Returns a malloc'd
 * string, NULL when out of memory.
 */
char	   *timeline_history_format(const TimelineHistory *h);

#endif							/* WALSIM_TIMELINE_H */
