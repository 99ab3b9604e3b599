/*
 * pipe.c — the mover of walsim-netd's fault core.
 *
 * Bytes read from a pipe's source are appended to its input buffer and fed
 * to the protocol decoder; each framed message gets a Plan (plan.c).  The
 * mover then takes input bytes in stream order, applies the plan that
 * covers them and appends them to the output queue (queue.c) with a
 * release time.  A stalled pipe moves nothing: its input fills up, the
 * daemon stops reading, TCP pushes back, and nothing is lost until the
 * stall is healed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pipe_int.h"

#define OPAQUE_BLOCK	4096	/* decision unit when the stream is not framed */
#define DECODER_CAPTURE 1024	/* enough for every header netd reads */

void
conn_init(Conn *c, const char *link, uint64_t id, bool tls_pass)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->link, sizeof(c->link), "%s", link);
	c->id = id;
	c->tls_pass = tls_pass;
	snprintf(c->info.key, sizeof(c->info.key), "%s/?/%" PRIu64, link, id);
	for (int d = 0; d < 2; d++)
	{
		c->pipe[d].dir = (NetdDir) d;
		wire_decoder_init(&c->pipe[d].dec, d == NETD_UP ? WIRE_FRONTEND : WIRE_BACKEND,
						  0, DECODER_CAPTURE);
	}
}

void
conn_set_raw(Conn *c, const char *src, uint64_t n)
{
	c->raw = true;
	c->pipe[NETD_UP].opaque = true;
	c->pipe[NETD_DOWN].opaque = true;
	snprintf(c->info.key, sizeof(c->info.key), "%s/%s/%" PRIu64, c->link, src, n);
}

void
conn_set_src(Conn *c, const char *src, const char *addr)
{
	c->has_src = true;
	snprintf(c->src, sizeof(c->src), "%s", src);
	if (addr)
		snprintf(c->src_addr, sizeof(c->src_addr), "%s", addr);
}

void
conn_free(Conn *c)
{
	for (int d = 0; d < 2; d++)
	{
		Pipe	   *p = &c->pipe[d];

		wire_decoder_free(&p->dec);
		free(p->in);
		free(p->plans);
		free(p->out);
		free(p->segs);
		p->in = p->out = NULL;
		p->plans = NULL;
		p->segs = NULL;
	}
}

/* ------------------------------------------------------------ plans */

static void
push_plan(Pipe *p, const Plan *plan)
{
	if (p->nplans == p->plans_cap)
	{
		p->plans_cap = p->plans_cap ? p->plans_cap * 2 : 16;
		p->plans = pipe_realloc(p->plans, p->plans_cap * sizeof(Plan));
	}
	p->plans[p->nplans++] = *plan;
}

static void
pop_plan(Pipe *p)
{
	memmove(p->plans, p->plans + 1, (p->nplans - 1) * sizeof(Plan));
	p->nplans--;
}

/* ------------------------------------------------------------ mover */

bool
pipe_stalled(const Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		FaultScope	s;

		if (f->kind != FK_STALL && f->kind != FK_PARTITION)
			continue;
		conn_scope(c, dir, c->pipe[dir].in_base, &s);
		if (fault_applies(f, &s))
		{
			fault_activate(fs, f, &s, now_ns);
			return true;
		}
	}
	return false;
}

static bool
stall_discards(const Conn *c, NetdDir dir, FaultSet *fs)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if ((f->kind == FK_STALL || f->kind == FK_PARTITION) && f->discard &&
			conn_fault_applies(f, c, dir, c->pipe[dir].in_base))
			return true;
	}
	return false;
}

/* Take n bytes off the front of the input buffer. */
static void
consume_input(Pipe *p, size_t n)
{
	p->in_base += n;
	p->in_len -= n;
	if (p->in_len == 0)
		return;
	memmove(p->in, p->in + n, p->in_len);
}

/* The cut_after limit of this pipe, UINT64_MAX if none. */
static uint64_t
cut_limit(Conn *c, NetdDir dir, FaultSet *fs, Fault **which)
{
	uint64_t	limit = UINT64_MAX;

	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if (f->kind == FK_CUT_AFTER && conn_fault_applies(f, c, dir, 0) && f->cut_bytes < limit)
		{
			limit = f->cut_bytes;
			*which = f;
		}
	}
	return limit;
}

/*
 * An opaque stream is planned a block at a time as soon as its first byte
 * arrives, so without this a rule added in the middle of a block (a delay
 * on an idle HTTP connection) would wait up to 4 kB for the next block.
 * When the rule set has changed, the part of the last block that has not
 * arrived yet is planned again with the current rules; the bytes already
 * here keep the plan they had, as framed messages do.  The decision keys do
 * not change (the block's index), so with a rule set that does not change
 * the decisions stay a function of offsets only.
 */
