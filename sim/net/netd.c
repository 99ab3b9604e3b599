/*
 * netd.c — walsim-netd: the event loop, links, connections, control socket
 * and replay mode (see docs/netd.md).
 *
 * One process, one thread, level-triggered epoll.  Every socket is
 * non-blocking.  Each connection has two pipes with bounded backlogs: the
 * daemon stops reading a source while its pipe holds more than
 * PIPE_BACKLOG_MAX bytes, so a slow or stalled destination pushes back on
 * the sender through TCP instead of growing memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "walsim/decision.h"
#include "netd.h"

#define PIPE_BACKLOG_MAX	(4u * 1024 * 1024)
#define READ_CHUNK			(256u * 1024)
#define MAX_LINKS			32
#define MAX_APPS			64
#define CONTROL_LINE_MAX	4096
#define REPLY_MAX			(256 * 1024)

typedef enum HandleKind
{
	H_LISTEN,
	H_CONTROL_LISTEN,
	H_CONTROL,
	H_CLIENT,
	H_SERVER
} HandleKind;

typedef struct Handle
{
	HandleKind	kind;
	void	   *ptr;
} Handle;

typedef struct AppCount
{
	char		app[NETD_NAME_MAX];
	uint64_t	n;
} AppCount;

typedef struct Link
{
	bool		used;
	char		name[NETD_NAME_MAX];
	char		listen_host[256];
	uint16_t	listen_port;
	char		up_host[256];
	uint16_t	up_port;
	struct sockaddr_storage up_addr;
	socklen_t	up_addrlen;
	bool		tls_pass;
	int			fd;
	Handle		h;
	uint64_t	accepted;
	uint64_t	refused;
	bool		ignoring;		/* refuse mode=ignore: not accepting */
	uint64_t	closed_bytes[2];	/* bytes of connections already closed */
	AppCount	apps[MAX_APPS];
	int			napps;
} Link;

typedef struct Slot
{
	Conn		c;
	Link	   *link;
	int			cfd;
	int			sfd;
	bool		connecting;
	uint32_t	ev_c;			/* epoll interest registered */
	uint32_t	ev_s;
	Handle		hc;
	Handle		hs;
	/* zero-copy path: a kernel pipe per direction, and what it holds */
	int			kp[2][2];
	size_t		kp_len[2];
	size_t		kp_cap[2];
	bool		no_splice;
	bool		dead;			/* closed; freed after the current event batch */
	struct Slot *next;
} Slot;

typedef struct Control
{
	int			fd;
	Handle		h;
	char		line[CONTROL_LINE_MAX];
	size_t		len;
	struct Control *next;
} Control;

typedef struct Netd
{
	int			ep;
	FaultSet	fs;
	Trace		trace;
	Link		links[MAX_LINKS];
	Slot	   *slots;
	Slot	   *graveyard;		/* closed slots whose events may still be pending */
	Control    *controls;
	int			control_fd;
	Handle		control_h;
	char		control_path[108];
	bool		stop;
	bool		default_tls_pass;
	bool		have_pwait2;	/* epoll_pwait2 works (ns timeouts) */
} Netd;

static volatile sig_atomic_t got_signal = 0;
static const char *progname = "walsim-netd";

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC: immune to libfaketime and wall-clock steps */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* ------------------------------------------------------------ links */

static Link *
find_link(Netd *n, const char *name)
{
	for (int i = 0; i < MAX_LINKS; i++)
		if (n->links[i].used && strcmp(n->links[i].name, name) == 0)
			return &n->links[i];
	return NULL;
}

static uint64_t
next_app_number(void *ctx, const char *linkname, const char *app)
{
	Link	   *l = find_link((Netd *) ctx, linkname);

	if (l == NULL)
		return 0;
	for (int i = 0; i < l->napps; i++)
		if (strcmp(l->apps[i].app, app) == 0)
			return l->apps[i].n++;
	if (l->napps < MAX_APPS)
	{
		snprintf(l->apps[l->napps].app, NETD_NAME_MAX, "%s", app);
		l->apps[l->napps].n = 1;
		l->napps++;
	}
	return 0;
}

static bool
resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
		socklen_t *len, WalsimError *err)
{
	struct addrinfo hints = {0},
			   *res;
	char		portstr[8];
	int			rc;

	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0)
		return walsim_error_set(err, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

static void
trace_simple(Netd *n, const char *event, const char *k1, const char *v1,
			 const char *k2, const char *v2)
{
	char		buf[1024];
	JsonBuf		j;

	trace_begin(&n->trace, &j, buf, sizeof(buf), mono_ns(), event);
	if (k1)
		json_str(&j, k1, v1);
	if (k2)
		json_str(&j, k2, v2);
	trace_end(&n->trace, &j);
}

/*
 * Add a link from its parts; listen port 0 picks a free port (reported).
 */
static bool
link_add(Netd *n, const char *name, const char *listen_addr, const char *upstream,
		 bool tls_pass, WalsimError *err)
{
	Link	   *l = NULL;
	struct sockaddr_storage ss;
	socklen_t	sslen;
	struct sockaddr_in bound;
	socklen_t	blen = sizeof(bound);
	int			one = 1;

	if (strlen(name) == 0 || strlen(name) >= NETD_NAME_MAX ||
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(name))
		return walsim_error_set(err, "link name \"%s\": use 1-63 letters, digits, _ - .", name);
	if (find_link(n, name))
		return walsim_error_set(err, "link \"%s\" already exists", name);
	for (int i = 0; i < MAX_LINKS; i++)
		if (!n->links[i].used)
		{
			l = &n->links[i];
			break;
		}
	if (l == NULL)
		return walsim_error_set(err, "too many links (max %d)", MAX_LINKS);
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (!netd_parse_addr(listen_addr, l->listen_host, sizeof(l->listen_host), &l->listen_port, err) ||
		!netd_parse_addr(upstream, l->up_host, sizeof(l->up_host), &l->up_port, err))
		return false;
	if (l->up_port == 0)
		return walsim_error_set(err, "upstream \"%s\": port 0", upstream);
	if (!resolve(l->up_host, l->up_port, &l->up_addr, &l->up_addrlen, err))
		return false;
	if (!resolve(l->listen_host, l->listen_port, &ss, &sslen, err))
		return false;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return walsim_error_set(err, "socket: %s", strerror(errno));
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *) &ss, sslen) != 0 || listen(l->fd, 128) != 0)
	{
		walsim_error_set(err, "link %s: cannot listen on %s: %s", name, listen_addr, strerror(errno));
		close(l->fd);
		return false;
	}
	getsockname(l->fd, (struct sockaddr *) &bound, &blen);
	l->listen_port = ntohs(bound.sin_port);
	l->tls_pass = tls_pass;
	l->h.kind = H_LISTEN;
	l->h.ptr = l;
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->h};

		epoll_ctl(n->ep, EPOLL_CTL_ADD, l->fd, &ev);
	}
	l->used = true;
	{
		char		addr[300];

		snprintf(addr, sizeof(addr), "%s:%u", l->listen_host, l->listen_port);
		trace_simple(n, "link_add", "link", l->name, "listen", addr);
	}
	return true;
}

