/*
 * events.h — the --json-events log: one JSON object per line, appended and
 * flushed as it happens, for tests and scenario verdicts to read.
 *
 * Every line has "time" (Unix seconds, microsecond precision) and "event":
 *   connected        systemid, timeline, start, server_version, slot
 *   segment_complete file, timeline, end
 *   timeline_switch  from, to, switchpoint, history
 *   verify_failed    lsn, valid_end, reason, message, action
 *   feedback         write, flush, apply, reply_requested
 *   disconnected     reason
 *   stopped          lsn, reason
 */
#ifndef WALSIM_RECEIVER_EVENTS_H
#define WALSIM_RECEIVER_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "walsim/error.h"

typedef struct EventLog
{
	FILE	   *f;				/* NULL: events are not recorded */
} EventLog;

/* Open path for appending (NULL path: a disabled log). */
bool		events_open(EventLog *log, const char *path, WalsimError *err);
void		events_close(EventLog *log);

/*
 * Append one event.  fmt lists fields as pairs of a key and a type letter:
 * "s" string, "u" uint64, "l" LSN (formatted %X/%X), "b" bool, "i" int.
 * Example: events_emit(log, "feedback", "write:l flush:l", w, f).
 */
void		events_emit(EventLog *log, const char *event, const char *fmt,...);

/* JSON string escaping of s into out (always NUL-terminated). */
void		events_escape(const char *s, char *out, size_t outlen);

#endif							/* WALSIM_RECEIVER_EVENTS_H */