static void
replan_tail(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	uint64_t	arrived = p->in_base + p->in_len;
	Plan	   *last;
	uint64_t	end;

	p->plan_version = fs->version;
	if (p->nplans == 0 || p->block_index == 0)
		return;
	last = &p->plans[p->nplans - 1];
	end = last->end;
	if (end <= arrived)
		return;
	if (last->start >= arrived)
	{
		plan_range(c, dir, NULL, last->start, end, p->block_index - 1, fs, now_ns, last);
		return;
	}
	{
		Plan		rest;

		last->end = arrived;
		plan_range(c, dir, NULL, arrived, end, p->block_index - 1, fs, now_ns, &rest);
		push_plan(p, &rest);
	}
}

static void
move_bytes(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	bool		stalled;
	bool		discard;

	if (p->opaque && p->plan_version != fs->version)
		replan_tail(c, dir, fs, now_ns);
	stalled = pipe_stalled(c, dir, fs, now_ns);
	discard = stalled && stall_discards(c, dir, fs);

	if (stalled && !discard)
		return;
	while (p->nplans > 0 && p->in_len > 0)
	{
		Plan	   *plan = &p->plans[0];
		uint64_t	from = p->in_base;
		uint64_t	to = plan->end < p->in_base + p->in_len ? plan->end : p->in_base + p->in_len;
		size_t		n;

		if (to <= from)
		{
			if (plan->end <= from)
			{
				pop_plan(p);
				continue;
			}
			break;
		}
		n = (size_t) (to - from);
		if (p->cut)
			p->dropped += n;
		else if (discard)
			p->stall_dropped += n;
		else if (plan->drop)
			p->dropped += n;
		else
		{
			Fault	   *cutf = NULL;
			uint64_t	limit = cut_limit(c, dir, fs, &cutf);
			size_t		keep = n;

			if (limit != UINT64_MAX && from + n >= limit)
				keep = limit > from ? (size_t) (limit - from) : 0;
			for (int i = 0; i < plan->ncorrupt; i++)
			{
				if (plan->corrupt_off[i] >= from && plan->corrupt_off[i] < from + keep)
				{
					p->in[plan->corrupt_off[i] - from] ^= plan->corrupt_mask[i];
					p->corrupted++;
				}
			}
			queue_shaped(c, dir, fs, p->in, keep, now_ns + plan->delay_ns);
			if (keep < n || (limit != UINT64_MAX && from + keep >= limit))
			{
				char		buf[512];
				JsonBuf		j;

				p->cut = true;
				p->dropped += n - keep;
				c->want_close = true;
				snprintf(c->close_reason, sizeof(c->close_reason), "cut_after %" PRIu64 " bytes %s (rule %s)",
						 limit, netd_dir_name(dir), cutf->id);
				pipe_trace_fire(fs, cutf, c, dir, now_ns, NULL, limit, &j, buf, sizeof(buf));
				trace_end(fs->trace, &j);
			}
		}
		if (plan->inject_answer && to == plan->end)
			queue_bytes(&c->pipe[NETD_DOWN], (const uint8_t *) "N", 1, now_ns);
		if (p->swapped)
			p->swapped = false;	/* the input was handed over whole */
		else
			consume_input(p, n);
		if (to == plan->end)
			pop_plan(p);
	}
	if (p->cut && p->in_len > 0)
	{
		p->dropped += p->in_len;
		consume_input(p, p->in_len);
	}
}

/* ------------------------------------------------------------ input */

static void
append_input(Pipe *p, const uint8_t *data, size_t len)
{
	if (p->in_len + len > p->in_cap)
	{
		size_t		cap = p->in_cap ? p->in_cap : 65536;

		while (cap < p->in_len + len)
			cap *= 2;
		p->in = pipe_realloc(p->in, cap);
		p->in_cap = cap;
	}
	memcpy(p->in + p->in_len, data, len);
	p->in_len += len;
	p->bytes_in += len;
}

/* Frame and plan everything received but not yet decoded. */
static bool
decode_pending(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	uint64_t	end = p->in_base + p->in_len;

	while (p->decoded < end)
	{
		Framed		fr;
		Plan		plan;
		size_t		used;
		WalsimError err;
		WireStatus	st;

		if (p->opaque)
		{
			/* fixed blocks of the stream: still a function of offsets only */
			p->plan_version = fs->version;
			plan_range(c, dir, NULL, p->decoded, p->decoded + OPAQUE_BLOCK,
					   p->block_index++, fs, now_ns, &plan);
			push_plan(p, &plan);
			p->decoded += OPAQUE_BLOCK;
			continue;
		}
		if (dir == NETD_UP && c->info.awaiting_answer)
			break;				/* TLS or not: the server's answer decides */
		memset(&fr, 0, sizeof(fr));
		st = wire_decoder_next(&p->dec, p->in + (p->decoded - p->in_base),
							   (size_t) (end - p->decoded), &used, &fr.m, &err);
		p->decoded += used;
		if (st == WIRE_FAILED)
		{
			p->failed = true;
			snprintf(p->error, sizeof(p->error), "%s", err.message);
			return false;
		}
		if (st == WIRE_NEED_MORE)
			break;
		track_message(c, dir, &fr, fs, now_ns);
		plan_range(c, dir, &fr, fr.m.offset, fr.m.offset + fr.m.size, fr.m.index,
				   fs, now_ns, &plan);
		if (fr.m.kind == WIRE_MSG_SSL_REQUEST || fr.m.kind == WIRE_MSG_GSSENC_REQUEST)
		{
			if (c->tls_pass)
			{
				wire_decoder_expect_answer(&c->pipe[NETD_DOWN].dec);
				c->info.awaiting_answer = true;
			}
			else
			{
				/* answer 'N' ourselves so the client falls back to plaintext */
				plan.drop = true;
				plan.inject_answer = true;
			}
		}
		if (dir == NETD_DOWN && fr.m.kind == WIRE_MSG_ANSWER)
		{
			c->info.awaiting_answer = false;
			c->resume_up = true;
			if (fr.m.type == 'S')
			{
				/* TLS accepted: from here both directions are opaque bytes */
				c->info.tls = true;
				p->opaque = true;
				c->pipe[NETD_UP].opaque = true;
			}
		}
		push_plan(p, &plan);
	}
	return true;
}

