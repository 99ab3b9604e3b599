/*
 * pipe.c — the deterministic fault core of walsim-netd.
 *
 * A connection has two pipes (up: client -> server, down: server -> client).
 * Bytes read from a pipe's source are appended to its input buffer and fed
 * to the protocol decoder.  Each framed message becomes a Plan: forward,
 * drop, delay by some amount, corrupt some bytes.  Every choice is a pure
 * function of (seed, rule id, link, direction, connection key, message index
 * or stream offset), never of how the bytes were split by recv() or of the
 * clock, so the same stream gives the same decisions on every run.
 *
 * The mover then takes input bytes in stream order, applies the plan that
 * covers them and appends them to the output queue with a release time
 * (delay and bandwidth shaping; order is always preserved).  A stalled pipe
 * moves nothing: its input fills up, the daemon stops reading, TCP pushes
 * back, and nothing is lost until the stall is healed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/decision.h"
#include "walsim/lsn.h"
#include "walsim/replmsg.h"
#include "netd.h"

#define OPAQUE_BLOCK	4096	/* decision unit when the stream is not framed */
#define SHAPE_CHUNK		16384	/* bandwidth shaping granularity */
#define DECODER_CAPTURE 1024	/* enough for every header netd reads */

static const char *const dir_names[2] = {"up", "down"};

/* ------------------------------------------------------------ helpers */

static void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n);

	if (q == NULL && n > 0)
		abort();
	return q;
}

int
netd_msg_class(char c)
{
	switch (c)
	{
		case 'w': return MC_W;
		case 'k': return MC_K;
		case 'r': return MC_R;
		case 'h': return MC_H;
		case 'd': return MC_OTHER_COPY;
		case 'Q': return MC_QUERY;
		default: return MC_OTHER;
	}
}

const char *
netd_msg_class_name(int cls)
{
	static const char *const names[MC_NCLASSES] = {
		"w", "k", "r", "h", "copydata", "query", "other"
	};

	return cls >= 0 && cls < MC_NCLASSES ? names[cls] : "?";
}

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

/* The common coordinates of a trace event about a connection. */
static void
trace_conn(JsonBuf *j, const Conn *c, NetdDir dir)
{
	json_str(j, "link", c->link);
	json_str(j, "dir", dir_names[dir]);
	json_str(j, "conn", c->info.key);
}

static void
fault_touch(FaultSet *fs, Fault *f, const Conn *c, NetdDir dir, uint64_t now_ns)
{
	char		buf[512];
	JsonBuf		j;

	if (f->activated_ns != 0)
		return;
	f->activated_ns = now_ns ? now_ns : 1;
	trace_begin(fs->trace, &j, buf, sizeof(buf), now_ns, "activate");
	json_str(&j, "rule", f->id);
	json_str(&j, "kind", fault_kind_name(f->kind));
	trace_conn(&j, c, dir);
	trace_end(fs->trace, &j);
}

/* A decision value for rule f about this connection, direction and (a, b). */
static uint64_t
decide(const FaultSet *fs, const Fault *f, const Conn *c, NetdDir dir,
	   const char *what, uint64_t a, uint64_t b)
{
	Decision	d;

	decision_start(&d, fs->seed, f->id);
	decision_add_str(&d, what);
	decision_add_str(&d, c->link);
	decision_add_u64(&d, (uint64_t) dir);
	decision_add_str(&d, c->info.key);
	decision_add_u64(&d, a);
	decision_add_u64(&d, b);
	return decision_value(&d);
}

bool
fault_applies(const Fault *f, const Conn *c, NetdDir dir, uint64_t offset)
{
	const Pipe *p = &c->pipe[dir];

	if (f->expired)
		return false;
	if (strcmp(f->link, c->link) != 0)
		return false;
	if (!(f->dirs & NETD_DIR_BIT(dir)))
		return false;
	if (f->app[0] && strcmp(f->app, c->info.app) != 0)
		return false;
	if (f->max_fires && f->fires >= f->max_fires)
		return false;
	switch (f->trig)
	{
		case TRIG_NOW:
			return true;
		case TRIG_LSN:
			return c->info.last_lsn_sent > f->trig_value;
		case TRIG_MSGS:
			if (f->trig_msg == 0)
				return p->nmsgs >= f->trig_value;
			return p->msgs[netd_msg_class(f->trig_msg)] >= f->trig_value;
		case TRIG_BYTES:
			return offset >= f->trig_value;
	}
	return false;
}

/* ------------------------------------------------------------ output queue */

