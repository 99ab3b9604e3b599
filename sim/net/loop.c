/*
 * loop.c — walsim-netd's event loop (see loop.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

void
netd_init(Netd *n, const char *progname)
{
	memset(n, 0, sizeof(*n));
	n->proxy.progname = progname;
	n->proxy.ep = -1;
	n->proxy.fs.trace = &n->proxy.trace;
	n->control.fd = -1;
	n->proxy.reserve_fd = -1;
	n->proxy.startup_timeout_ns = DEFAULT_STARTUP_TIMEOUT_NS;
	n->have_pwait2 = true;
}

bool
netd_open(Netd *n, WalsimError *err)
{
	n->proxy.ep = epoll_create1(EPOLL_CLOEXEC);
	if (n->proxy.ep < 0)
		return walsim_error_set(err, "epoll_create1: %s", strerror(errno));
	proxy_reserve_fd(&n->proxy);
	return true;
}

/*
 * Time to wait for the next due release or expiry (at most 1 s).  A release
 * that fell due while the loop was busy is served at once: before, an
 * overdue deadline wrapped around to the 1 s cap, so a bandwidth fault whose
 * next 16 kB slice came due during the previous send slept a whole second
 * (20 MB/s delivered 3 MB/s, 50 MB/s under 2 MB/s).
 */
static void
next_timeout(const Netd *n, uint64_t now, struct timespec *ts)
{
	uint64_t	wait = pipe_wait_ns(proxy_next_deadline(&n->proxy), now, 1000000000u);

	/* nanosecond timeout: delays of 1 ms must not be rounded to 2 */
	ts->tv_sec = (time_t) (wait / 1000000000u);
	ts->tv_nsec = (long) (wait % 1000000000u);
}

static int
wait_events(Netd *n, struct epoll_event *events, int max, const struct timespec *ts)
{
	int			nev = 0;

	if (n->have_pwait2)
	{
		nev = epoll_pwait2(n->proxy.ep, events, max, ts, NULL);
		if (nev < 0 && errno == ENOSYS)
			n->have_pwait2 = false; /* old kernel, or Valgrind */
	}
	if (!n->have_pwait2)
		nev = epoll_wait(n->proxy.ep, events, max,
						 (int) (ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000));
	return nev;
}

void
netd_run(Netd *n, volatile sig_atomic_t *signalled)
{
	struct epoll_event events[64];

	while (!n->control.stop && !*signalled)
	{
		struct timespec ts;
		int			nev;

		next_timeout(n, proxy_now_ns(), &ts);
		nev = wait_events(n, events, 64, &ts);
		for (int i = 0; i < nev && !n->control.stop; i++)
		{
			Handle	   *h = events[i].data.ptr;

			h->fn(h, events[i].events);
		}
		proxy_bury_dead(&n->proxy);
		proxy_settle(&n->proxy, proxy_now_ns());
	}
}

void
netd_close(Netd *n)
{
	proxy_close_all(&n->proxy);
	control_close_all(&n->control);
	if (n->proxy.ep >= 0)
		close(n->proxy.ep);
	n->proxy.ep = -1;
}
