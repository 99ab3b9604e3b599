/*
 * stream.c — START_REPLICATION: PostgreSQL 15's StartReplication() and
 * WalSndLoop(XLogSendPhysical) for WAL read from files.
 *
 * Order of checks (walsender.c): slot, timeline in history, start not past
 * the timeline's switch point, then CopyBothResponse, then start not ahead
 * of the flush pointer (an error *inside* COPY, as PG15 does).  While
 * streaming: XLogData of at most 128 KiB cut at page boundaries, walEnd =
 * the end of what may be sent (flush pointer, or the switch point of a
 * historic timeline); a keepalive with replyRequested after
 * wal_sender_timeout/2 of client silence, an immediate keepalive for a
 * client's ping, and the end of the connection after wal_sender_timeout.
 * A historic timeline ends with CopyDone, the client's CopyDone, the
 * next-timeline row and two CommandCompletes.
 */
#include <poll.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/pgtime.h"
#include "walsim/replmsg.h"
#include "walsim/segment.h"
#include "walsim/walpage.h"
#include "stream.h"
#include "view.h"

#define MAX_SEND_SIZE		(16 * WAL_BLCKSZ)	/* walsender.c MAX_SEND_SIZE */
#define OUT_HIGH_WATER		(4 * MAX_SEND_SIZE)
#define IDLE_WAKEUP_MS		10000	/* wake at least this often, as PG */
#define SLOT_SAVE_MS		1000	/* persist slot progress at most this often */
#define SHUTDOWN_WAIT_MS	60000	/* with wal_sender_timeout off */
#define NOTIFY_FALLBACK_MS	100		/* look anyway this often when inotify runs */

typedef enum StreamEnd
{
	STREAM_COPY_DONE,			/* CopyDone exchanged: result set, C, C follow */
	STREAM_ERROR,				/* ErrorResponse sent: ReadyForQuery follows */
	STREAM_GONE					/* connection over */
} StreamEnd;

typedef struct Stream
{
	uint32_t	tli;
	bool		historic;
	uint64_t	valid_upto;		/* switch point of a historic timeline */
	uint32_t	next_tli;
	uint64_t	sent;			/* sentPtr */
	uint64_t	write;			/* last status update of the client */
	uint64_t	flush;
	uint64_t	apply;
	bool		copydone_sent;
	bool		copydone_received;
	bool		ping_outstanding;
	int64_t		last_refresh_ms;
	int			notify_fd;		/* inotify on the directory, -1 without */
	bool		wal_changed;	/* the directory changed since the last look */
	uint64_t	messages;		/* XLogData messages sent */
	bool		gap_done;
	const char *slot;			/* NULL without SLOT */
	uint64_t	slot_saved;
	int64_t		slot_saved_ms;
} Stream;

/* The timeline after tli in the current history (0 if tli is current). */
static uint32_t
next_timeline(const WalSource *src, uint32_t tli)
{
	for (size_t i = 0; i + 1 < src->history.count; i++)
		if (src->history.entries[i].tli == tli)
			return src->history.entries[i + 1].tli;
	return 0;
}

static void
send_keepalive(Conn *c, Stream *s, bool reply_requested)
{
	ReplKeepalive k = {.wal_end = s->sent, .send_time = pg_timestamp_now(),
	.reply_requested = reply_requested};

	if (c->cfg->misbehave & MIS_NO_KEEPALIVE)
		return;
	if (c->cfg->misbehave & MIS_SHORT_KEEPALIVE)
	{
		uint8_t		raw[REPL_KEEPALIVE_LEN];

		repl_encode_keepalive(raw, &k);
		wire_put_copy_data(&c->out, raw, REPL_KEEPALIVE_LEN - 1);
	}
	else
		repl_put_keepalive(&c->out, &k);
	if (reply_requested)
		s->ping_outstanding = true;
}

/* Persist the slot's progress (restart_lsn = the client's flush position). */
static void
save_slot(Conn *c, Stream *s, bool force)
{
	WalsimError err;
	int64_t		now = conn_now_ms();

	if (s->slot == NULL || s->flush <= s->slot_saved)
		return;
	if (!force && now - s->slot_saved_ms < SLOT_SAVE_MS)
		return;
	if (slots_advance(c->cfg->slots_file, s->slot, s->flush, &err) == SLOT_OK)
	{
		s->slot_saved = s->flush;
		s->slot_saved_ms = now;
	}
}

