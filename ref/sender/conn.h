/*
 * conn.h — one client connection of walsim-sender: its state, socket I/O
 * with deadlines, and the errors sent to the client.  Every other part of a
 * connection (session.h, exec.h, stream.h) works through these.
 */
#ifndef WALSIM_SENDER_CONN_H
#define WALSIM_SENDER_CONN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "walsim/wire.h"
#include "sender.h"
#include "slots.h"

#define CONN_IN_SIZE		(64 * 1024)
#define CONN_MAX_MESSAGE	(1024 * 1024)

enum
{
	IO_OK,
	IO_TIMEOUT,
	IO_STOP,
	IO_GONE
};

typedef struct Conn
{
	const SenderConfig *cfg;
	WalSource  *src;
	int			fd;
	uint64_t	number;			/* 1 for the first connection the listener took */
	volatile sig_atomic_t *stop;
	int			place;			/* index in SenderShared.authed */
	int64_t		auth_deadline_ms;	/* authenticated by then, or closed (conn_now_ms) */
	bool		stopping;		/* shutdown under way: *stop already seen */
	char		peer[64];
	char		user[128];
	char		appname[128];
	bool		gone;			/* peer closed, I/O failed, or FATAL sent */
	uint32_t	protocol;		/* the protocol version in use (3.0, or 3.2 with 18's WAL) */
	int64_t		last_recv_ms;	/* monotonic time of the last client message */

	WireDecoder dec;
	uint8_t		in[CONN_IN_SIZE];
	size_t		in_start;
	size_t		in_end;
	WireBuf		out;
	size_t		out_sent;		/* bytes at the front of out already written */
	uint8_t		startup_body[WIRE_MAX_STARTUP_LENGTH];
} Conn;

/*
 * The state of a client on fd (the connection's own process); NULL when out
 * of memory (fd is closed then).  place is the connection's index in
 * cfg->shared (see SenderShared: it takes a place against --max-connections
 * once authenticated); *stop is set by SIGTERM.
 */
Conn	   *conn_open(const SenderConfig *cfg, WalSource *src, int fd, const char *peer,
					  uint64_t conn_number, int place, volatile sig_atomic_t *stop);
/* Log the disconnection, close fd, free c. */
void		conn_close(Conn *c);

/* Bytes queued but not yet written to the socket. */
static inline size_t
conn_pending(const Conn *c)
{
	return c->out.len - c->out_sent;
}

int64_t		conn_now_ms(void);
bool		conn_try_write(Conn *c);
bool		conn_flush(Conn *c, int timeout_ms);
int			conn_next(Conn *c, WireMessage *m, int timeout_ms);
void		conn_error(Conn *c, const char *sqlstate, const char *message, const char *detail);
void		conn_fatal(Conn *c, const char *sqlstate, const char *message, const char *hint);
void		conn_slot_error(Conn *c, SlotResult r, const char *name, pid_t active,
							const WalsimError *err);

/*
 * Events about this connection (--json-events): begin writes "peer" first
 * and returns false when events are off; add fields to ev->j, then end.
 */
bool		conn_event_begin(Conn *c, EventLine *ev, const char *event);
void		conn_event_end(Conn *c, EventLine *ev);
/* An event with no field but the peer. */
void		conn_event(Conn *c, const char *event);
/* The "error" event: what the client was told; NULL fields are left out. */
void		conn_error_event(Conn *c, const char *severity, const char *sqlstate,
							 const char *message);

#endif							/* WALSIM_SENDER_CONN_H */