static void
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
			p->out = xrealloc(p->out, cap);
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
			p->segs = xrealloc(p->segs, p->segs_cap * sizeof(Segment));
		}
	}
	p->segs[p->nsegs].len = n;
	p->segs[p->nsegs].release_ns = release_ns;
	p->nsegs++;
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

size_t
pipe_backlog(const Pipe *p)
{
	return p->in_len + p->out_len;
}

/* ------------------------------------------------------------ tracking */

/* START_REPLICATION [SLOT name] [PHYSICAL] X/X [TIMELINE n] */
static void
parse_start_replication(ConnInfo *info, const char *sql)
{
	char		copy[512];
	char	   *words[12];
	int			n;

	snprintf(copy, sizeof(copy), "%s", sql);
	n = netd_split_words(copy, words, 12);
	for (int i = 1; i < n; i++)
	{
		uint64_t	lsn;

		if (strcmp(words[i], "SLOT") == 0)
		{
			i++;
			continue;
		}
		if (strcmp(words[i], "TIMELINE") == 0 && i + 1 < n)
		{
			info->timeline = (uint32_t) strtoul(words[i + 1], NULL, 10);
			i++;
			continue;
		}
		if (strchr(words[i], '/') && lsn_parse(words[i], &lsn, NULL))
			info->start_lsn = lsn;
	}
}

static void
track_startup(Conn *c, const WireMessage *m, FaultSet *fs, uint64_t now_ns)
{
	WireStartup s;
	WalsimError err;
	const char *v;
	uint64_t	n = 0;
	char		buf[1024];
	JsonBuf		j;

	if (!wire_parse_startup(m->code, m->body, m->body_avail, &s, &err))
		return;					/* the server will refuse it; keep forwarding */
	v = wire_startup_get(&s, "application_name");
	snprintf(c->info.app, sizeof(c->info.app), "%s", v && v[0] ? v : "-");
	v = wire_startup_get(&s, "user");
	snprintf(c->info.user, sizeof(c->info.user), "%s", v ? v : "");
	v = wire_startup_get(&s, "replication");
	snprintf(c->info.replication, sizeof(c->info.replication), "%s", v ? v : "");
	if (c->next_app_number)
		n = c->next_app_number(c->ctx, c->link, c->info.app);
	snprintf(c->info.key, sizeof(c->info.key), "%s/%s/%" PRIu64, c->link, c->info.app, n);
	c->info.startup_seen = true;

	trace_begin(fs->trace, &j, buf, sizeof(buf), now_ns, "startup");
	trace_conn(&j, c, NETD_UP);
	json_str(&j, "app", c->info.app);
	json_str(&j, "user", c->info.user);
	json_str(&j, "replication", c->info.replication);
	trace_end(fs->trace, &j);
}

static void
track_query(Conn *c, const WireMessage *m, FaultSet *fs, uint64_t now_ns)
{
	const char *sql;
	char		buf[1024];
	JsonBuf		j;
	size_t		n;

	if (!m->body_complete || !wire_parse_query(m->body, m->body_len, &sql, NULL))
		return;
	n = strcspn(sql, " ;\t\r\n");
	if (n >= sizeof(c->info.command))
		n = sizeof(c->info.command) - 1;
	memcpy(c->info.command, sql, n);
	c->info.command[n] = '\0';
	if (strcmp(c->info.command, "START_REPLICATION") == 0)
	{
		parse_start_replication(&c->info, sql);
		c->info.streaming_up = true;
	}
	trace_begin(fs->trace, &j, buf, sizeof(buf), now_ns, "command");
	trace_conn(&j, c, NETD_UP);
	json_u64(&j, "msg", m->index);
	json_str(&j, "sql", strlen(sql) < 400 ? sql : c->info.command);
	if (c->info.streaming_up)
	{
		json_lsn(&j, "start_lsn", c->info.start_lsn);
		json_u64(&j, "timeline", c->info.timeline);
	}
	trace_end(fs->trace, &j);
}

/*
 * Follow the protocol for one framed message.  Only state of the message's
 * own direction decides how it is read (the client's CopyData are status
 * messages once the client asked for START_REPLICATION; the server's are
 * XLogData/keepalives once it answered CopyBothResponse), so the result
 * does not depend on how the two directions interleave.
 */