/* "NAME=LISTEN,UPSTREAM" from the command line */
static bool
link_add_spec(Netd *n, const char *spec, WalsimError *err)
{
	char		copy[600];
	char	   *eq,
			   *comma;

	snprintf(copy, sizeof(copy), "%s", spec);
	eq = strchr(copy, '=');
	comma = eq ? strchr(eq, ',') : NULL;
	if (!eq || !comma)
		return walsim_error_set(err, "--link %s: expected NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT", spec);
	*eq = '\0';
	*comma = '\0';
	return link_add(n, copy, eq + 1, comma + 1, n->default_tls_pass, err);
}

/* ------------------------------------------------------------ connections */

static void
slot_close(Netd *n, Slot *s, const char *reason, bool reset)
{
	char		buf[1024];
	JsonBuf		j;
	Slot	  **pp;

	trace_begin(&n->trace, &j, buf, sizeof(buf), mono_ns(), "conn_close");
	json_str(&j, "link", s->c.link);
	json_str(&j, "conn", s->c.info.key);
	json_u64(&j, "id", s->c.id);
	json_str(&j, "reason", reason);
	json_bool(&j, "reset", reset);
	json_u64(&j, "bytes_up", s->c.pipe[NETD_UP].bytes_out);
	json_u64(&j, "bytes_down", s->c.pipe[NETD_DOWN].bytes_out);
	trace_end(&n->trace, &j);

	for (int fdi = 0; fdi < 2; fdi++)
	{
		int			fd = fdi == 0 ? s->cfd : s->sfd;

		if (fd < 0)
			continue;
		if (reset)
		{
			/* RST instead of FIN: linger on, timeout 0, applied only now */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		epoll_ctl(n->ep, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
	for (int d = 0; d < 2; d++)
		for (int e = 0; e < 2; e++)
			if (s->kp[d][e] >= 0)
				close(s->kp[d][e]);
	if (s->link)
	{
		s->link->closed_bytes[0] += s->c.pipe[NETD_UP].bytes_out;
		s->link->closed_bytes[1] += s->c.pipe[NETD_DOWN].bytes_out;
	}
	for (pp = &n->slots; *pp; pp = &(*pp)->next)
		if (*pp == s)
		{
			*pp = s->next;
			break;
		}
	/*
	 * The same epoll batch may still hold an event for the slot's other
	 * socket (its Handle lives in the slot): free it only after the batch.
	 */
	s->dead = true;
	s->cfd = s->sfd = -1;
	s->next = n->graveyard;
	n->graveyard = s;
}

static void
bury_dead(Netd *n)
{
	while (n->graveyard)
	{
		Slot	   *s = n->graveyard;

		n->graveyard = s->next;
		conn_free(&s->c);
		free(s);
	}
}

/* Is the link refusing new connections (refuse or partition rule)? */
static Fault *
link_refuses(Netd *n, Link *l)
{
	for (int i = 0; i < n->fs.nfaults; i++)
	{
		Fault	   *f = &n->fs.faults[i];

		if ((f->kind == FK_REFUSE || f->kind == FK_PARTITION) && !f->expired && !f->refuse_ignore &&
			strcmp(f->link, l->name) == 0 && (f->max_fires == 0 || f->fires < f->max_fires))
			return f;
	}
	return NULL;
}

/*
 * refuse mode=ignore: stop accepting on links that have such a rule, so
 * connection attempts wait in the kernel's backlog (the client sees a
 * completed TCP handshake and then silence); accept again once it is gone.
 */
static void
update_listeners(Netd *n)
{
	for (int i = 0; i < MAX_LINKS; i++)
	{
		Link	   *l = &n->links[i];
		bool		ignore = false;

		if (!l->used)
			continue;
		for (int k = 0; k < n->fs.nfaults; k++)
		{
			Fault	   *f = &n->fs.faults[k];

			if (f->kind == FK_REFUSE && f->refuse_ignore && !f->expired &&
				strcmp(f->link, l->name) == 0)
				ignore = true;
		}
		if (ignore != l->ignoring)
		{
			struct epoll_event ev = {.events = ignore ? 0 : EPOLLIN, .data.ptr = &l->h};

			epoll_ctl(n->ep, EPOLL_CTL_MOD, l->fd, &ev);
			l->ignoring = ignore;
			trace_simple(n, ignore ? "accept_paused" : "accept_resumed", "link", l->name, NULL, NULL);
		}
	}
}

static void
on_accept(Netd *n, Link *l)
{
	for (;;)
	{
		int			fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		Fault	   *rf;
		Slot	   *s;
		int			one = 1;

		if (fd < 0)
			return;
		l->accepted++;
		rf = link_refuses(n, l);
		if (rf)
		{
			char		buf[512];
			JsonBuf		j;
			uint64_t	now = mono_ns();

			if (rf->refuse_reset)
			{
				struct linger lg = {.l_onoff = 1, .l_linger = 0};

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			}
			close(fd);
			l->refused++;
			rf->fires++;
			if (rf->activated_ns == 0)
				rf->activated_ns = now;
			trace_begin(&n->trace, &j, buf, sizeof(buf), now, "fault");
			json_str(&j, "rule", rf->id);
			json_str(&j, "kind", fault_kind_name(rf->kind));
			json_str(&j, "link", l->name);
			json_u64(&j, "accept", l->accepted);
			json_str(&j, "action", rf->refuse_reset ? "reset" : "close");
			trace_end(&n->trace, &j);
			continue;
		}
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			abort();
		conn_init(&s->c, l->name, l->accepted, l->tls_pass);
		for (int d = 0; d < 2; d++)
			s->kp[d][0] = s->kp[d][1] = -1;
		s->c.next_app_number = next_app_number;
		s->c.ctx = n;
		s->link = l;
		s->cfd = fd;
		s->sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s->hc.kind = H_CLIENT;
		s->hc.ptr = s;
		s->hs.kind = H_SERVER;
		s->hs.ptr = s;
		s->next = n->slots;
		n->slots = s;
		{
			char		buf[512];
			JsonBuf		j;

			trace_begin(&n->trace, &j, buf, sizeof(buf), mono_ns(), "conn_open");
			json_str(&j, "link", l->name);
			json_u64(&j, "id", s->c.id);
			trace_end(&n->trace, &j);
		}
		{
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->hc};

			epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev);
			s->ev_c = EPOLLIN;
		}
		if (s->sfd < 0)
		{
			slot_close(n, s, "socket() failed", false);
			continue;
		}
		setsockopt(s->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(s->sfd, (struct sockaddr *) &l->up_addr, l->up_addrlen) != 0 &&
			errno != EINPROGRESS)
		{
			char		reason[300];

			snprintf(reason, sizeof(reason), "upstream %s:%u: %s", l->up_host, l->up_port, strerror(errno));
			slot_close(n, s, reason, false);
			continue;
		}
		s->connecting = true;
		{
			struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &s->hs};

			epoll_ctl(n->ep, EPOLL_CTL_ADD, s->sfd, &ev);
			s->ev_s = EPOLLOUT;
		}
	}
}