/*
 * One CopyData from the client.  Returns false when streaming must stop
 * (*end says how).
 */
static bool
client_copydata(Conn *c, Stream *s, const WireMessage *m, StreamEnd *end)
{
	ReplMessage rm;
	WalsimError err;

	if (m->body_len == 0 || (m->body[0] != 'r' && m->body[0] != 'h'))
	{
		/* PG: COMMERROR "unexpected message type", connection closed, no ErrorResponse */
		char		msg[80];

		snprintf(msg, sizeof(msg), "unexpected message type \"%c\" in CopyData",
				 m->body_len ? m->body[0] : '?');
		conn_error_event(c, "COMMERROR", NULL, msg);
		c->gone = true;
		*end = STREAM_GONE;
		return false;
	}
	if (!repl_decode(m->body, m->body_len, REPL_FROM_CLIENT, &rm, &err))
	{
		char		msg[WALSIM_ERROR_MAX + 40];

		snprintf(msg, sizeof(msg), "invalid standby message: %s", err.message);
		conn_error(c, "08P01", msg, NULL);
		*end = STREAM_ERROR;
		return false;
	}
	if (rm.type == 'r')
	{
		s->write = rm.u.status.write;
		s->flush = rm.u.status.flush;
		s->apply = rm.u.status.apply;
		if (rm.u.status.reply_requested && !s->copydone_sent)
			send_keepalive(c, s, false);
		save_slot(c, s, false);
	}
	/* 'h' (hot standby feedback): there is no xmin to hold back here */
	return true;
}

/* Drain the client's messages; false when streaming must stop. */
static bool
process_client(Conn *c, Stream *s, StreamEnd *end, bool *stop_requested)
{
	for (;;)
	{
		WireMessage m;
		int			r = conn_next(c, &m, 0);

		if (r == IO_TIMEOUT)
			return true;
		if (r == IO_STOP)
		{
			*stop_requested = true;
			return true;
		}
		if (r == IO_GONE)
		{
			*end = STREAM_GONE;
			return false;
		}
		/* any message from the client answers an outstanding ping */
		s->ping_outstanding = false;
		switch (m.type)
		{
			case 'd':
				if (!client_copydata(c, s, &m, end))
					return false;
				break;
			case 'c':
				s->copydone_received = true;
				if (!s->copydone_sent)
				{
					wire_put_copy_done(&c->out);
					s->copydone_sent = true;
				}
				*end = STREAM_COPY_DONE;
				return false;
			case 'X':
				c->gone = true;
				*end = STREAM_GONE;
				return false;
			default:
				{
					char		msg[64];

					snprintf(msg, sizeof(msg), "invalid standby message type \"%c\"", m.type);
					conn_fatal(c, "08P01", msg, NULL);
					*end = STREAM_GONE;
					return false;
				}
		}
	}
}

/* How far this stream may send now, and the walEnd to announce. */
static uint64_t
send_limit(Conn *c, Stream *s)
{
	uint64_t	end;

	if (s->historic)
		return s->valid_upto;
	end = view_end(c);
	if (c->cfg->misbehave & MIS_UNFLUSHED)
	{
		/* everything the file holds past the valid end, within its segment */
		uint64_t	fend = walsource_file_end(c->src, s->tli, end);

		if (fend > end)
			end = fend;
	}
	return end;
}

/* Read [start, end) of timeline s->tli into buf, across segment files. */
static bool
read_wal(Conn *c, Stream *s, uint64_t start, uint64_t end, uint8_t *buf, StreamEnd *why)
{
	uint32_t	segsz = c->src->seg_size;
	uint64_t	pos = start;

	while (pos < end)
	{
		uint64_t	seg_end = lsn_align_down(pos, segsz) + segsz;
		size_t		n = (size_t) ((end < seg_end ? end : seg_end) - pos);
		bool		missing;
		char		name[64];
		WalsimError err;

		if (!walsource_read(c->src, s->tli, pos, buf + (pos - start), n, &missing, name, &err))
		{
			conn_error(c, missing ? "58P01" : "58030", err.message, NULL);
			*why = STREAM_ERROR;
			return false;
		}
		pos += n;
	}
	return true;
}

