/*
 * conn.c — one client connection of walsim-sender: reading messages with
 * deadlines, writing what is queued, and the ErrorResponses that end a
 * command or the connection (see conn.h).
 *
 * Each connection runs in its own process, so this is a plain sequential
 * conversation: read a message (with a deadline), answer it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

int64_t
conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Write what the socket takes now; false when the peer is gone.  Sent bytes
 * are only marked (out_sent) and dropped from the buffer once it is empty or
 * mostly sent: moving the rest to the front after every partial send would
 * copy a streaming buffer over and over.
 */
bool
conn_try_write(Conn *c)
{
	while (conn_pending(c) > 0)
	{
		ssize_t		n = send(c->fd, c->out.data + c->out_sent, conn_pending(c),
							 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
		{
			c->out_sent += (size_t) n;
			if (c->out_sent == c->out.len || c->out_sent >= c->out.len / 2)
			{
				wire_buf_consume(&c->out, c->out_sent);
				c->out_sent = 0;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		c->gone = true;
		return false;
	}
	return true;
}

/* Write everything, waiting at most timeout_ms; false on error or timeout. */
bool
conn_flush(Conn *c, int timeout_ms)
{
	int64_t		deadline = conn_now_ms() + timeout_ms;

	while (conn_pending(c) > 0)
	{
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
		int64_t		left;

		if (!conn_try_write(c))
			return false;
		if (conn_pending(c) == 0)
			break;
		left = deadline - conn_now_ms();
		if (left <= 0)
			return false;
		if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
			return false;
	}
	return true;
}

/*
 * Next client message, waiting at most timeout_ms (-1: forever).  Pending
 * output is written while waiting.  Returns IO_OK, IO_TIMEOUT, IO_STOP (a
 * stop was requested), or IO_GONE (EOF, error, or a malformed stream, to
 * which a FATAL has been sent).
 */
int
conn_next(Conn *c, WireMessage *m, int timeout_ms)
{
	int64_t		deadline = timeout_ms < 0 ? INT64_MAX : conn_now_ms() + timeout_ms;
	bool		polled = false;

	for (;;)
	{
		size_t		consumed = 0;
		WalsimError err;
		WireStatus	st;
		struct pollfd pfd;
		ssize_t		n;
		int64_t		left;

		if (c->gone)
			return IO_GONE;
		st = wire_decoder_next(&c->dec, c->in + c->in_start, c->in_end - c->in_start,
							   &consumed, m, &err);
		c->in_start += consumed;
		if (st == WIRE_GOT_MESSAGE)
		{
			c->last_recv_ms = conn_now_ms();
			return IO_OK;
		}
		if (st == WIRE_FAILED)
		{
			conn_fatal(c, "08P01", err.message, NULL);
			return IO_GONE;
		}
		c->in_start = c->in_end = 0;	/* everything was consumed */

		if (*c->stop && !c->stopping)
			return IO_STOP;
		left = deadline - conn_now_ms();
		/* even with no time left, look at the socket once */
		if (left <= 0 && polled)
			return IO_TIMEOUT;
		if (left < 0)
			left = 0;
		polled = true;
		pfd.fd = c->fd;
		pfd.events = POLLIN | (conn_pending(c) > 0 ? POLLOUT : 0);
		pfd.revents = 0;
		if (poll(&pfd, 1, left > 1000000 ? 1000000 : (int) left) < 0)
		{
			if (errno == EINTR)
				continue;
			c->gone = true;
			return IO_GONE;
		}
		if ((pfd.revents & POLLOUT) && !conn_try_write(c))
			return IO_GONE;
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(c->fd, c->in, CONN_IN_SIZE, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
		{
			c->gone = true;
			if (wire_decoder_in_message(&c->dec))
				conn_error_event(c, NULL, NULL, "connection closed in the middle of a message");
			return IO_GONE;
		}
		c->in_end = (size_t) n;
	}
}

/* ErrorResponse ERROR (the session goes on; the caller sends ReadyForQuery). */
void
conn_error(Conn *c, const char *sqlstate, const char *message, const char *detail)
{
	wire_put_error(&c->out, "ERROR", sqlstate, message, detail);
	conn_error_event(c, "ERROR", sqlstate, message);
}

/* ErrorResponse FATAL, then the connection ends. */
void
conn_fatal(Conn *c, const char *sqlstate, const char *message, const char *hint)
{
	wire_put_error(&c->out, "FATAL", sqlstate, message, hint);
	conn_error_event(c, "FATAL", sqlstate, message);
	conn_flush(c, 1000);
	c->gone = true;
}

/* Report a slot operation's failure with PostgreSQL's SQLSTATE and text. */
void
conn_slot_error(Conn *c, SlotResult r, const char *name, pid_t active, const WalsimError *err)
{
	char		msg[WALSIM_ERROR_MAX + 80];

	switch (r)
	{
		case SLOT_OK:
			return;
		case SLOT_NOT_FOUND:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" does not exist", name);
			conn_error(c, "42704", msg, NULL);
			return;
		case SLOT_EXISTS:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" already exists", name);
			conn_error(c, "42710", msg, NULL);
			return;
		case SLOT_ACTIVE:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" is active for PID %d", name, (int) active);
			conn_error(c, "55006", msg, NULL);
			return;
		case SLOT_IO_ERROR:
			snprintf(msg, sizeof(msg), "replication slot state: %s", err->message);
			conn_error(c, "58000", msg, NULL);
			return;
	}
}

Conn *
conn_open(const SenderConfig *cfg, WalSource *src, int fd, const char *peer,
		  uint64_t conn_number, int place, volatile sig_atomic_t *stop)
{
	Conn	   *c = calloc(1, sizeof(Conn));

	if (c == NULL)
	{
		close(fd);
		return NULL;
	}
	c->cfg = cfg;
	c->src = src;
	c->fd = fd;
	c->number = conn_number;
	c->stop = stop;
	c->place = place;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	/* bounded memory: no client message may exceed 1 MB */
	wire_decoder_init(&c->dec, WIRE_FRONTEND, CONN_MAX_MESSAGE, CONN_MAX_MESSAGE);
	wire_buf_init(&c->out);
	c->last_recv_ms = conn_now_ms();
	c->auth_deadline_ms = c->last_recv_ms + (cfg->authentication_timeout_ms > 0 ?
											 cfg->authentication_timeout_ms : 60000);
	return c;
}

void
conn_close(Conn *c)
{
	EventLine	ev;

	if (conn_event_begin(c, &ev, "disconnect"))
	{
		json_str(&ev.j, "user", c->user);
		conn_event_end(c, &ev);
	}
	wire_decoder_free(&c->dec);
	wire_buf_free(&c->out);
	close(c->fd);
	free(c);
}

bool
conn_event_begin(Conn *c, EventLine *ev, const char *event)
{
	if (!events_begin(&c->cfg->events, ev, event))
		return false;
	json_str(&ev->j, "peer", c->peer);
	return true;
}

void
conn_event_end(Conn *c, EventLine *ev)
{
	events_end(&c->cfg->events, ev);
}

void
conn_event(Conn *c, const char *event)
{
	EventLine	ev;

	if (conn_event_begin(c, &ev, event))
		conn_event_end(c, &ev);
}

void
conn_error_event(Conn *c, const char *severity, const char *sqlstate, const char *message)
{
	EventLine	ev;

	if (!conn_event_begin(c, &ev, "error"))
		return;
	if (severity != NULL)
		json_str(&ev.j, "severity", severity);
	if (sqlstate != NULL)
		json_str(&ev.j, "sqlstate", sqlstate);
	json_str(&ev.j, "message", message);
	conn_event_end(c, &ev);
}