/*
 * Zero-copy: move up to `allow` bytes of a long message body from the source
 * socket into the direction's kernel pipe (written out by slot_service).
 * Returns bytes moved, 0 for "not now", -1 at end of stream, -2 on error.
 */
static ssize_t
slot_splice_in(Slot *s, NetdDir dir, int fd, size_t allow)
{
	ssize_t		r;

	if (s->kp[dir][0] < 0)
	{
		if (pipe2(s->kp[dir], O_NONBLOCK | O_CLOEXEC) != 0)
		{
			s->no_splice = true;
			return 0;
		}
		/* a bigger pipe means fewer wake-ups; the default 64 kB also works */
		fcntl(s->kp[dir][1], F_SETPIPE_SZ, 1024 * 1024);
		s->kp_cap[dir] = (size_t) fcntl(s->kp[dir][1], F_GETPIPE_SZ);
	}
	if (s->kp_len[dir] >= s->kp_cap[dir])
		return 0;
	if (allow > s->kp_cap[dir] - s->kp_len[dir])
		allow = s->kp_cap[dir] - s->kp_len[dir];
	r = splice(fd, NULL, s->kp[dir][1], NULL, allow, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (r > 0)
	{
		s->kp_len[dir] += (size_t) r;
		return r;
	}
	if (r == 0)
		return -1;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	if (errno == EINVAL || errno == ENOSYS)
	{
		s->no_splice = true;	/* not supported here: use recv/send */
		return 0;
	}
	return -2;
}

/* Read what a source offers into its pipe; false = the slot was closed. */
static bool
slot_read(Netd *n, Slot *s, NetdDir dir)
{
	Pipe	   *p = &s->c.pipe[dir];
	int			fd = dir == NETD_UP ? s->cfd : s->sfd;

	while (!p->eof && pipe_backlog(p) + s->kp_len[dir] < PIPE_BACKLOG_MAX)
	{
		uint8_t    *space;
		ssize_t		r;
		size_t		allow = (s->no_splice || s->connecting) ? 0
			: pipe_splice_allowance(&s->c, dir, &n->fs, mono_ns());

		if (allow > 0)
		{
			ssize_t		k = slot_splice_in(s, dir, fd, allow);

			if (k > 0)
			{
				pipe_spliced(&s->c, dir, (size_t) k);
				if ((size_t) k < allow && s->kp_len[dir] < s->kp_cap[dir])
					break;		/* the socket is drained for now */
				continue;
			}
			if (k == -1)
			{
				p->eof = true;
				break;
			}
			if (k == -2)
			{
				char		reason[128];

				snprintf(reason, sizeof(reason), "%s splice error: %s",
						 dir == NETD_UP ? "client" : "server", strerror(errno));
				slot_close(n, s, reason, false);
				return false;
			}
			if (!s->no_splice)
				break;			/* EAGAIN, or the kernel pipe is full */
		}
		space = pipe_input_space(p, READ_CHUNK);
		r = recv(fd, space, READ_CHUNK, 0);

		if (r > 0)
		{
			if (!pipe_input(&s->c, dir, NULL, (size_t) r, &n->fs, mono_ns()))
			{
				char		reason[WALSIM_ERROR_MAX + 64];

				snprintf(reason, sizeof(reason), "protocol error from %s: %s",
						 dir == NETD_UP ? "client" : "server", p->error);
				fprintf(stderr, "%s: %s: %s\n", progname, s->c.info.key, reason);
				slot_close(n, s, reason, false);
				return false;
			}
			if ((size_t) r < READ_CHUNK)
				break;
			continue;
		}
		if (r == 0)
		{
			p->eof = true;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno == EINTR)
			continue;
		{
			char		reason[128];

			snprintf(reason, sizeof(reason), "%s read error: %s",
					 dir == NETD_UP ? "client" : "server", strerror(errno));
			slot_close(n, s, reason, false);
			return false;
		}
	}
	return true;
}

static void
set_interest(Netd *n, int fd, uint32_t want, uint32_t *have, Handle *h)
{
	if (fd < 0 || want == *have)
		return;
	{
		struct epoll_event ev = {.events = want, .data.ptr = h};

		epoll_ctl(n->ep, EPOLL_CTL_MOD, fd, &ev);
	}
	*have = want;
}

/*
 * Write what is due, propagate half-closes, apply close/reset actions and
 * register the interest the connection needs now.  false = slot closed.
 */
static bool
slot_service(Netd *n, Slot *s, uint64_t now)
{
	uint32_t	want_c = 0,
				want_s = 0;

	conn_check_actions(&s->c, &n->fs, now);
	if (s->c.want_reset)
	{
		slot_close(n, s, s->c.close_reason, true);
		return false;
	}
	if (s->connecting)
	{
		/* only the client side can move: its bytes wait in the up pipe */
		Pipe	   *dp = &s->c.pipe[NETD_DOWN];
		const uint8_t *data;
		size_t		k;

		pipe_pump(&s->c, NETD_UP, &n->fs, now);
		k = pipe_ready(dp, now, &data);
		if (k > 0)
		{
			ssize_t		w = send(s->cfd, data, k, MSG_NOSIGNAL);

			if (w > 0)
				pipe_written(dp, (size_t) w);
		}
		if (!s->c.pipe[NETD_UP].eof && pipe_backlog(&s->c.pipe[NETD_UP]) < PIPE_BACKLOG_MAX)
			want_c |= EPOLLIN;
		if (pipe_ready(dp, now, &data) > 0)
			want_c |= EPOLLOUT;
		set_interest(n, s->cfd, want_c, &s->ev_c, &s->hc);
		return true;
	}
	for (int d = 0; d < 2; d++)
	{
		Pipe	   *p = &s->c.pipe[d];
		int			dst = d == NETD_UP ? s->sfd : s->cfd;
		const uint8_t *data;
		size_t		k;

		pipe_pump(&s->c, (NetdDir) d, &n->fs, now);
		/* spliced bytes come first: they precede everything queued */
		while (s->kp_len[d] > 0)
		{
			ssize_t		w = splice(s->kp[d][0], NULL, dst, NULL, s->kp_len[d],
								   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

			if (w > 0)
			{
				s->kp_len[d] -= (size_t) w;
				p->bytes_out += (uint64_t) w;
				continue;
			}
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			{
				char		reason[128];

				snprintf(reason, sizeof(reason), "%s write error: %s",
						 d == NETD_UP ? "server" : "client", w == 0 ? "closed" : strerror(errno));
				slot_close(n, s, reason, false);
				return false;
			}
		}
		if (s->kp_len[d] > 0)
		{
			if (d == NETD_UP)
				want_s |= EPOLLOUT;
			else
				want_c |= EPOLLOUT;
		}
		while (s->kp_len[d] == 0 && (k = pipe_ready(p, now, &data)) > 0)
		{
			ssize_t		w = send(dst, data, k, MSG_NOSIGNAL);

			if (w > 0)
			{
				pipe_written(p, (size_t) w);
				continue;
			}
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			{
				if (d == NETD_UP)
					want_s |= EPOLLOUT;
				else
					want_c |= EPOLLOUT;
				break;
			}
			if (w < 0 && errno == EINTR)
				continue;
			{
				char		reason[128];

				snprintf(reason, sizeof(reason), "%s write error: %s",
						 d == NETD_UP ? "server" : "client", strerror(errno));
				slot_close(n, s, reason, false);
				return false;
			}
		}
		if (p->eof && p->in_len == 0 && p->out_len == 0 && s->kp_len[d] == 0 && !p->shut_sent)
		{
			shutdown(dst, SHUT_WR);
			p->shut_sent = true;
		}
		if (!p->eof && pipe_backlog(p) + s->kp_len[d] < PIPE_BACKLOG_MAX)
		{
			if (d == NETD_UP)
				want_c |= EPOLLIN;
			else
				want_s |= EPOLLIN;
		}
	}
	if (s->c.want_close)
	{
		Pipe	   *u = &s->c.pipe[NETD_UP];
		Pipe	   *dn = &s->c.pipe[NETD_DOWN];

		/* cut_after: let the bytes before the cut out first */
		if ((!u->cut && !dn->cut) ||
			(u->out_len == 0 && dn->out_len == 0 && s->kp_len[0] == 0 && s->kp_len[1] == 0))
		{
			slot_close(n, s, s->c.close_reason, false);
			return false;
		}
	}
	if (s->c.pipe[0].shut_sent && s->c.pipe[1].shut_sent)
	{
		slot_close(n, s, "both sides closed", false);
		return false;
	}
	set_interest(n, s->cfd, want_c, &s->ev_c, &s->hc);
	set_interest(n, s->sfd, want_s, &s->ev_s, &s->hs);
	return true;
}

static void
on_conn_event(Netd *n, Handle *h, uint32_t events)
{
	Slot	   *s = h->ptr;
	NetdDir		dir = h->kind == H_CLIENT ? NETD_UP : NETD_DOWN;

	if (h->kind == H_SERVER && s->connecting)
	{
		int			soerr = 0;
		socklen_t	len = sizeof(soerr);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(s->sfd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		if (soerr != 0)
		{
			char		reason[300];

			snprintf(reason, sizeof(reason), "upstream %s:%u: %s",
					 s->link->up_host, s->link->up_port, strerror(soerr));
			fprintf(stderr, "%s: link %s: %s\n", progname, s->link->name, reason);
			slot_close(n, s, reason, false);
			return;
		}
		s->connecting = false;
		s->ev_s = 0;
		set_interest(n, s->sfd, EPOLLIN, &s->ev_s, &s->hs);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		slot_read(n, s, dir);
}

/* ------------------------------------------------------------ control */

static void
reply(int fd, const char *text)
{
	size_t		len = strlen(text);
	size_t		off = 0;

	/* replies are small and the client reads them: write them whole */
	while (off < len)
	{
		ssize_t		w = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (w > 0)
			off += (size_t) w;
		else if (w < 0 && (errno == EAGAIN || errno == EINTR))
			usleep(1000);
		else
			return;
	}
}

static void
pump_all(Netd *n)
{
	uint64_t	now = mono_ns();

	for (Slot *s = n->slots, *next; s; s = next)
	{
		next = s->next;
		for (int d = 0; d < 2; d++)
			pipe_pump(&s->c, (NetdDir) d, &n->fs, now);
	}
}

static void
fault_remove_at(Netd *n, int i)
{
	memmove(&n->fs.faults[i], &n->fs.faults[i + 1],
			(size_t) (n->fs.nfaults - i - 1) * sizeof(Fault));
	n->fs.nfaults--;
}

static void
cmd_fault(Netd *n, int nw, char **w, char *out, size_t outlen)
{
	if (nw >= 2 && strcmp(w[1], "add") == 0)
	{
		Fault		f;
		WalsimError err;
		char		js[1024];

		if (!fault_parse(&f, nw - 2, w + 2, &err))
		{
			snprintf(out, outlen, "err %s\n", err.message);
			return;
		}
		if (find_link(n, f.link) == NULL)
		{
			snprintf(out, outlen, "err link=%s: no such link\n", f.link);
			return;
		}
		for (int i = 0; i < n->fs.nfaults; i++)
			if (strcmp(n->fs.faults[i].id, f.id) == 0)
			{
				snprintf(out, outlen, "err id=%s: a fault with this id exists (fault del %s first)\n", f.id, f.id);
				return;
			}
		if (n->fs.nfaults == NETD_MAX_FAULTS)
		{
			snprintf(out, outlen, "err too many faults (max %d)\n", NETD_MAX_FAULTS);
			return;
		}
		if (f.trig == TRIG_NOW && f.kind != FK_CORRUPT && f.kind != FK_DROP && f.kind != FK_CUT_AFTER)
			f.activated_ns = mono_ns();
		n->fs.faults[n->fs.nfaults++] = f;
		fault_to_json(&f, js, sizeof(js));
		{
			char		buf[1400];
			JsonBuf		j;

			trace_begin(&n->trace, &j, buf, sizeof(buf), mono_ns(), "fault_add");
			json_member_raw(&j, "fault", js);
			trace_end(&n->trace, &j);
		}
		pump_all(n);
		snprintf(out, outlen, "ok %s\n", js);
		return;
	}
	if (nw == 3 && strcmp(w[1], "del") == 0)
	{
		for (int i = 0; i < n->fs.nfaults; i++)
			if (strcmp(n->fs.faults[i].id, w[2]) == 0)
			{
				fault_remove_at(n, i);
				trace_simple(n, "fault_del", "rule", w[2], NULL, NULL);
				pump_all(n);
				snprintf(out, outlen, "ok {\"deleted\":\"%s\"}\n", w[2]);
				return;
			}
		snprintf(out, outlen, "err fault del %s: no such fault\n", w[2]);
		return;
	}
	if (nw == 2 && strcmp(w[1], "list") == 0)
	{
		JsonBuf		j;

		json_init(&j, out, outlen);
		json_raw(&j, "ok [");
		for (int i = 0; i < n->fs.nfaults; i++)
		{
			char		js[1024];

			fault_to_json(&n->fs.faults[i], js, sizeof(js));
			if (i)
				json_raw(&j, ",");
			json_raw(&j, js);
		}
		json_raw(&j, "]\n");
		return;
	}
	snprintf(out, outlen, "err usage: fault add id=ID link=LINK kind=KIND [key=value...] | fault del ID | fault list\n");
}

static void
cmd_heal(Netd *n, int nw, char **w, char *out, size_t outlen)
{
	const char *link = NULL;
	int			removed = 0;

	for (int i = 1; i < nw; i++)
	{
		if (strncmp(w[i], "link=", 5) == 0 && w[i][5])
			link = w[i] + 5;
		else
		{
			snprintf(out, outlen, "err heal: unknown word \"%s\" (heal [link=NAME])\n", w[i]);
			return;
		}
	}
	if (link && find_link(n, link) == NULL)
	{
		snprintf(out, outlen, "err link=%s: no such link\n", link);
		return;
	}
	for (int i = n->fs.nfaults - 1; i >= 0; i--)
		if (link == NULL || strcmp(n->fs.faults[i].link, link) == 0)
		{
			fault_remove_at(n, i);
			removed++;
		}
	trace_simple(n, "heal", "link", link ? link : "*", NULL, NULL);
	pump_all(n);
	snprintf(out, outlen, "ok {\"removed\":%d}\n", removed);
}

static void
link_json(Netd *n, Link *l, JsonBuf *j, bool with_conns)
{
	char		addr[300];
	uint64_t	bytes[2] = {l->closed_bytes[0], l->closed_bytes[1]};
	int			active = 0;

	for (Slot *s = n->slots; s; s = s->next)
		if (s->link == l)
		{
			active++;
			bytes[0] += s->c.pipe[NETD_UP].bytes_out;
			bytes[1] += s->c.pipe[NETD_DOWN].bytes_out;
		}
	json_raw(j, "{");
	j->first = true;
	json_str(j, "name", l->name);
	snprintf(addr, sizeof(addr), "%s:%u", l->listen_host, l->listen_port);
	json_str(j, "listen", addr);
	json_u64(j, "port", l->listen_port);
	snprintf(addr, sizeof(addr), "%s:%u", l->up_host, l->up_port);
	json_str(j, "upstream", addr);
	json_str(j, "tls", l->tls_pass ? "pass" : "refuse");
	json_u64(j, "accepted", l->accepted);
	json_u64(j, "refused", l->refused);
	json_u64(j, "active", (uint64_t) active);
	json_u64(j, "bytes_up", bytes[0]);
	json_u64(j, "bytes_down", bytes[1]);
	if (with_conns)
	{
		bool		first = true;

		json_raw(j, ",\"conns\":[");
		for (Slot *s = n->slots; s; s = s->next)
		{
			if (s->link != l)
				continue;
			if (!first)
				json_raw(j, ",");
			first = false;
			conn_stats_json(&s->c, j);
		}
		json_raw(j, "]");
	}
	json_raw(j, "}");
	j->first = false;
}

static void
cmd_links_stats(Netd *n, int nw, char **w, char *out, size_t outlen, bool stats)
{
	JsonBuf		j;
	const char *only = NULL;
	bool		first = true;

	for (int i = 1; i < nw; i++)
	{
		if (strncmp(w[i], "link=", 5) == 0 && w[i][5])
			only = w[i] + 5;
		else
		{
			snprintf(out, outlen, "err %s: unknown word \"%s\" (%s [link=NAME])\n", w[0], w[i], w[0]);
			return;
		}
	}
	if (only && find_link(n, only) == NULL)
	{
		snprintf(out, outlen, "err link=%s: no such link\n", only);
		return;
	}
	json_init(&j, out, outlen - 2);
	if (stats)
	{
		char		seed[32];

		snprintf(seed, sizeof(seed), "%" PRIu64, n->fs.seed);
		json_raw(&j, "ok {\"seed\":");
		json_raw(&j, seed);
		{
			char		nf[32];

			snprintf(nf, sizeof(nf), "%d", n->fs.nfaults);
			json_raw(&j, ",\"faults\":");
			json_raw(&j, nf);
		}
		json_raw(&j, ",\"links\":[");
	}
	else
		json_raw(&j, "ok [");
	for (int i = 0; i < MAX_LINKS; i++)
	{
		Link	   *l = &n->links[i];

		if (!l->used || (only && strcmp(l->name, only) != 0))
			continue;
		if (!first)
			json_raw(&j, ",");
		first = false;
		link_json(n, l, &j, stats);
	}
	json_raw(&j, stats ? "]}" : "]");
	strcat(out, "\n");
}

static void
cmd_link(Netd *n, int nw, char **w, char *out, size_t outlen)
{
	if (nw >= 2 && strcmp(w[1], "add") == 0)
	{
		const char *name = NULL,
				   *listen = NULL,
				   *upstream = NULL;
		bool		tls_pass = n->default_tls_pass;
		WalsimError err;
		Link	   *l;

		for (int i = 2; i < nw; i++)
		{
			if (strncmp(w[i], "name=", 5) == 0)
				name = w[i] + 5;
			else if (strncmp(w[i], "listen=", 7) == 0)
				listen = w[i] + 7;
			else if (strncmp(w[i], "upstream=", 9) == 0)
				upstream = w[i] + 9;
			else if (strcmp(w[i], "tls=pass") == 0)
				tls_pass = true;
			else if (strcmp(w[i], "tls=refuse") == 0)
				tls_pass = false;
			else
			{
				snprintf(out, outlen, "err link add: unknown word \"%s\" (name= listen= upstream= [tls=pass|refuse])\n", w[i]);
				return;
			}
		}
		if (!name || !listen || !upstream)
		{
			snprintf(out, outlen, "err link add needs name=NAME listen=HOST:PORT upstream=HOST:PORT\n");
			return;
		}
		if (!link_add(n, name, listen, upstream, tls_pass, &err))
		{
			snprintf(out, outlen, "err %s\n", err.message);
			return;
		}
		l = find_link(n, name);
		snprintf(out, outlen, "ok {\"name\":\"%s\",\"listen\":\"%s:%u\",\"port\":%u}\n",
				 l->name, l->listen_host, l->listen_port, l->listen_port);
		return;
	}
	if (nw == 3 && strcmp(w[1], "del") == 0)
	{
		Link	   *l = find_link(n, w[2]);

		if (l == NULL)
		{
			snprintf(out, outlen, "err link del %s: no such link\n", w[2]);
			return;
		}
		for (Slot *s = n->slots, *next; s; s = next)
		{
			next = s->next;
			if (s->link == l)
				slot_close(n, s, "link deleted", false);
		}
		epoll_ctl(n->ep, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		l->used = false;
		trace_simple(n, "link_del", "link", w[2], NULL, NULL);
		snprintf(out, outlen, "ok {\"deleted\":\"%s\"}\n", w[2]);
		return;
	}
	snprintf(out, outlen, "err usage: link add name=NAME listen=HOST:PORT upstream=HOST:PORT | link del NAME\n");
}

static void
control_line(Netd *n, Control *cl, char *line)
{
	static char out[REPLY_MAX];
	char	   *w[64];
	int			nw = netd_split_words(line, w, 64);

	out[0] = '\0';
	if (nw == 0)
		return;
	if (nw == 64)
		snprintf(out, sizeof(out), "err too many words\n");
	else if (strcmp(w[0], "ping") == 0)
		snprintf(out, sizeof(out), "ok \"pong\"\n");
	else if (strcmp(w[0], "fault") == 0)
		cmd_fault(n, nw, w, out, sizeof(out));
	else if (strcmp(w[0], "faults") == 0)
	{
		char	   *lw[2] = {"fault", "list"};

		cmd_fault(n, 2, lw, out, sizeof(out));
	}
	else if (strcmp(w[0], "heal") == 0)
		cmd_heal(n, nw, w, out, sizeof(out));
	else if (strcmp(w[0], "link") == 0)
		cmd_link(n, nw, w, out, sizeof(out));
	else if (strcmp(w[0], "links") == 0)
		cmd_links_stats(n, nw, w, out, sizeof(out), false);
	else if (strcmp(w[0], "stats") == 0)
		cmd_links_stats(n, nw, w, out, sizeof(out), true);
	else if (strcmp(w[0], "shutdown") == 0)
	{
		n->stop = true;
		snprintf(out, sizeof(out), "ok \"bye\"\n");
	}
	else
		snprintf(out, sizeof(out), "err unknown command \"%.64s\" (ping, fault, faults, heal, link, links, stats, shutdown)\n", w[0]);
	reply(cl->fd, out);
}

static void
control_close(Netd *n, Control *cl)
{
	Control   **pp;

	epoll_ctl(n->ep, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	for (pp = &n->controls; *pp; pp = &(*pp)->next)
		if (*pp == cl)
		{
			*pp = cl->next;
			break;
		}
	free(cl);
}

static void
on_control(Netd *n, Control *cl)
{
	for (;;)
	{
		ssize_t		r = recv(cl->fd, cl->line + cl->len, sizeof(cl->line) - 1 - cl->len, 0);
		char	   *nl;

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		{
			control_close(n, cl);
			return;
		}
		if (r < 0)
			return;
		cl->len += (size_t) r;
		cl->line[cl->len] = '\0';
		while ((nl = memchr(cl->line, '\n', cl->len)) != NULL)
		{
			size_t		used = (size_t) (nl - cl->line) + 1;

			*nl = '\0';
			if (nl > cl->line && nl[-1] == '\r')
				nl[-1] = '\0';
			control_line(n, cl, cl->line);
			memmove(cl->line, cl->line + used, cl->len - used);
			cl->len -= used;
			cl->line[cl->len] = '\0';
			if (n->stop)
				return;
		}
		if (cl->len == sizeof(cl->line) - 1)
		{
			reply(cl->fd, "err line too long\n");
			control_close(n, cl);
			return;
		}
	}
}

static void
on_control_accept(Netd *n)
{
	for (;;)
	{
		int			fd = accept4(n->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		Control    *cl;

		if (fd < 0)
			return;
		cl = calloc(1, sizeof(*cl));
		if (cl == NULL)
			abort();
		cl->fd = fd;
		cl->h.kind = H_CONTROL;
		cl->h.ptr = cl;
		cl->next = n->controls;
		n->controls = cl;
		{
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cl->h};

			epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev);
		}
	}
}

static bool
control_open(Netd *n, const char *path, WalsimError *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t		old;

	if (strlen(path) >= sizeof(sa.sun_path))
		return walsim_error_set(err, "--control %s: path too long (max %zu)", path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	snprintf(n->control_path, sizeof(n->control_path), "%s", path);
	unlink(path);
	n->control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->control_fd < 0)
		return walsim_error_set(err, "socket: %s", strerror(errno));
	old = umask(0177);			/* the socket is created 0600 */
	if (bind(n->control_fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		umask(old);
		return walsim_error_set(err, "--control %s: %s", path, strerror(errno));
	}
	umask(old);
	chmod(path, 0600);
	if (listen(n->control_fd, 16) != 0)
		return walsim_error_set(err, "--control %s: listen: %s", path, strerror(errno));
	n->control_h.kind = H_CONTROL_LISTEN;
	n->control_h.ptr = NULL;
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &n->control_h};

		epoll_ctl(n->ep, EPOLL_CTL_ADD, n->control_fd, &ev);
	}
	return true;
}

/* ------------------------------------------------------------ main loop */

/* Time to wait for the next due release or expiry (at most 1 s). */
static void
next_timeout(Netd *n, uint64_t now, struct timespec *ts)
{
	uint64_t	next = faults_next_expiry(&n->fs);

	for (Slot *s = n->slots; s; s = s->next)
		for (int d = 0; d < 2; d++)
		{
			uint64_t	t = pipe_next_release(&s->c.pipe[d]);

			if (t < next)
				next = t;
		}
	if (next == UINT64_MAX || next - now > 1000000000u)
		next = now + 1000000000u;
	if (next <= now)
		next = now;
	/* nanosecond timeout: delays of 1 ms must not be rounded to 2 */
	ts->tv_sec = (time_t) ((next - now) / 1000000000u);
	ts->tv_nsec = (long) ((next - now) % 1000000000u);
}

static void
run_loop(Netd *n)
{
	struct epoll_event events[64];

	while (!n->stop && !got_signal)
	{
		uint64_t	now = mono_ns();
		struct timespec ts;
		int			nev = 0;

		next_timeout(n, now, &ts);
		if (n->have_pwait2)
		{
			nev = epoll_pwait2(n->ep, events, 64, &ts, NULL);
			if (nev < 0 && errno == ENOSYS)
				n->have_pwait2 = false;		/* old kernel, or Valgrind */
		}
		if (!n->have_pwait2)
			nev = epoll_wait(n->ep, events, 64,
							 (int) (ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000));

		for (int i = 0; i < nev && !n->stop; i++)
		{
			Handle	   *h = events[i].data.ptr;

			switch (h->kind)
			{
				case H_LISTEN:
					on_accept(n, h->ptr);
					break;
				case H_CONTROL_LISTEN:
					on_control_accept(n);
					break;
				case H_CONTROL:
					on_control(n, h->ptr);
					break;
				case H_CLIENT:
				case H_SERVER:
					/* the slot may have been closed by an earlier event */
					if (!((Slot *) h->ptr)->dead)
						on_conn_event(n, h, events[i].events);
					break;
			}
		}
		now = mono_ns();
		bury_dead(n);
		faults_expire(&n->fs, now);
		update_listeners(n);
		for (Slot *s = n->slots, *next; s; s = next)
		{
			next = s->next;
			slot_service(n, s, now);
		}
	}
}

static void
shutdown_all(Netd *n)
{
	while (n->slots)
		slot_close(n, n->slots, "netd shutting down", false);
	bury_dead(n);
	while (n->controls)
		control_close(n, n->controls);
	for (int i = 0; i < MAX_LINKS; i++)
		if (n->links[i].used)
		{
			close(n->links[i].fd);
			n->links[i].used = false;
		}
	if (n->control_fd >= 0)
	{
		close(n->control_fd);
		unlink(n->control_path);
	}
	close(n->ep);
}

/* ------------------------------------------------------------ replay */

static uint8_t *
slurp(const char *path, size_t *len, WalsimError *err)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		size;

	if (f == NULL)
		return walsim_error_set(err, "%s: %s", path, strerror(errno)), NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) size + 1);
	if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		fclose(f);
		free(buf);
		return walsim_error_set(err, "%s: read error", path), NULL;
	}
	fclose(f);
	*len = (size_t) size;
	return buf;
}

