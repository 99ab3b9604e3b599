/*
 * queue.c — the output queue of a walsim-netd pipe: bytes with the time
 * they may leave (delay), spread by the token bucket of bandwidth rules.
 * Order is always preserved: a byte is never released before the bytes
 * queued ahead of it.
 */
#include <stdlib.h>
#include <string.h>

#include "pipe_int.h"

#define SHAPE_CHUNK		16384	/* bandwidth shaping granularity */

void *
pipe_realloc(void *p, size_t n)
{
	void	   *q = realloc(p, n);

	if (q == NULL && n > 0)
		abort();
	return q;
}

void
queue_bytes(Pipe *p, const uint8_t *data, size_t n, uint64_t release_ns)
{
	if (n == 0)
		return;
	if (p->out_head + p->out_len + n > p->out_cap)
	{
		if (p->out_head > 0)
		{
			memmove(p->out, p->out + p->out_head, p->out_len);
			p->out_head = 0;
		}
		if (p->out_len + n > p->out_cap)
		{
			size_t		cap = p->out_cap ? p->out_cap : 65536;

			while (cap < p->out_len + n)
				cap *= 2;
			p->out = pipe_realloc(p->out, cap);
			p->out_cap = cap;
		}
	}
	memcpy(p->out + p->out_head + p->out_len, data, n);
	p->out_len += n;
	if (release_ns < p->last_release_ns)
		release_ns = p->last_release_ns;	/* order is preserved */
	p->last_release_ns = release_ns;

	/* merge with the last segment when released at the same time */
	if (p->nsegs > p->seg_head && p->segs[p->nsegs - 1].release_ns == release_ns)
	{
		p->segs[p->nsegs - 1].len += n;
		return;
	}
	if (p->nsegs == p->segs_cap)
	{
		if (p->seg_head > 0)
		{
			memmove(p->segs, p->segs + p->seg_head, (p->nsegs - p->seg_head) * sizeof(Segment));
			p->nsegs -= p->seg_head;
			p->seg_head = 0;
		}
		if (p->nsegs == p->segs_cap)
		{
			p->segs_cap = p->segs_cap ? p->segs_cap * 2 : 64;
			p->segs = pipe_realloc(p->segs, p->segs_cap * sizeof(Segment));
		}
	}
	p->segs[p->nsegs].len = n;
	p->segs[p->nsegs].release_ns = release_ns;
	p->nsegs++;
}

/* Release time of n bytes queued now with this plan (delay, then bandwidth). */
void
queue_shaped(Conn *c, NetdDir dir, FaultSet *fs, const uint8_t *data, size_t n,
			 uint64_t release_ns)
{
	Pipe	   *p = &c->pipe[dir];
	uint64_t	rate = 0;

	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if (f->kind == FK_BANDWIDTH && conn_fault_applies(f, c, dir, p->in_base) &&
			(rate == 0 || f->rate < rate))
			rate = f->rate;
	}
	if (rate == 0)
	{
		if (p->out_len == 0 && data == p->in && n == p->in_len && n > 0 &&
			p->nsegs == p->seg_head)
		{
			/*
			 * The common case of a clean link: the whole input goes out
			 * at once.  Swap the buffers instead of copying them; the
			 * caller sees an empty input afterwards.
			 */
			uint8_t    *tmp = p->out;
			size_t		tcap = p->out_cap;

			p->out = p->in;
			p->out_cap = p->in_cap;
			p->out_head = 0;
			p->out_len = 0;
			p->in = tmp;
			p->in_cap = tcap;
			p->in_len = 0;
			p->in_base += n;
			p->swapped = true;
			/* queue_bytes with the data already in place */
			p->out_len = n;
			if (release_ns < p->last_release_ns)
				release_ns = p->last_release_ns;
			p->last_release_ns = release_ns;
			p->seg_head = p->nsegs = 0;
			if (p->segs_cap == 0)
			{
				p->segs_cap = 64;
				p->segs = pipe_realloc(p->segs, p->segs_cap * sizeof(Segment));
			}
			p->segs[0].len = n;
			p->segs[0].release_ns = release_ns;
			p->nsegs = 1;
			return;
		}
		queue_bytes(p, data, n, release_ns);
		return;
	}
	while (n > 0)
	{
		size_t		k = n < SHAPE_CHUNK ? n : SHAPE_CHUNK;
		uint64_t	start = release_ns > p->bw_next_ns ? release_ns : p->bw_next_ns;
		uint64_t	done = start + (uint64_t) ((double) k * 1e9 / (double) rate);

		p->bw_next_ns = done;
		queue_bytes(p, data, k, done);
		data += k;
		n -= k;
	}
}

/*
 * Bytes that a delay or bandwidth fault scheduled for later are held only
 * while such a fault is in force on this pipe.  Once it is deleted, healed
 * or expired they go out at once, in order, and the bandwidth clock starts
 * afresh (docs/netd.md: "fault del/heal release held bytes at once").
 * Triggers and fire counts do not matter here: a delay limited to N
 * messages still holds its last messages for their full delay.
 */
void
queue_release_unshaped(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];

	if (p->last_release_ns <= now_ns && p->bw_next_ns <= now_ns)
		return;					/* nothing is scheduled ahead: the usual case */
	for (int i = 0; i < fs->nfaults; i++)
	{
		const Fault *f = &fs->faults[i];

		if ((f->kind == FK_DELAY || f->kind == FK_BANDWIDTH) && !f->expired &&
			strcmp(f->link, c->link) == 0 && (f->dirs & NETD_DIR_BIT(dir)) &&
			(f->app[0] == '\0' || strcmp(f->app, c->info.app) == 0))
			return;
	}
	for (size_t i = p->seg_head; i < p->nsegs; i++)
		if (p->segs[i].release_ns > now_ns)
			p->segs[i].release_ns = now_ns;
	if (p->last_release_ns > now_ns)
		p->last_release_ns = now_ns;
	if (p->bw_next_ns > now_ns)
		p->bw_next_ns = now_ns;
}

size_t
pipe_ready(const Pipe *p, uint64_t now_ns, const uint8_t **data)
{
	size_t		n = 0;

	for (size_t i = p->seg_head; i < p->nsegs && p->segs[i].release_ns <= now_ns; i++)
		n += p->segs[i].len;
	*data = p->out + p->out_head;
	return n;
}

void
pipe_written(Pipe *p, size_t n)
{
	p->bytes_out += n;
	p->out_head += n;
	p->out_len -= n;
	while (n > 0 && p->seg_head < p->nsegs)
	{
		Segment    *s = &p->segs[p->seg_head];

		if (s->len > n)
		{
			s->len -= n;
			break;
		}
		n -= s->len;
		p->seg_head++;
	}
	if (p->out_len == 0)
		p->out_head = 0;
	if (p->seg_head == p->nsegs)
		p->seg_head = p->nsegs = 0;
}

uint64_t
pipe_next_release(const Pipe *p)
{
	return p->seg_head < p->nsegs ? p->segs[p->seg_head].release_ns : UINT64_MAX;
}

uint64_t
pipe_wait_ns(uint64_t deadline_ns, uint64_t now_ns, uint64_t cap_ns)
{
	/* overdue first: deadline - now would wrap around to a huge wait */
	if (deadline_ns <= now_ns)
		return 0;
	return deadline_ns - now_ns < cap_ns ? deadline_ns - now_ns : cap_ns;
}

size_t
pipe_backlog(const Pipe *p)
{
	return p->in_len + p->out_len;
}
