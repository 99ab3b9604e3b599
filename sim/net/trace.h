/*
 * trace.h — the JSON Lines trace of walsim-netd (docs/netd.md, "Trace").
 *
 * Every event is one line: {"seq":N,"t_ns":T,"seed":S,"event":"...",...}.
 * The caller appends the event's fields between trace_begin() and
 * trace_end().  t_ns is whatever the caller passes: CLOCK_MONOTONIC in the
 * daemon, virtual time in replay mode, so a replay's trace depends only on
 * the seed, the rules and the input.
 */
#ifndef WALSIM_NETD_TRACE_H
#define WALSIM_NETD_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "walsim/json.h"

typedef struct Trace
{
	FILE	   *f;				/* NULL = tracing off (events are still counted) */
	uint64_t	seq;
	uint64_t	seed;
} Trace;

/* Start event `event` in buf; t may be NULL (no trace: the line is built and dropped). */
void		trace_begin(Trace *t, JsonBuf *j, char *buf, size_t cap,
						uint64_t now_ns, const char *event);
/* Close the line, count it, and write it (flushed: a trace is read while netd runs). */
void		trace_end(Trace *t, JsonBuf *j);

#endif							/* WALSIM_NETD_TRACE_H */