static uint64_t
fnv64(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}

/*
 * Replay a recorded two-way stream (PREFIX.fe, PREFIX.be) through the fault
 * core with no sockets and virtual time.  The two directions are fed in
 * alternating chunks (sizes from --replay-chunk, or drawn from the seed);
 * everything the core releases is collected.  Prints a JSON summary with
 * hashes of both outputs; --replay-output writes them to PREFIX.up/.down.
 */
static int
run_replay(Netd *n, const char *prefix, const char *outprefix, const char *link,
		   uint64_t chunk)
{
	char		path[4096];
	WalsimError err;
	uint8_t    *data[2];
	size_t		len[2],
				pos[2] = {0, 0};
	Conn		c;
	uint64_t	now = 1000000000u;
	uint64_t	step = 0;
	uint64_t	hash[2] = {UINT64_C(1469598103934665603), UINT64_C(1469598103934665603)};
	uint64_t	outlen[2] = {0, 0};
	FILE	   *out[2] = {NULL, NULL};
	bool		failed = false;
	size_t		ssl_request_end = 0;

	for (int d = 0; d < 2; d++)
	{
		snprintf(path, sizeof(path), "%s.%s", prefix, d == NETD_UP ? "fe" : "be");
		data[d] = slurp(path, &len[d], &err);
		if (data[d] == NULL)
		{
			fprintf(stderr, "%s: --replay-input: %s\n", progname, err.message);
			if (d == 1)
				free(data[0]);
			return 2;
		}
		if (outprefix)
		{
			snprintf(path, sizeof(path), "%s.%s", outprefix, d == NETD_UP ? "up" : "down");
			out[d] = fopen(path, "wb");
			if (out[d] == NULL)
			{
				fprintf(stderr, "%s: --replay-output %s: %s\n", progname, path, strerror(errno));
				return 2;
			}
		}
	}
	/* the recorded server answered SSLRequest itself: pass it through */
	conn_init(&c, link, 0, true);
	if (len[0] >= 8 && (wire_be32(data[0] + 4) == WIRE_SSL_REQUEST_CODE ||
						wire_be32(data[0] + 4) == WIRE_GSSENC_REQUEST_CODE))
		ssl_request_end = 8;
	while ((pos[0] < len[0] || pos[1] < len[1]) && !failed)
	{
		for (int d = 0; d < 2 && !failed; d++)
		{
			uint64_t	k = chunk;
			const uint8_t *ready;
			size_t		r;

			if (k == 0)
			{
				uint64_t	coords[2] = {step, (uint64_t) d};

				k = decision_uniform(decision_u64(n->fs.seed, "replay-chunk", coords, 2), 1, 8192);
			}
			if (k > len[d] - pos[d])
				k = len[d] - pos[d];
			/*
			 * Causality: the server answers an SSL/GSS request only after
			 * the whole request arrived, and netd must know to expect the
			 * one-byte answer before it sees it.
			 */
			if (d == NETD_DOWN && pos[0] < ssl_request_end)
				k = 0;
			/* ... and says nothing else before the startup packet */
			if (d == NETD_DOWN && !c.info.startup_seen && ssl_request_end > 0 &&
				pos[1] + k > 1)
				k = pos[1] >= 1 ? 0 : 1;
			if (d == NETD_DOWN && !c.info.startup_seen && ssl_request_end == 0)
				k = 0;
			if (k > 0 && !pipe_input(&c, (NetdDir) d, data[d] + pos[d], k, &n->fs, now))
			{
				fprintf(stderr, "%s: replay %s stream: %s\n", progname,
						d == NETD_UP ? "client" : "server", c.pipe[d].error);
				failed = true;
			}
			pos[d] += k;
			conn_check_actions(&c, &n->fs, now);
			faults_expire(&n->fs, now);
			for (int e = 0; e < 2; e++)
			{
				pipe_pump(&c, (NetdDir) e, &n->fs, now);
				/* virtual time: whatever is queued is delivered when due */
				while ((r = pipe_ready(&c.pipe[e], now, &ready)) > 0)
				{
					hash[e] = fnv64(ready, r, hash[e]);
					outlen[e] += r;
					if (out[e])
						fwrite(ready, 1, r, out[e]);
					pipe_written(&c.pipe[e], r);
				}
			}
		}
		step++;
		now += 1000000;			/* 1 ms per step */
	}
	/* drain: deliver everything still queued (delays are virtual) */
	for (int e = 0; e < 2; e++)
	{
		const uint8_t *ready;
		size_t		r;

		pipe_pump(&c, (NetdDir) e, &n->fs, UINT64_MAX - 1);
		while ((r = pipe_ready(&c.pipe[e], UINT64_MAX - 1, &ready)) > 0)
		{
			hash[e] = fnv64(ready, r, hash[e]);
			outlen[e] += r;
			if (out[e])
				fwrite(ready, 1, r, out[e]);
			pipe_written(&c.pipe[e], r);
		}
	}
	printf("{\"seed\":%" PRIu64 ",\"conn\":\"%s\",\"up_in\":%zu,\"up_out\":%" PRIu64
		   ",\"down_in\":%zu,\"down_out\":%" PRIu64 ",\"up_hash\":\"%016" PRIx64
		   "\",\"down_hash\":\"%016" PRIx64 "\",\"trace_events\":%" PRIu64
		   ",\"corrupted\":%" PRIu64 ",\"dropped_bytes\":%" PRIu64 ",\"ok\":%s}\n",
		   n->fs.seed, c.info.key, len[0], outlen[0], len[1], outlen[1], hash[0], hash[1],
		   n->trace.seq, c.pipe[0].corrupted + c.pipe[1].corrupted,
		   c.pipe[0].dropped + c.pipe[1].dropped, failed ? "false" : "true");
	for (int d = 0; d < 2; d++)
	{
		if (out[d])
			fclose(out[d]);
		free(data[d]);
	}
	conn_free(&c);
	return failed ? 1 : 0;
}