/*
 * Queue XLogData until the output buffer is full or everything is sent.
 * The WAL is read straight into the output buffer, behind the message
 * header, so each byte is copied once between the page cache and the socket.
 */
static bool
send_wal(Conn *c, Stream *s, uint64_t limit, StreamEnd *why)
{
	while (s->sent < limit && conn_pending(c) < OUT_HIGH_WATER)
	{
		uint64_t	start = s->sent;
		uint64_t	end = start + MAX_SEND_SIZE;
		size_t		len;
		uint8_t		hdr[REPL_XLOGDATA_HEADER];
		uint8_t    *wal;

		/* XLogSendPhysical: up to the limit, else cut at a page boundary */
		if (end >= limit)
			end = limit;
		else
			end = lsn_align_down(end, WAL_BLCKSZ);
		len = (size_t) (end - start);
		/* the CopyData header (5) and the XLogData header (25) come first */
		wire_buf_reserve(&c->out, 5 + REPL_XLOGDATA_HEADER + len);
		wal = c->out.data + c->out.len + 5 + REPL_XLOGDATA_HEADER;
		if (!read_wal(c, s, start, end, wal, why))
			return false;
		if ((c->cfg->misbehave & MIS_BITFLIP) && s->messages == 0)
			wal[len / 2 + (len > 2 * WAL_BLCKSZ ? 100 : 0)] ^= 0x10;
		repl_encode_xlogdata_header(hdr, start, limit, pg_timestamp_now());
		wire_begin(&c->out, 'd');
		wire_put_bytes(&c->out, hdr, sizeof(hdr));
		c->out.len += len;		/* the WAL bytes are already in place */
		wire_end(&c->out);
		s->messages++;
		s->sent = end;
		if ((c->cfg->misbehave & MIS_GAP) && !s->gap_done && s->sent + WAL_BLCKSZ < limit)
		{
			s->sent += WAL_BLCKSZ;	/* the next message will not be contiguous */
			s->gap_done = true;
		}
	}
	return true;
}

/* The current timeline ended under us (a new history file appeared). */
static void
check_became_historic(Conn *c, Stream *s)
{
	uint64_t	sp;

	if (s->historic || c->src->tli == s->tli)
		return;
	if (walsource_switch_point(c->src, s->tli, &sp) && sp != 0)
	{
		s->historic = true;
		s->valid_upto = sp;
		s->next_tli = next_timeline(c->src, s->tli);
	}
}

/*
 * SIGTERM while streaming (WalSndDone): send all WAL, ask for replies until
 * the client has it (flush, or write when it reports no flush), then
 * CommandComplete "COPY 0" without CopyDone, and close.
 */
static void
shutdown_stream(Conn *c, Stream *s)
{
	int			wait = c->cfg->wal_sender_timeout_ms > 0 ? c->cfg->wal_sender_timeout_ms : SHUTDOWN_WAIT_MS;
	int64_t		deadline = conn_now_ms() + wait;
	StreamEnd	why;
	uint64_t	limit;

	conn_event(c, "shutdown");
	c->stopping = true;			/* keep reading the client's replies */
	view_refresh(c);
	check_became_historic(c, s);
	limit = send_limit(c, s);
	while (conn_now_ms() < deadline && !c->gone)
	{
		uint64_t	replicated = s->flush != 0 ? s->flush : s->write;
		bool		stop_again = false;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

		if (!send_wal(c, s, limit, &why))
			break;
		if (!conn_try_write(c))
			return;
		if (s->sent >= limit && conn_pending(c) == 0 && replicated >= s->sent)
			break;
		if (s->sent >= limit && !s->ping_outstanding)
			send_keepalive(c, s, true);
		if (conn_pending(c) > 0)
			pfd.events |= POLLOUT;
		poll(&pfd, 1, 100);
		if (!process_client(c, s, &why, &stop_again))
			return;
	}
	wire_put_command_complete(&c->out, "COPY 0");
	conn_flush(c, 1000);
	c->gone = true;
}

/*
 * Follow mode wakes on inotify events of the directory (a receiver writing,
 * creating or renaming a segment) so new WAL goes out within a poll() round
 * trip; without inotify (or if events are missed, e.g. on a network file
 * system) it looks every --poll-interval milliseconds.
 */
