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

#include "walsim/error.h"
#include "link.h"

#define CONTROL_LINE_MAX	4096
#define REPLY_MAX			(256 * 1024)

/* One control client and the part of a line it has sent. */
typedef struct Control
{
	int			fd;
	Handle		h;
	char		line[CONTROL_LINE_MAX];
	size_t		len;
	struct Control *next;
} Control;

typedef struct ControlServer
{
	Proxy	   *proxy;
	int			fd;				/* the listening socket, -1 = none */
	Handle		h;
	char		path[108];
	Control    *clients;
	bool		stop;			/* "shutdown" was received */
	char		reply[REPLY_MAX];
} ControlServer;

/* Listen on the UNIX socket path (mode 0600; an old socket file is replaced). */
bool		control_open(ControlServer *cs, Proxy *p, const char *path, WalsimError *err);

/* Close every client and the socket, and remove its file. */
void		control_close_all(ControlServer *cs);

#endif							/* WALSIM_NETD_CONTROL_H */