static void
track(Conn *c, NetdDir dir, Framed *fr, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	const WireMessage *m = &fr->m;
	ReplMessage rm;

	fr->cls = 0;
	if (dir == NETD_UP)
	{
		if (m->kind == WIRE_MSG_STARTUP)
			track_startup(c, m, fs, now_ns);
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'Q')
		{
			fr->cls = 'Q';
			track_query(c, m, fs, now_ns);
		}
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'd' && c->info.streaming_up &&
				 repl_decode_partial(m->body, m->body_avail, m->body_len, REPL_FROM_CLIENT, &rm, NULL))
		{
			fr->cls = rm.type;
			if (rm.type == 'r')
			{
				c->info.ack_write = rm.u.status.write;
				c->info.ack_flush = rm.u.status.flush;
				c->info.ack_apply = rm.u.status.apply;
			}
		}
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'c')
			c->info.streaming_up = false;
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'd')
			fr->cls = 'd';
	}
	else
	{
		if (m->kind == WIRE_MSG_TYPED && m->type == 'W')
			c->info.copy_down = true;
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'd' && c->info.copy_down &&
				 repl_decode_partial(m->body, m->body_avail, m->body_len, REPL_FROM_SERVER, &rm, NULL))
		{
			fr->cls = rm.type;
			if (rm.type == 'w')
			{
				fr->lsn_start = rm.u.xlog.data_start;
				fr->lsn_end = rm.u.xlog.data_start + rm.u.xlog.len;
				fr->wal_offset = m->offset + m->header_len + REPL_XLOGDATA_HEADER;
				c->info.last_lsn_sent = fr->lsn_end;
				c->info.last_wal_end = rm.u.xlog.wal_end;
			}
			else
				c->info.last_wal_end = rm.u.keepalive.wal_end;
		}
		else if (m->kind == WIRE_MSG_TYPED && m->type == 'd')
			fr->cls = 'd';
		else if (m->kind == WIRE_MSG_TYPED && (m->type == 'c' || m->type == 'Z'))
			c->info.copy_down = false;
	}
	{
		int			cls = fr->cls ? netd_msg_class(fr->cls) : MC_OTHER;

		p->msgs[cls]++;
		fr->index_in_class = p->msgs[cls];
	}
	p->nmsgs++;
}

/* ------------------------------------------------------------ decisions */

static void
trace_fire(FaultSet *fs, Fault *f, const Conn *c, NetdDir dir, uint64_t now_ns,
		   const Framed *fr, uint64_t offset, JsonBuf *j, char *buf, size_t cap)
{
	f->fires++;
	fault_touch(fs, f, c, dir, now_ns);
	trace_begin(fs->trace, j, buf, cap, now_ns, "fault");
	json_str(j, "rule", f->id);
	json_str(j, "kind", fault_kind_name(f->kind));
	trace_conn(j, c, dir);
	if (fr)
	{
		char		t[2] = {fr->cls ? fr->cls : fr->m.type, 0};

		json_u64(j, "msg", fr->m.index);
		json_str(j, "type", t[0] ? t : wire_message_name(WIRE_FRONTEND, fr->m.kind, 0));
		if (fr->cls == 'w')
		{
			json_lsn(j, "lsn", fr->lsn_start);
			json_lsn(j, "lsn_end", fr->lsn_end);
		}
	}
	json_u64(j, "offset", offset);
}

static void
add_corruption(Plan *plan, uint64_t off, uint8_t mask)
{
	if (plan->ncorrupt < 4)
	{
		plan->corrupt_off[plan->ncorrupt] = off;
		plan->corrupt_mask[plan->ncorrupt] = mask;
		plan->ncorrupt++;
	}
}

/* Where (stream offset) a corrupt rule hits this message, or UINT64_MAX. */
static uint64_t
corrupt_target(const FaultSet *fs, const Fault *f, const Conn *c, NetdDir dir,
			   const Framed *fr, uint64_t start, uint64_t end)
{
	switch (f->corrupt_mode)
	{
		case CORRUPT_AT_OFFSET:
			return f->corrupt_at >= start && f->corrupt_at < end ? f->corrupt_at : UINT64_MAX;
		case CORRUPT_AT_LSN:
			if (fr && fr->cls == 'w' && f->corrupt_at >= fr->lsn_start && f->corrupt_at < fr->lsn_end)
				return fr->wal_offset + (f->corrupt_at - fr->lsn_start);
			return UINT64_MAX;
		case CORRUPT_NTH_XLOGDATA:
			if (fr && fr->cls == 'w' && fr->index_in_class == f->corrupt_at && fr->lsn_end > fr->lsn_start)
			{
				uint64_t	v = decide(fs, f, c, dir, "byte", fr->m.index, 0);

				return fr->wal_offset + decision_uniform(v, 0, fr->lsn_end - fr->lsn_start - 1);
			}
			return UINT64_MAX;
	}
	return UINT64_MAX;
}