bool
pipe_input(Conn *c, NetdDir dir, const uint8_t *data, size_t len, FaultSet *fs,
		   uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];

	/* new bytes of an opaque stream follow the rules in force when they come */
	if (p->opaque && p->plan_version != fs->version)
		replan_tail(c, dir, fs, now_ns);
	if (data != NULL && len > 0)
		append_input(p, data, len);
	else if (len > 0)
	{
		/* the caller read len bytes into pipe_input_space() */
		p->in_len += len;
		p->bytes_in += len;
	}
	if (!decode_pending(c, dir, fs, now_ns))
		return false;
	move_bytes(c, dir, fs, now_ns);
	if (c->resume_up)
	{
		/* the client's bytes after its SSLRequest waited for this answer */
		c->resume_up = false;
		if (!decode_pending(c, NETD_UP, fs, now_ns))
			return false;
		move_bytes(c, NETD_UP, fs, now_ns);
	}
	return true;
}

uint8_t *
pipe_input_space(Pipe *p, size_t n)
{
	if (p->in_len + n > p->in_cap)
	{
		size_t		cap = p->in_cap ? p->in_cap : 65536;

		while (cap < p->in_len + n)
			cap *= 2;
		p->in = pipe_realloc(p->in, cap);
		p->in_cap = cap;
	}
	return p->in + p->in_len;
}

void
pipe_pump(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	queue_release_unshaped(c, dir, fs, now_ns);
	move_bytes(c, dir, fs, now_ns);
}

/* ------------------------------------------------------------ splice */

size_t
pipe_splice_allowance(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	const Plan *plan;
	Fault	   *cutf = NULL;

	if (p->opaque || p->failed || p->cut || p->eof || p->in_len != 0 || p->out_len != 0 ||
		p->nplans == 0 || p->decoded != p->in_base || wire_decoder_remaining(&p->dec) == 0)
		return 0;
	plan = &p->plans[0];
	if (plan->start > p->in_base || plan->end <= p->in_base || plan->drop || plan->delay_ns != 0)
		return 0;
	if (plan->end - p->in_base != wire_decoder_remaining(&p->dec))
		return 0;
	for (int i = 0; i < plan->ncorrupt; i++)
		if (plan->corrupt_off[i] >= p->in_base)
			return 0;
	if (pipe_stalled(c, dir, fs, now_ns) || cut_limit(c, dir, fs, &cutf) != UINT64_MAX)
		return 0;
	for (int i = 0; i < fs->nfaults; i++)
		if (fs->faults[i].kind == FK_BANDWIDTH && conn_fault_applies(&fs->faults[i], c, dir, p->in_base))
			return 0;
	return (size_t) (plan->end - p->in_base);
}

void
pipe_spliced(Conn *c, NetdDir dir, size_t n)
{
	Pipe	   *p = &c->pipe[dir];

	if (!wire_decoder_skip(&p->dec, n))
		abort();				/* caller exceeded pipe_splice_allowance() */
	p->in_base += n;
	p->decoded += n;
	p->bytes_in += n;
	p->spliced += n;
	if (p->nplans > 0 && p->plans[0].end == p->in_base)
		pop_plan(p);
}

/* ------------------------------------------------------------ conn-level */

void
conn_check_actions(Conn *c, FaultSet *fs, uint64_t now_ns)
{
	for (int i = 0; i < fs->nfaults && !c->want_reset; i++)
	{
		Fault	   *f = &fs->faults[i];
		NetdDir		dir = (f->dirs & NETD_DIR_BIT(NETD_DOWN)) ? NETD_DOWN : NETD_UP;
		char		buf[512];
		JsonBuf		j;

		if (f->kind != FK_CLOSE && f->kind != FK_RESET)
			continue;
		if (!conn_fault_applies(f, c, dir, c->pipe[dir].in_base))
			continue;
		if (f->kind == FK_RESET)
			c->want_reset = true;
		else
			c->want_close = true;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s by rule %s",
				 f->kind == FK_RESET ? "reset" : "close", f->id);
		pipe_trace_fire(fs, f, c, dir, now_ns, NULL, c->pipe[dir].in_base, &j, buf, sizeof(buf));
		trace_end(fs->trace, &j);
	}
}
