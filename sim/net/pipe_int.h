/*
 * pipe_int.h — what the files of walsim-netd's fault core (track.c, plan.c,
 * queue.c, pipe.c) share among themselves.  Not for use outside the pipe
 * module: its interface is pipe.h.
 */
#ifndef WALSIM_NETD_PIPE_INT_H
#define WALSIM_NETD_PIPE_INT_H

#include "pipe.h"

/* The rules' view of one direction of a connection (see fault.h). */
static inline void
conn_scope(const Conn *c, NetdDir dir, uint64_t offset, FaultScope *s)
{
	s->link = c->link;
	s->conn = c->info.key;
	s->app = c->info.app;
	s->src = c->has_src ? c->src : NULL;
	s->dir = dir;
	s->lsn_sent = c->info.last_lsn_sent;
	s->nmsgs = c->pipe[dir].nmsgs;
	s->msgs = c->pipe[dir].msgs;
	s->offset = offset;
}

/* Does rule f apply to this direction of c at stream offset `offset`? */
static inline bool
conn_fault_applies(const Fault *f, const Conn *c, NetdDir dir, uint64_t offset)
{
	FaultScope	s;

	conn_scope(c, dir, offset, &s);
	return fault_applies(f, &s);
}

/* realloc that aborts when memory is exhausted */
void	   *pipe_realloc(void *p, size_t n);

/* ---- track.c ---- */

/* The common coordinates of a trace event about a connection. */
void		pipe_trace_conn(JsonBuf *j, const Conn *c, NetdDir dir);

/* Follow the protocol for one framed message; sets fr's class and counts. */
void		track_message(Conn *c, NetdDir dir, Framed *fr, FaultSet *fs, uint64_t now_ns);

/* ---- plan.c ---- */

/* Decide what happens to the stream range [start, end) (a message or a block). */
void		plan_range(Conn *c, NetdDir dir, const Framed *fr, uint64_t start, uint64_t end,
					   uint64_t unit_index, FaultSet *fs, uint64_t now_ns, Plan *plan);

/*
 * Rule f fired: count it, activate it, and begin its "fault" trace event
 * (the caller adds its fields and calls trace_end).
 */
void		pipe_trace_fire(FaultSet *fs, Fault *f, const Conn *c, NetdDir dir, uint64_t now_ns,
							const Framed *fr, uint64_t offset, JsonBuf *j, char *buf, size_t cap);

/* ---- queue.c ---- */

/* Append n bytes to the output queue, released no earlier than release_ns. */
void		queue_bytes(Pipe *p, const uint8_t *data, size_t n, uint64_t release_ns);

/* Queue n input bytes with this release time, shaped by bandwidth rules. */
void		queue_shaped(Conn *c, NetdDir dir, FaultSet *fs, const uint8_t *data, size_t n,
						 uint64_t release_ns);

/* Release at once what delay/bandwidth rules no longer in force still hold. */
void		queue_release_unshaped(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);

#endif							/* WALSIM_NETD_PIPE_INT_H */
