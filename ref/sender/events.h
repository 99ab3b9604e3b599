/*
 * events.h — machine-readable event log of walsim-sender (--json-events).
 *
 * One JSON object per line, appended with a single write(2) on a file
 * opened O_APPEND, so lines from the connection processes never interleave:
 *   {"ts":"2026-11-26T21:40:00.123456Z","pid":123,"event":"start_replication",
 *    "tli":1,"lsn":"0/3000000"}
 * Events: listening, connection, auth_ok, auth_failed, command, error,
 * start_replication, end_of_timeline, timeout, shutdown, disconnect, misbehave.
 */
#ifndef WALSIM_SENDER_EVENTS_H
#define WALSIM_SENDER_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

typedef struct Events
{
	int			fd;				/* -1 when disabled */
} Events;

bool		events_open(Events *ev, const char *path, WalsimError *err);
void		events_close(Events *ev);

/*
 * Emit one event.  The variable part is pairs of (key, value) strings ended
 * by NULL; a key starting with '#' marks a value that is written as a bare
 * JSON number (the '#' is dropped).
 */
void		events_emit(const Events *ev, const char *event,...);

#endif							/* WALSIM_SENDER_EVENTS_H */