static int
watch_directory(const char *dir)
{
	int			fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	if (inotify_add_watch(fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

static void
drain_notifications(Stream *s)
{
	char		buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(s->notify_fd, buf, sizeof(buf)) > 0)
		s->wal_changed = true;
}

/* Milliseconds the loop may sleep, given its timers. */
static int
sleep_time(Conn *c, Stream *s, bool caught_up, int64_t now)
{
	int64_t		t = IDLE_WAKEUP_MS;
	int			timeout = c->cfg->wal_sender_timeout_ms;

	if (caught_up && c->cfg->follow && !s->historic)
		t = s->notify_fd >= 0 && c->cfg->poll_interval_ms < NOTIFY_FALLBACK_MS ?
			NOTIFY_FALLBACK_MS : c->cfg->poll_interval_ms;
	if (timeout > 0)
	{
		int64_t		ping_at = c->last_recv_ms + timeout / 2;
		int64_t		close_at = c->last_recv_ms + timeout;

		if (!s->ping_outstanding && ping_at - now < t)
			t = ping_at - now;
		if (close_at - now < t)
			t = close_at - now;
	}
	return t < 0 ? 0 : (int) t;
}

static StreamEnd
stream_loop(Conn *c, Stream *s)
{
	StreamEnd	end = STREAM_GONE;
	bool		stop = false;

	for (;;)
	{
		int64_t		now;
		uint64_t	limit;
		bool		caught_up;
		struct pollfd pfd[2];
		int			timeout = c->cfg->wal_sender_timeout_ms;

		if (!process_client(c, s, &end, &stop))
			return end;
		if (stop || *c->stop)
		{
			shutdown_stream(c, s);
			return STREAM_GONE;
		}
		now = conn_now_ms();
		limit = send_limit(c, s);
		if (s->sent >= limit && !s->historic && c->cfg->follow &&
			(s->wal_changed || now - s->last_refresh_ms >= c->cfg->poll_interval_ms))
		{
			s->wal_changed = false;
			view_refresh(c);
			s->last_refresh_ms = now;
			check_became_historic(c, s);
			limit = send_limit(c, s);
		}
		if (!send_wal(c, s, limit, &end))
			return end;
		if (!conn_try_write(c))
			return STREAM_GONE;
		caught_up = s->sent >= limit;

		if (s->historic && caught_up && !s->copydone_sent)
		{
			EventLine	ev;

			if (conn_event_begin(c, &ev, "end_of_timeline"))
			{
				json_u64(&ev.j, "timeline", s->tli);
				conn_event_end(c, &ev);
			}
			if (c->cfg->misbehave & MIS_NO_COPYDONE)
			{
				/* straight to the result set, as if the CopyDone got lost */
				s->copydone_sent = true;
				return STREAM_COPY_DONE;
			}
			wire_put_copy_done(&c->out);
			s->copydone_sent = true;
		}

		if (timeout > 0 && now - c->last_recv_ms >= timeout)
		{
			/* PG: COMMERROR "terminating walsender process due to replication timeout" */
			conn_event(c, "timeout");
			c->gone = true;
			return STREAM_GONE;
		}
		/* no keepalives once our CopyDone is out (streamingDoneSending) */
		if (timeout > 0 && !s->ping_outstanding && !s->copydone_sent &&
			now - c->last_recv_ms >= timeout / 2)
			send_keepalive(c, s, true);

		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN | (conn_pending(c) > 0 ? POLLOUT : 0);
		pfd[0].revents = 0;
		pfd[1].fd = s->notify_fd;	/* ignored by poll() when -1 */
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		/* more to send and room for it: do not sleep */
		if (!caught_up && conn_pending(c) < OUT_HIGH_WATER)
			continue;
		if (poll(pfd, 2, conn_pending(c) > 0 && !caught_up ? IDLE_WAKEUP_MS :
				 sleep_time(c, s, caught_up, now)) > 0 && (pfd[1].revents & POLLIN))
			drain_notifications(s);
	}
}

void
stream_start(Conn *c, const ReplCommand *cmd)
{
	Stream		s = {.notify_fd = -1};
	char		msg[256];
	char		detail[128];
	char		lsn1[LSN_TEXT_MAX],
				lsn2[LSN_TEXT_MAX];
	EventLine	ev;
	StreamEnd	end;
	pid_t		active = 0;
	WalsimError err;

	if (cmd->logical)
	{
		conn_error(c, "0A000", "logical replication is not supported by walsim-sender", NULL);
		return;
	}
	if (!view_refresh(c))
		return;
	/* 1. the slot */
	if (cmd->has_slot)
	{
		SlotResult	r = slots_acquire(c->cfg->slots_file, cmd->name, getpid(), &active, &err);

		if (r != SLOT_OK)
		{
			conn_slot_error(c, r, cmd->name, active, &err);
			return;
		}
		s.slot = cmd->name;
		s.slot_saved_ms = conn_now_ms();
	}
	/* 2. the timeline */
	s.tli = cmd->tli != 0 ? cmd->tli : c->src->tli;
	if (s.tli != c->src->tli)
	{
		uint64_t	sp;

		if (!walsource_switch_point(c->src, s.tli, &sp))
		{
			snprintf(msg, sizeof(msg), "requested timeline %u is not in this server's history", s.tli);
			conn_error(c, "XX000", msg, NULL);
			goto out;
		}
		s.historic = true;
		s.valid_upto = sp;
		s.next_tli = next_timeline(c->src, s.tli);
		if (cmd->lsn > sp)
		{
			lsn_format(cmd->lsn, lsn1);
			lsn_format(sp, lsn2);
			snprintf(msg, sizeof(msg), "requested starting point %s on timeline %u is not in this server's history",
					 lsn1, s.tli);
			snprintf(detail, sizeof(detail), "This server's history forked from timeline %u at %s.", s.tli, lsn2);
			conn_error(c, "XX000", msg, detail);
			goto out;
		}
	}
	lsn_format(cmd->lsn, lsn1);
	if (conn_event_begin(c, &ev, "start_replication"))
	{
		json_u64(&ev.j, "timeline", s.tli);
		json_lsn(&ev.j, "lsn", cmd->lsn);
		json_str(&ev.j, "slot", cmd->has_slot ? cmd->name : NULL);
		conn_event_end(c, &ev);
	}

	/* 3. a historic timeline asked for at its very end: no COPY at all */
	if (!s.historic || cmd->lsn < s.valid_upto)
	{
		uint64_t	flush = view_end(c);

		wire_put_copy_both_response(&c->out, 0, NULL, 0);
		/* 4. inside COPY: not ahead of the flush pointer (equal is fine) */
		if (!s.historic && cmd->lsn > flush)
		{
			lsn_format(flush, lsn2);
			snprintf(msg, sizeof(msg), "requested starting point %s is ahead of the WAL flush position of this server %s",
					 lsn1, lsn2);
			conn_error(c, "XX000", msg, NULL);
			goto out;
		}
		s.sent = cmd->lsn;
		c->last_recv_ms = conn_now_ms();
		s.last_refresh_ms = conn_now_ms();
		if (c->cfg->follow && !s.historic)
			s.notify_fd = watch_directory(c->src->dir);
		end = stream_loop(c, &s);
		if (end != STREAM_COPY_DONE)
			goto out;
	}
	if (s.historic)
	{
		WireField	f[2] = {
			{.name = "next_tli", .type_oid = 20, .typlen = 8, .typmod = -1},
			{.name = "next_tli_startpos", .type_oid = 25, .typlen = -1, .typmod = -1}};
		char		next[16];
		const char *vals[2] = {next, lsn2};

		snprintf(next, sizeof(next), "%u", s.next_tli);
		lsn_format(s.valid_upto, lsn2);
		wire_put_row_description(&c->out, f, 2);
		wire_put_data_row(&c->out, vals, NULL, 2);
	}
	wire_put_command_complete(&c->out, "START_STREAMING");
	if (!(c->cfg->misbehave & MIS_SINGLE_COMMANDCOMPLETE))
		wire_put_command_complete(&c->out, "START_REPLICATION");
out:
	if (s.notify_fd >= 0)
		close(s.notify_fd);
	if (s.slot)
	{
		save_slot(c, &s, true);
		slots_release(c->cfg->slots_file, s.slot, getpid());
	}
}
