/*
 * slot.c — one proxied connection of walsim-netd: the client socket, the
 * server socket, and the Conn of the fault core between them (see link.h).
 *
 * Reading feeds each source into its pipe (pipe_input), or, for the rest of
 * a long message body the fault core has planned as a plain forward,
 * splices it socket -> kernel pipe -> socket without copying it.  Writing
 * sends what the pipes release, spliced bytes first (they precede
 * everything queued).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"

/* Per (link, application) numbering of connections: the N of LINK/APP/N. */
static uint64_t
next_app_number(void *ctx, const char *linkname, const char *app)
{
	Link	   *l = proxy_find_link((Proxy *) ctx, linkname);

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

void
slot_close(Proxy *p, Slot *s, const char *reason, bool reset)
{
	char		buf[1024];
	JsonBuf		j;
	Slot	  **pp;

	trace_begin(&p->trace, &j, buf, sizeof(buf), proxy_now_ns(), "conn_close");
	json_str(&j, "link", s->c.link);
	json_str(&j, "conn", s->c.info.key);
	if (s->c.has_src)
		json_str(&j, "src", s->c.src);
	json_u64(&j, "id", s->c.id);
	json_str(&j, "reason", reason);
	json_bool(&j, "reset", reset);
	json_u64(&j, "bytes_up", s->c.pipe[NETD_UP].bytes_out);
	json_u64(&j, "bytes_down", s->c.pipe[NETD_DOWN].bytes_out);
	trace_end(&p->trace, &j);

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
		epoll_ctl(p->ep, EPOLL_CTL_DEL, fd, NULL);
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
	for (pp = &p->slots; *pp; pp = &(*pp)->next)
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
	s->next = p->graveyard;
	p->graveyard = s;
}

static void
set_interest(Proxy *p, int fd, uint32_t want, uint32_t *have, Handle *h)
{
	if (fd < 0 || want == *have)
		return;
	{
		struct epoll_event ev = {.events = want, .data.ptr = h};

		epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
	}
	*have = want;
}

/* ------------------------------------------------------------ reading */

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

/* What one read step did. */
typedef enum ReadStep
{
	READ_MORE,					/* go on reading */
	READ_DONE,					/* drained (or end of stream) for now */
	READ_FALLBACK,				/* no splice now: recv() instead */
	READ_CLOSED					/* the slot was closed */
} ReadStep;

/* Splice up to `allow` bytes of a forwarded body (see pipe_splice_allowance). */
static ReadStep
slot_read_splice(Proxy *p, Slot *s, NetdDir dir, int fd, size_t allow)
{
	Pipe	   *pp = &s->c.pipe[dir];
	ssize_t		k = slot_splice_in(s, dir, fd, allow);

	if (k > 0)
	{
		pipe_spliced(&s->c, dir, (size_t) k);
		if ((size_t) k < allow && s->kp_len[dir] < s->kp_cap[dir])
			return READ_DONE;	/* the socket is drained for now */
		return READ_MORE;
	}
	if (k == -1)
	{
		pp->eof = true;
		return READ_DONE;
	}
	if (k == -2)
	{
		char		reason[128];

		snprintf(reason, sizeof(reason), "%s splice error: %s",
				 dir == NETD_UP ? "client" : "server", strerror(errno));
		slot_close(p, s, reason, false);
		return READ_CLOSED;
	}
	if (!s->no_splice)
		return READ_DONE;		/* EAGAIN, or the kernel pipe is full */
	return READ_FALLBACK;
}

/* recv() a chunk into the pipe and let the fault core see it. */
static ReadStep
slot_read_copy(Proxy *p, Slot *s, NetdDir dir, int fd)
{
	Pipe	   *pp = &s->c.pipe[dir];
	uint8_t    *space = pipe_input_space(pp, READ_CHUNK);
	ssize_t		r = recv(fd, space, READ_CHUNK, 0);
	char		reason[WALSIM_ERROR_MAX + 64];

	if (r > 0)
	{
		if (!pipe_input(&s->c, dir, NULL, (size_t) r, &p->fs, proxy_now_ns()))
		{
			snprintf(reason, sizeof(reason), "protocol error from %s: %s",
					 dir == NETD_UP ? "client" : "server", pp->error);
			fprintf(stderr, "%s: %s: %s\n", p->progname, s->c.info.key, reason);
			slot_close(p, s, reason, false);
			return READ_CLOSED;
		}
		return (size_t) r < READ_CHUNK ? READ_DONE : READ_MORE;
	}
	if (r == 0)
	{
		pp->eof = true;
		return READ_DONE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return READ_DONE;
	if (errno == EINTR)
		return READ_MORE;
	snprintf(reason, sizeof(reason), "%s read error: %s",
			 dir == NETD_UP ? "client" : "server", strerror(errno));
	slot_close(p, s, reason, false);
	return READ_CLOSED;
}

/* Read what a source offers into its pipe; false = the slot was closed. */
static bool
slot_read(Proxy *p, Slot *s, NetdDir dir)
{
	Pipe	   *pp = &s->c.pipe[dir];
	int			fd = dir == NETD_UP ? s->cfd : s->sfd;

	while (!pp->eof && pipe_backlog(pp) + s->kp_len[dir] < PIPE_BACKLOG_MAX)
	{
		size_t		allow = (s->no_splice || s->connecting) ? 0
			: pipe_splice_allowance(&s->c, dir, &p->fs, proxy_now_ns());
		ReadStep	step = READ_FALLBACK;

		if (allow > 0)
			step = slot_read_splice(p, s, dir, fd, allow);
		if (step == READ_FALLBACK)
			step = slot_read_copy(p, s, dir, fd);
		if (step == READ_CLOSED)
			return false;
		if (step == READ_DONE)
			break;
	}
	return true;
}

/* ------------------------------------------------------------ writing */

/* While connecting upstream only the client side can move. */
static void
service_connecting(Proxy *p, Slot *s, uint64_t now)
{
	Pipe	   *dp = &s->c.pipe[NETD_DOWN];
	uint32_t	want_c = 0;
	const uint8_t *data;
	size_t		k;

	/*
	 * The client's bytes wait in the up pipe; the down pipe can hold netd's
	 * own answer to an SSLRequest, which a rule change may release.
	 */
	pipe_pump(&s->c, NETD_UP, &p->fs, now);
	pipe_pump(&s->c, NETD_DOWN, &p->fs, now);
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
	set_interest(p, s->cfd, want_c, &s->ev_c, &s->hc);
}

static bool
write_failed(Proxy *p, Slot *s, NetdDir d, const char *what)
{
	char		reason[128];

	snprintf(reason, sizeof(reason), "%s write error: %s",
			 d == NETD_UP ? "server" : "client", what);
	slot_close(p, s, reason, false);
	return false;
}

/*
 * Write direction d's spliced and due bytes to its destination and say
 * which events the slot waits for (*want_dst: writable, *want_src:
 * readable).  false = the slot was closed.
 */
static bool
service_dir(Proxy *p, Slot *s, NetdDir d, uint64_t now, uint32_t *want_src, uint32_t *want_dst)
{
	Pipe	   *pp = &s->c.pipe[d];
	int			dst = d == NETD_UP ? s->sfd : s->cfd;
	const uint8_t *data;
	size_t		k;

	pipe_pump(&s->c, d, &p->fs, now);
	/* spliced bytes come first: they precede everything queued */
	while (s->kp_len[d] > 0)
	{
		ssize_t		w = splice(s->kp[d][0], NULL, dst, NULL, s->kp_len[d],
							   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (w > 0)
		{
			s->kp_len[d] -= (size_t) w;
			pp->bytes_out += (uint64_t) w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		return write_failed(p, s, d, w == 0 ? "closed" : strerror(errno));
	}
	if (s->kp_len[d] > 0)
		*want_dst |= EPOLLOUT;
	while (s->kp_len[d] == 0 && (k = pipe_ready(pp, now, &data)) > 0)
	{
		ssize_t		w = send(dst, data, k, MSG_NOSIGNAL);

		if (w > 0)
		{
			pipe_written(pp, (size_t) w);
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			*want_dst |= EPOLLOUT;
			break;
		}
		if (w < 0 && errno == EINTR)
			continue;
		return write_failed(p, s, d, strerror(errno));
	}
	if (pp->eof && pp->in_len == 0 && pp->out_len == 0 && s->kp_len[d] == 0 && !pp->shut_sent)
	{
		shutdown(dst, SHUT_WR);
		pp->shut_sent = true;
	}
	if (!pp->eof && pipe_backlog(pp) + s->kp_len[d] < PIPE_BACKLOG_MAX)
		*want_src |= EPOLLIN;
	return true;
}

bool
slot_service(Proxy *p, Slot *s, uint64_t now)
{
	uint32_t	want_c = 0,
				want_s = 0;

	conn_check_actions(&s->c, &p->fs, now);
	if (s->c.want_reset)
	{
		slot_close(p, s, s->c.close_reason, true);
		return false;
	}
	if (s->connecting)
	{
		service_connecting(p, s, now);
		return true;
	}
	if (!service_dir(p, s, NETD_UP, now, &want_c, &want_s) ||
		!service_dir(p, s, NETD_DOWN, now, &want_s, &want_c))
		return false;
	if (s->c.want_close)
	{
		Pipe	   *u = &s->c.pipe[NETD_UP];
		Pipe	   *dn = &s->c.pipe[NETD_DOWN];

		/* cut_after: let the bytes before the cut out first */
		if ((!u->cut && !dn->cut) ||
			(u->out_len == 0 && dn->out_len == 0 && s->kp_len[0] == 0 && s->kp_len[1] == 0))
		{
			slot_close(p, s, s->c.close_reason, false);
			return false;
		}
	}
	if (s->c.pipe[0].shut_sent && s->c.pipe[1].shut_sent)
	{
		slot_close(p, s, "both sides closed", false);
		return false;
	}
	set_interest(p, s->cfd, want_c, &s->ev_c, &s->hc);
	set_interest(p, s->sfd, want_s, &s->ev_s, &s->hs);
	return true;
}

/* ------------------------------------------------------------ events */

/* The upstream connect() finished (or failed). */
static void
slot_connected(Proxy *p, Slot *s, uint32_t events)
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
		fprintf(stderr, "%s: link %s: %s\n", p->progname, s->link->name, reason);
		slot_close(p, s, reason, false);
		return;
	}
	s->connecting = false;
	s->ev_s = 0;
	set_interest(p, s->sfd, EPOLLIN, &s->ev_s, &s->hs);
}

static void
on_slot_event(Handle *h, uint32_t events)
{
	Proxy	   *p = h->owner;
	Slot	   *s = h->ptr;
	bool		server = h == &s->hs;

	/* the slot may have been closed by an earlier event of the batch */
	if (s->dead)
		return;
	if (server && s->connecting)
	{
		slot_connected(p, s, events);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		slot_read(p, s, server ? NETD_DOWN : NETD_UP);
}

/* ------------------------------------------------------------ opening */

#define IS_LOOPBACK(a) ((ntohl(a) >> 24) == 127)

/*
 * Connect upstream from the client's own loopback address, so that the
 * server sees which node it is (docs/netd.md, "Source nodes").  Only when
 * both ends are loopback addresses and the client is not on 127.0.0.1
 * (where the kernel's choice already is).  Failure is not fatal: the
 * connection then comes from netd's default address.
 */
static void
bind_like_client(int sfd, uint32_t client, const Link *l)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
	int			one = 1;

	if (client == 0 || client == htonl(INADDR_LOOPBACK) || !IS_LOOPBACK(client) ||
		l->up_addr.ss_family != AF_INET ||
		!IS_LOOPBACK(((const struct sockaddr_in *) &l->up_addr)->sin_addr.s_addr))
		return;
	src.sin_addr.s_addr = client;
	/* the port is chosen at connect(), against the destination: no early exhaustion */
	setsockopt(sfd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	(void) bind(sfd, (struct sockaddr *) &src, sizeof(src));
}

void
slot_open(Proxy *p, Link *l, int fd, const struct sockaddr_storage *peer, const char *src)
{
	Slot	   *s = calloc(1, sizeof(*s));
	int			one = 1;
	char		addr[64] = "";

	if (s == NULL)
		abort();
	conn_init(&s->c, l->name, l->accepted, l->tls_pass);
	if (peer && peer->ss_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) peer;
		char		ip[INET_ADDRSTRLEN];

		s->peer_addr = in->sin_addr.s_addr;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(addr, sizeof(addr), "%s:%u", ip, ntohs(in->sin_port));
	}
	conn_set_src(&s->c, src, addr);
	if (l->raw)
		conn_set_raw(&s->c, src, next_app_number(p, l->name, src));
	for (int d = 0; d < 2; d++)
		s->kp[d][0] = s->kp[d][1] = -1;
	s->c.next_app_number = next_app_number;
	s->c.ctx = p;
	s->link = l;
	s->cfd = fd;
	s->sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->hc = (Handle) {.fn = on_slot_event, .owner = p, .ptr = s};
	s->hs = (Handle) {.fn = on_slot_event, .owner = p, .ptr = s};
	s->next = p->slots;
	p->slots = s;
	{
		char		buf[512];
		JsonBuf		j;

		trace_begin(&p->trace, &j, buf, sizeof(buf), proxy_now_ns(), "conn_open");
		json_str(&j, "link", l->name);
		json_u64(&j, "id", s->c.id);
		json_str(&j, "conn", s->c.info.key);
		json_str(&j, "src", src);
		json_str(&j, "src_addr", addr);
		trace_end(&p->trace, &j);
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->hc};

		epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev);
		s->ev_c = EPOLLIN;
	}
	if (s->sfd < 0)
	{
		slot_close(p, s, "socket() failed", false);
		return;
	}
	setsockopt(s->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bind_like_client(s->sfd, s->peer_addr, l);
	if (connect(s->sfd, (struct sockaddr *) &l->up_addr, l->up_addrlen) != 0 &&
		errno != EINPROGRESS)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "upstream %s:%u: %s", l->up_host, l->up_port, strerror(errno));
		slot_close(p, s, reason, false);
		return;
	}
	s->connecting = true;
	{
		struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &s->hs};

		epoll_ctl(p->ep, EPOLL_CTL_ADD, s->sfd, &ev);
		s->ev_s = EPOLLOUT;
	}
}
