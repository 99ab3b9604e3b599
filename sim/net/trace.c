/*
 * trace.c — the JSON Lines trace of walsim-netd (see trace.h).
 */
#include <stdio.h>

#include "trace.h"

void
trace_begin(Trace *t, JsonBuf *j, char *buf, size_t cap, uint64_t now_ns,
			const char *event)
{
	json_init(j, buf, cap);
	json_object_begin(j, NULL);
	json_u64(j, "seq", t ? t->seq : 0);
	json_u64(j, "t_ns", now_ns);
	json_u64(j, "seed", t ? t->seed : 0);
	json_str(j, "event", event);
}

void
trace_end(Trace *t, JsonBuf *j)
{
	json_object_end(j);
	if (t == NULL)
		return;
	t->seq++;
	if (t->f)
	{
		fputs(j->p, t->f);
		fputc('\n', t->f);
		/* a trace is read while the daemon runs: keep it line-buffered */
		fflush(t->f);
	}
}
