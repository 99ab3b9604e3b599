/*
 * control.h — the control protocol of walsim-netd: a UNIX socket, one
 * command per line, one reply line per command ("ok <JSON>" or
 * "err <reason>"); see docs/netd.md, "Control protocol".
 *
 * Commands are executed one at a time in the order they arrive, and a
 * command that changes rules takes effect on every listener and connection
 * before the next command is read (proxy_settle), so a client that writes
 * several commands at once sees the same behaviour as one that waits for
 * each reply.
 */
#ifndef WALSIM_NETD_CONTROL_H
#define WALSIM_NETD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "link.h"

#define CONTROL_LINE_MAX	4096
#define REPLY_MAX			(256 * 1024)

/*
 * Replies a client has not read yet are kept for it, up to this much; a
 * client that lets more pile up is disconnected.  The event loop never waits
 * for a control client (one that never reads must not stall the links).
 */
#define CONTROL_OUT_MAX		(4 * REPLY_MAX)

/* Control connections at once; more are closed at accept with a reason. */
#define CONTROL_MAX_CLIENTS	32

/* One control client: the part of a line it has sent, the replies it has not read. */
typedef struct Control
{
	int			fd;
	Handle		h;
	char		line[CONTROL_LINE_MAX];
	size_t		len;
	char	   *out;			/* unsent replies: out[out_off..out_len) */
	size_t		out_off;
	size_t		out_len;
	size_t		out_cap;
	uint32_t	ev;				/* epoll interest registered */
	struct Control *next;
} Control;

typedef struct ControlServer
{
	Proxy	   *proxy;
	int			fd;				/* the listening socket, -1 = none */
	Handle		h;
	char		path[108];
	Control    *clients;
	int			nclients;
	uint64_t	overflows;		/* clients disconnected for unread replies */
	uint64_t	turned_away;	/* connections closed at CONTROL_MAX_CLIENTS */
	bool		stop;			/* "shutdown" was received */
	char		reply[REPLY_MAX];
} ControlServer;

/* Listen on the UNIX socket path (mode 0600; an old socket file is replaced). */
bool		control_open(ControlServer *cs, Proxy *p, const char *path, WalsimError *err);

/* Close every client and the socket, and remove its file. */
void		control_close_all(ControlServer *cs);

#endif							/* WALSIM_NETD_CONTROL_H */
