/*
 * track.c — protocol tracking of walsim-netd's fault core: what each framed
 * message means (startup parameters, commands, COPY mode, XLogData LSNs,
 * status updates), the per-class message counts that rules trigger on,
 * and the connection stats built from them.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/replmsg.h"
#include "pipe_int.h"

/* The common coordinates of a trace event about a connection. */
void
pipe_trace_conn(JsonBuf *j, const Conn *c, NetdDir dir)
{
	json_str(j, "link", c->link);
	json_str(j, "dir", netd_dir_name(dir));
	json_str(j, "conn", c->info.key);
	if (c->has_src)
		json_str(j, "src", c->src);
}

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
	pipe_trace_conn(&j, c, NETD_UP);
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
	pipe_trace_conn(&j, c, NETD_UP);
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
void
track_message(Conn *c, NetdDir dir, Framed *fr, FaultSet *fs, uint64_t now_ns)
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

/* ------------------------------------------------------------ stats */

void
conn_stats_json(const Conn *c, JsonBuf *j)
{
	json_object_begin(j, NULL);
	json_str(j, "conn", c->info.key);
	json_u64(j, "id", c->id);
	if (c->has_src)
	{
		json_str(j, "src", c->src);
		json_str(j, "src_addr", c->src_addr);
	}
	json_bool(j, "raw", c->raw);
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

		json_object_begin(j, netd_dir_name((NetdDir) d));
		json_u64(j, "bytes_in", p->bytes_in);
		json_u64(j, "bytes_out", p->bytes_out);
		json_u64(j, "held", pipe_backlog(p));
		json_u64(j, "messages", p->nmsgs);
		json_u64(j, "dropped_bytes", p->dropped + p->stall_dropped);
		json_u64(j, "corrupted", p->corrupted);
		json_u64(j, "spliced", p->spliced);
		json_object_begin(j, "by_type");
		for (int k = 0; k < MC_NCLASSES; k++)
			json_u64(j, netd_msg_class_name(k), p->msgs[k]);
		json_object_end(j);
		json_object_end(j);
	}
	json_object_end(j);
}
