/*
 * plan.c — the decisions of walsim-netd's fault core.
 *
 * Each framed message (or 4 kB block of an opaque stream) gets a Plan:
 * forward, drop, delay by some amount, corrupt some bytes.  Every choice is
 * a pure function of (seed, rule id, link, direction, connection key,
 * message index or stream offset), never of how the bytes were split by
 * recv() or of the clock, so the same stream gives the same decisions on
 * every run (docs/determinism.md).  Corruption addressed by LSN or by the
 * Nth XLogData leaves the connection key and the stream offset out: the
 * same seed flips the same bits of the same WAL byte however the sender cut
 * the stream into messages and however often the standby reconnected.
 */
#include <string.h>

#include "walsim/decision.h"
#include "pipe_int.h"

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

void
pipe_trace_fire(FaultSet *fs, Fault *f, const Conn *c, NetdDir dir, uint64_t now_ns,
				const Framed *fr, uint64_t offset, JsonBuf *j, char *buf, size_t cap)
{
	FaultScope	s;

	f->fires++;
	conn_scope(c, dir, offset, &s);
	fault_activate(fs, f, &s, now_ns);
	trace_begin(fs->trace, j, buf, cap, now_ns, "fault");
	json_str(j, "rule", f->id);
	json_str(j, "kind", fault_kind_name(f->kind));
	pipe_trace_conn(j, c, dir);
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

/*
 * A decision value for a corrupt rule keyed on logical coordinates of the
 * WAL alone: (seed, rule, link, direction, a, b), without the connection key.
 * Which connection carries a given LSN, how many times the standby
 * reconnected before, and how the stream was cut into messages all depend
 * on timing; the LSN (or the Nth XLogData and the offset inside it) does not.
 */
static uint64_t
decide_wal(const FaultSet *fs, const Fault *f, const Conn *c, NetdDir dir,
		   const char *what, uint64_t a, uint64_t b, uint64_t k)
{
	Decision	d;

	decision_start(&d, fs->seed, f->id);
	decision_add_str(&d, what);
	decision_add_str(&d, c->link);
	decision_add_u64(&d, (uint64_t) dir);
	decision_add_u64(&d, a);
	decision_add_u64(&d, b);
	decision_add_u64(&d, k);
	return decision_value(&d);
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
				/* the byte inside the Nth XLogData: keyed on N, not on the index among all messages */
				uint64_t	v = decide_wal(fs, f, c, dir, "byte", fr->index_in_class, 0, 0);

				return fr->wal_offset + decision_uniform(v, 0, fr->lsn_end - fr->lsn_start - 1);
			}
			return UINT64_MAX;
	}
	return UINT64_MAX;
}

/*
 * The bits a corrupt rule flips in the byte at stream offset `at`: a
 * function of the seed and the rule's own coordinate, so that one seed flips
 * the same bits of the same WAL byte on every run.  at_lsn: the LSN of the
 * byte; nth: N and the offset inside that message; at_offset: the stream
 * offset (the user's coordinate, itself dependent on how keepalives and
 * status updates interleave with the WAL).
 */
static uint8_t
corrupt_mask(const FaultSet *fs, const Fault *f, const Conn *c, NetdDir dir, const Framed *fr,
			 uint64_t at)
{
	uint8_t		mask = 0;

	if (f->bit >= 0)
		return (uint8_t) (1u << f->bit);
	/* nbits distinct bits, each drawn from the seed */
	for (uint64_t k = 0; __builtin_popcount(mask) < f->nbits && k < 64; k++)
	{
		uint64_t	v;

		if (f->corrupt_mode == CORRUPT_AT_LSN && fr)
			v = decide_wal(fs, f, c, dir, "bit-lsn", fr->lsn_start + (at - fr->wal_offset), 0, k);
		else if (f->corrupt_mode == CORRUPT_NTH_XLOGDATA && fr)
			v = decide_wal(fs, f, c, dir, "bit-nth", fr->index_in_class, at - fr->wal_offset, k);
		else
			v = decide(fs, f, c, dir, "bit", at, k);
		mask |= (uint8_t) (1u << (int) decision_uniform(v, 0, 7));
	}
	return mask;
}

/* Decide what happens to the stream range [start, end) (a message or a block). */
void
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

		if (!conn_fault_applies(f, c, dir, start))
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
					pipe_trace_fire(fs, f, c, dir, now_ns, fr, start, &j, buf, sizeof(buf));
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
				pipe_trace_fire(fs, f, c, dir, now_ns, fr, start, &j, buf, sizeof(buf));
				json_u64(&j, "bytes", end - start);
				trace_end(fs->trace, &j);
				break;
			case FK_CORRUPT:
				{
					uint64_t	at = corrupt_target(fs, f, c, dir, fr, start, end);

					if (at == UINT64_MAX)
						break;
					uint8_t		mask = corrupt_mask(fs, f, c, dir, fr, at);

					add_corruption(plan, at, mask);
					pipe_trace_fire(fs, f, c, dir, now_ns, fr, at, &j, buf, sizeof(buf));
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
