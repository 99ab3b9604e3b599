/*
 * fault.c — when a fault rule of walsim-netd applies, activates and
 * expires, and the queries the link layer asks of the rule set (see
 * fault.h).  Socket- and clock-free: "now" is always passed in.
 */
#include <string.h>

#include "fault.h"

const char *
netd_dir_name(NetdDir dir)
{
	return dir == NETD_UP ? "up" : "down";
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

bool
fault_applies(const Fault *f, const FaultScope *s)
{
	if (f->expired)
		return false;
	if (strcmp(f->link, s->link) != 0)
		return false;
	if (!(f->dirs & NETD_DIR_BIT(s->dir)))
		return false;
	if (f->app[0] && strcmp(f->app, s->app) != 0)
		return false;
	if (f->nsrc && (s->src == NULL || !fault_names_src(f, s->src)))
		return false;
	if (f->max_fires && f->fires >= f->max_fires)
		return false;
	switch (f->trig)
	{
		case TRIG_NOW:
			return true;
		case TRIG_LSN:
			return s->lsn_sent > f->trig_value;
		case TRIG_MSGS:
			if (f->trig_msg == 0)
				return s->nmsgs >= f->trig_value;
			return s->msgs[netd_msg_class(f->trig_msg)] >= f->trig_value;
		case TRIG_BYTES:
			return s->offset >= f->trig_value;
	}
	return false;
}

void
fault_activate(FaultSet *fs, Fault *f, const FaultScope *s, uint64_t now_ns)
{
	char		buf[512];
	JsonBuf		j;

	if (f->activated_ns != 0)
		return;
	/* 0 means "not yet": virtual time may start at 0 */
	f->activated_ns = now_ns ? now_ns : 1;
	trace_begin(fs->trace, &j, buf, sizeof(buf), now_ns, "activate");
	json_str(&j, "rule", f->id);
	json_str(&j, "kind", fault_kind_name(f->kind));
	json_str(&j, "link", s->link);
	json_str(&j, "dir", netd_dir_name(s->dir));
	json_str(&j, "conn", s->conn);
	if (s->src)
		json_str(&j, "src", s->src);
	trace_end(fs->trace, &j);
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
		fs->version++;
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

int
faults_find(const FaultSet *fs, const char *id)
{
	for (int i = 0; i < fs->nfaults; i++)
		if (strcmp(fs->faults[i].id, id) == 0)
			return i;
	return -1;
}

void
faults_add(FaultSet *fs, const Fault *f)
{
	fs->faults[fs->nfaults++] = *f;
	fs->version++;
}

void
faults_remove_at(FaultSet *fs, int i)
{
	memmove(&fs->faults[i], &fs->faults[i + 1],
			(size_t) (fs->nfaults - i - 1) * sizeof(Fault));
	fs->nfaults--;
	fs->version++;
}

bool
fault_names_src(const Fault *f, const char *name)
{
	for (int i = 0; i < f->nsrc; i++)
		if (strcmp(f->src[i], name) == 0)
			return true;
	return false;
}

Fault *
faults_refusing(FaultSet *fs, const char *link, const char *src)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		Fault	   *f = &fs->faults[i];

		if ((f->kind == FK_REFUSE || f->kind == FK_PARTITION) && !f->expired &&
			!f->refuse_ignore && strcmp(f->link, link) == 0 &&
			(f->nsrc == 0 || fault_names_src(f, src)) &&
			(f->max_fires == 0 || f->fires < f->max_fires))
			return f;
	}
	return NULL;
}

bool
faults_pause_accept(const FaultSet *fs, const char *link)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		const Fault *f = &fs->faults[i];

		if (f->kind == FK_REFUSE && f->refuse_ignore && !f->expired &&
			strcmp(f->link, link) == 0)
			return true;
	}
	return false;
}