/* Decide what happens to the stream range [start, end) (a message or a block). */
static void
plan_range(Conn *c, NetdDir dir, const Framed *fr, uint64_t start, uint64_t end,
		   uint64_t unit_index, FaultSet *fs, uint64_t now_ns, Plan *plan)
{
	char		buf[1024];
	JsonBuf		j;

	memset(plan, 0, sizeof(*plan));
	plan->start = start;
	plan->end = end;
	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];
		char		cls = fr ? fr->cls : 0;

		if (!fault_applies(f, c, dir, start))
			continue;
		switch (f->kind)
		{
			case FK_DELAY:
				{
					uint64_t	us = f->delay_us;

					if (f->msg && f->msg != cls)
						break;
					if (f->prob < 1.0 &&
						!decision_chance(decide(fs, f, c, dir, "prob", unit_index, 0), f->prob))
						break;
					if (f->jitter_us)
						us += decision_uniform(decide(fs, f, c, dir, "jitter", unit_index, 0),
											   0, f->jitter_us);
					plan->delay_ns += us * 1000;
					trace_fire(fs, f, c, dir, now_ns, fr, start, &j, buf, sizeof(buf));
					json_u64(&j, "unit", unit_index);
					json_u64(&j, "delay_us", us);
					trace_end(fs->trace, &j);
					break;
				}
			case FK_DROP:
				if (cls != f->msg)
					break;
				if (f->prob < 1.0 &&
					!decision_chance(decide(fs, f, c, dir, "prob", unit_index, 0), f->prob))
					break;
				plan->drop = true;
				trace_fire(fs, f, c, dir, now_ns, fr, start, &j, buf, sizeof(buf));
				json_u64(&j, "bytes", end - start);
				trace_end(fs->trace, &j);
				break;
			case FK_CORRUPT:
				{
					uint64_t	at = corrupt_target(fs, f, c, dir, fr, start, end);
					int			bit;

					if (at == UINT64_MAX)
						break;
					uint8_t		mask = 0;

					if (f->bit >= 0)
						mask = (uint8_t) (1u << f->bit);
					else
					{
						/* nbits distinct bits, each drawn from the seed */
						for (uint64_t k = 0; __builtin_popcount(mask) < f->nbits && k < 64; k++)
						{
							bit = (int) decision_uniform(decide(fs, f, c, dir, "bit", at, k), 0, 7);
							mask |= (uint8_t) (1u << bit);
						}
					}
					add_corruption(plan, at, mask);
					trace_fire(fs, f, c, dir, now_ns, fr, at, &j, buf, sizeof(buf));
					json_u64(&j, "mask", mask);
					if (fr && fr->cls == 'w')
						json_lsn(&j, "at_lsn", fr->lsn_start + (at - fr->wal_offset));
					trace_end(fs->trace, &j);
					break;
				}
			default:
				break;
		}
	}
}

static void
push_plan(Pipe *p, const Plan *plan)
{
	if (p->nplans == p->plans_cap)
	{
		p->plans_cap = p->plans_cap ? p->plans_cap * 2 : 16;
		p->plans = xrealloc(p->plans, p->plans_cap * sizeof(Plan));
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

		if ((f->kind == FK_STALL || f->kind == FK_PARTITION) &&
			fault_applies(f, c, dir, c->pipe[dir].in_base))
		{
			fault_touch(fs, f, c, dir, now_ns);
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
			fault_applies(f, c, dir, c->pipe[dir].in_base))
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

/* Release time of n bytes queued now with this plan (delay, then bandwidth). */
static void
queue_shaped(Conn *c, NetdDir dir, FaultSet *fs, const uint8_t *data, size_t n,
			 uint64_t release_ns)
{
	Pipe	   *p = &c->pipe[dir];
	uint64_t	rate = 0;

	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if (f->kind == FK_BANDWIDTH && fault_applies(f, c, dir, p->in_base) &&
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
				p->segs = xrealloc(p->segs, p->segs_cap * sizeof(Segment));
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

/* The cut_after limit of this pipe, UINT64_MAX if none. */
static uint64_t
cut_limit(Conn *c, NetdDir dir, FaultSet *fs, Fault **which)
{
	uint64_t	limit = UINT64_MAX;

	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if (f->kind == FK_CUT_AFTER && fault_applies(f, c, dir, 0) && f->cut_bytes < limit)
		{
			limit = f->cut_bytes;
			*which = f;
		}
	}
	return limit;
}

static void
move_bytes(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	Pipe	   *p = &c->pipe[dir];
	bool		stalled = pipe_stalled(c, dir, fs, now_ns);
	bool		discard = stalled && stall_discards(c, dir, fs);

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
						 limit, dir_names[dir], cutf->id);
				trace_fire(fs, cutf, c, dir, now_ns, NULL, limit, &j, buf, sizeof(buf));
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
		p->in = xrealloc(p->in, cap);
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
		track(c, dir, &fr, fs, now_ns);
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
		p->in = xrealloc(p->in, cap);
		p->in_cap = cap;
	}
	return p->in + p->in_len;
}

/*
 * Bytes that a delay or bandwidth fault scheduled for later are held only
 * while such a fault is in force on this pipe.  Once it is deleted, healed
 * or expired they go out at once, in order, and the bandwidth clock starts
 * afresh (docs/netd.md: "fault del/heal release held bytes at once").
 * Triggers and fire counts do not matter here: a delay limited to N
 * messages still holds its last messages for their full delay.
 */
static void
release_unshaped(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
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

void
pipe_pump(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns)
{
	release_unshaped(c, dir, fs, now_ns);
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
		if (fs->faults[i].kind == FK_BANDWIDTH && fault_applies(&fs->faults[i], c, dir, p->in_base))
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
		if (!fault_applies(f, c, dir, c->pipe[dir].in_base))
			continue;
		if (f->kind == FK_RESET)
			c->want_reset = true;
		else
			c->want_close = true;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s by rule %s",
				 f->kind == FK_RESET ? "reset" : "close", f->id);
		trace_fire(fs, f, c, dir, now_ns, NULL, c->pipe[dir].in_base, &j, buf, sizeof(buf));
		trace_end(fs->trace, &j);
	}
}

