/*
 * loop.h — walsim-netd's event loop: one process, one thread,
 * level-triggered epoll over the links, their connections and the control
 * socket.  Each registration carries its handler (link.h, Handle), so the
 * loop only waits, dispatches, and then settles the proxy (proxy_settle).
 */
#ifndef WALSIM_NETD_LOOP_H
#define WALSIM_NETD_LOOP_H

#include <signal.h>
#include <stdbool.h>

#include "walsim/error.h"
#include "control.h"
#include "link.h"

typedef struct Netd
{
	Proxy		proxy;
	ControlServer control;
	bool		have_pwait2;	/* epoll_pwait2 works (ns timeouts) */
} Netd;

/* Set up an empty daemon state (no epoll instance yet). */
void		netd_init(Netd *n, const char *progname);

/* Create the epoll instance. */
bool		netd_open(Netd *n, WalsimError *err);

/* Serve until "shutdown" or until *signalled becomes non-zero. */
void		netd_run(Netd *n, volatile sig_atomic_t *signalled);

/* Close every connection, link and control client, and the epoll instance. */
void		netd_close(Netd *n);

#endif							/* WALSIM_NETD_LOOP_H */