/* ------------------------------------------------------------ options */

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: %s --control PATH [--seed N] [--trace FILE] [--link NAME=LISTEN,UPSTREAM]...\n"
			"       [--fault 'id=.. link=.. kind=.. ...']... [--tls pass|refuse]\n"
			"       %s --replay-input PREFIX [--replay-output PREFIX] [--replay-link NAME]\n"
			"       [--replay-chunk N] [--seed N] [--trace FILE] [--fault '...']...\n"
			"\n"
			"Protocol-aware deterministic TCP fault proxy for PostgreSQL replication.\n"
			"Control commands (one per line on the UNIX socket): ping, links, stats,\n"
			"link add|del, fault add|del|list, heal.  See docs/netd.md.\n",
			progname, progname);
}

int
main(int argc, char **argv)
{
	static Netd n;
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"trace", required_argument, NULL, 't'},
		{"link", required_argument, NULL, 'l'},
		{"fault", required_argument, NULL, 'f'},
		{"tls", required_argument, NULL, 'T'},
		{"replay-input", required_argument, NULL, 'R'},
		{"replay-output", required_argument, NULL, 'O'},
		{"replay-link", required_argument, NULL, 'L'},
		{"replay-chunk", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *control = NULL,
			   *trace = NULL,
			   *replay = NULL,
			   *replay_out = NULL,
			   *replay_link = "replay";
	char	   *linkspecs[MAX_LINKS];
	char	   *faultspecs[NETD_MAX_FAULTS];
	int			nlinks = 0,
				nfaults = 0;
	uint64_t	chunk = 0;
	int			opt;
	WalsimError err;
	int			rc = 0;

	n.control_fd = -1;
	n.have_pwait2 = true;
	n.fs.trace = &n.trace;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		char	   *end;

		switch (opt)
		{
			case 'c':
				control = optarg;
				break;
			case 's':
				errno = 0;
				n.fs.seed = strtoull(optarg, &end, 0);
				if (errno || *end || optarg[0] == '-')
				{
					fprintf(stderr, "%s: --seed %s: not an unsigned integer\n", progname, optarg);
					return 2;
				}
				break;
			case 't':
				trace = optarg;
				break;
			case 'l':
				if (nlinks == MAX_LINKS)
				{
					fprintf(stderr, "%s: too many --link (max %d)\n", progname, MAX_LINKS);
					return 2;
				}
				linkspecs[nlinks++] = optarg;
				break;
			case 'f':
				if (nfaults == NETD_MAX_FAULTS)
				{
					fprintf(stderr, "%s: too many --fault\n", progname);
					return 2;
				}
				faultspecs[nfaults++] = optarg;
				break;
			case 'T':
				if (strcmp(optarg, "pass") == 0)
					n.default_tls_pass = true;
				else if (strcmp(optarg, "refuse") != 0)
				{
					fprintf(stderr, "%s: --tls %s: expected pass or refuse\n", progname, optarg);
					return 2;
				}
				break;
			case 'R':
				replay = optarg;
				break;
			case 'O':
				replay_out = optarg;
				break;
			case 'L':
				replay_link = optarg;
				break;
			case 'C':
				chunk = strtoull(optarg, &end, 10);
				if (*end || chunk == 0)
				{
					fprintf(stderr, "%s: --replay-chunk %s: expected a positive integer\n", progname, optarg);
					return 2;
				}
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", progname, argv[optind]);
		return 2;
	}
	if (!replay && !control)
	{
		fprintf(stderr, "%s: --control PATH is required (or --replay-input)\n", progname);
		usage(stderr);
		return 2;
	}
	n.trace.seed = n.fs.seed;
	if (trace)
	{
		n.trace.f = fopen(trace, "w");
		if (n.trace.f == NULL)
		{
			fprintf(stderr, "%s: --trace %s: %s\n", progname, trace, strerror(errno));
			return 2;
		}
	}
	for (int i = 0; i < nfaults; i++)
	{
		char		copy[1024];
		char	   *w[64];
		int			nw;

		snprintf(copy, sizeof(copy), "%s", faultspecs[i]);
		nw = netd_split_words(copy, w, 64);
		if (!fault_parse(&n.fs.faults[n.fs.nfaults], nw, w, &err))
		{
			fprintf(stderr, "%s: --fault \"%s\": %s\n", progname, faultspecs[i], err.message);
			return 2;
		}
		n.fs.nfaults++;
	}
	{
		char		buf[256];
		JsonBuf		j;

		trace_begin(&n.trace, &j, buf, sizeof(buf), replay ? 0 : mono_ns(), "start");
		json_str(&j, "mode", replay ? "replay" : "proxy");
		trace_end(&n.trace, &j);
	}
	if (replay)
	{
		for (int i = 0; i < n.fs.nfaults; i++)
			if (strcmp(n.fs.faults[i].link, replay_link) != 0)
			{
				fprintf(stderr, "%s: --fault %s: link=%s is not the replay link \"%s\"\n", progname,
						n.fs.faults[i].id, n.fs.faults[i].link, replay_link);
				return 2;
			}
		rc = run_replay(&n, replay, replay_out, replay_link, chunk);
		if (n.trace.f)
			fclose(n.trace.f);
		return rc;
	}

	signal(SIGPIPE, SIG_IGN);
	{
		struct sigaction sa = {.sa_handler = on_signal};

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	n.ep = epoll_create1(EPOLL_CLOEXEC);
	if (n.ep < 0)
	{
		fprintf(stderr, "%s: epoll_create1: %s\n", progname, strerror(errno));
		return 2;
	}
	for (int i = 0; i < nlinks; i++)
		if (!link_add_spec(&n, linkspecs[i], &err))
		{
			fprintf(stderr, "%s: %s\n", progname, err.message);
			return 2;
		}
	for (int i = 0; i < n.fs.nfaults; i++)
		if (find_link(&n, n.fs.faults[i].link) == NULL)
		{
			fprintf(stderr, "%s: --fault %s: link=%s: no such link\n", progname,
					n.fs.faults[i].id, n.fs.faults[i].link);
			return 2;
		}
		else if (n.fs.faults[i].trig == TRIG_NOW)
			n.fs.faults[i].activated_ns = mono_ns();
	if (!control_open(&n, control, &err))
	{
		fprintf(stderr, "%s: %s\n", progname, err.message);
		return 2;
	}
	fprintf(stderr, "%s: seed %" PRIu64 ", control %s\n", progname, n.fs.seed, control);
	run_loop(&n);
	shutdown_all(&n);
	if (n.trace.f)
		fclose(n.trace.f);
	return 0;
}
