/*
 * events.h — the machine-readable event log of walsim-sender and
 * walsim-receiver (--json-events FILE); the format is in docs/events.md.
 *
 * One JSON object per line, each written with a single write(2) on a file
 * opened O_APPEND, so lines from several processes (the sender's connection
 * processes) never interleave and a reader never sees half a line:
 *
 *   {"time":1795728281.397770,"pid":4242,"event":"start_replication","timeline":1,...}
 *
 * "time" is Unix time in seconds with microseconds (the clock of the disk
 * layer's trace and of a run's "wall" field), "pid" the writing process.
 * A line is built in an EventLine on the stack (no allocation):
 *
 *   EventLine	ev;
 *
 *   if (events_begin(log, &ev, "feedback"))
 *   {
 *       json_lsn(&ev.j, "write", write);
 *       events_end(log, &ev);
 *   }
 *
 * String values longer than EVENT_STRING_MAX bytes are cut and end in
 * "..."; a line that still does not fit EVENT_LINE_MAX keeps only time,
 * pid and event and gets "truncated":true.
 */
#ifndef WALSIM_EVENTS_H
#define WALSIM_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "walsim/error.h"
#include "walsim/json.h"

#define EVENT_LINE_MAX		8192
#define EVENT_STRING_MAX	1024

typedef struct EventLog
{
	int			fd;				/* -1: events are not recorded */
} EventLog;

typedef struct EventLine
{
	JsonBuf		j;				/* add the event's fields with json_*(&line.j, ...) */
	size_t		head_len;		/* length of time, pid and event */
	char		buf[EVENT_LINE_MAX];
} EventLine;

/* Open path for appending (created 0644); a NULL path gives a disabled log. */
bool		events_open(EventLog *log, const char *path, WalsimError *err);
void		events_close(EventLog *log);

/* Start a line of event; false when the log is disabled (write no fields). */
bool		events_begin(const EventLog *log, EventLine *line, const char *event);

/* Close the line and append it. */
void		events_end(const EventLog *log, EventLine *line);

#endif							/* WALSIM_EVENTS_H */