void
faults_expire(FaultSet *fs, uint64_t now_ns)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];
		char		buf[256];
		JsonBuf		j;

		if (f->expired || f->duration_us == 0 || f->activated_ns == 0)
			continue;
		if (now_ns < f->activated_ns + f->duration_us * 1000)
			continue;
		f->expired = true;
		trace_begin(fs->trace, &j, buf, sizeof(buf), now_ns, "expire");
		json_str(&j, "rule", f->id);
		json_str(&j, "kind", fault_kind_name(f->kind));
		json_str(&j, "link", f->link);
		trace_end(fs->trace, &j);
	}
}

uint64_t
faults_next_expiry(const FaultSet *fs)
{
	uint64_t	next = UINT64_MAX;

	for (int i = 0; i < fs->nfaults; i++)
	{
		const Fault *f = &fs->faults[i];

		if (!f->expired && f->duration_us && f->activated_ns)
		{
			uint64_t	t = f->activated_ns + f->duration_us * 1000;

			if (t < next)
				next = t;
		}
	}
	return next;
}

/* ------------------------------------------------------------ stats */

void
conn_stats_json(const Conn *c, JsonBuf *j)
{
	json_raw(j, "{");
	j->first = true;
	json_str(j, "conn", c->info.key);
	json_u64(j, "id", c->id);
	json_str(j, "app", c->info.app);
	json_str(j, "user", c->info.user);
	json_str(j, "replication", c->info.replication);
	json_str(j, "command", c->info.command);
	json_bool(j, "tls", c->info.tls);
	if (c->info.start_lsn)
	{
		json_lsn(j, "start_lsn", c->info.start_lsn);
		json_u64(j, "timeline", c->info.timeline);
	}
	json_lsn(j, "last_lsn_sent", c->info.last_lsn_sent);
	json_lsn(j, "last_wal_end", c->info.last_wal_end);
	json_lsn(j, "ack_write", c->info.ack_write);
	json_lsn(j, "ack_flush", c->info.ack_flush);
	json_lsn(j, "ack_apply", c->info.ack_apply);
	for (int d = 0; d < 2; d++)
	{
		const Pipe *p = &c->pipe[d];

		json_raw(j, ",");
		json_escape(j, dir_names[d]);
		json_raw(j, ":{");
		j->first = true;
		json_u64(j, "bytes_in", p->bytes_in);
		json_u64(j, "bytes_out", p->bytes_out);
		json_u64(j, "held", pipe_backlog(p));
		json_u64(j, "messages", p->nmsgs);
		json_u64(j, "dropped_bytes", p->dropped + p->stall_dropped);
		json_u64(j, "corrupted", p->corrupted);
		json_u64(j, "spliced", p->spliced);
		json_raw(j, ",\"by_type\":{");
		j->first = true;
		for (int k = 0; k < MC_NCLASSES; k++)
			json_u64(j, netd_msg_class_name(k), p->msgs[k]);
		json_raw(j, "}}");
	}
	json_raw(j, "}");
	j->first = false;
}
