/*
 * link.c — links of walsim-netd: listeners, accepting (or refusing) new
 * connections, and the proxy-wide step that applies the rule set to every
 * listener and connection (see link.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "link.h"

uint64_t
proxy_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC: immune to libfaketime and wall-clock steps */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void
proxy_trace(Proxy *p, const char *event, const char *k1, const char *v1,
			const char *k2, const char *v2)
{
	char		buf[1024];
	JsonBuf		j;

	trace_begin(&p->trace, &j, buf, sizeof(buf), proxy_now_ns(), event);
	if (k1)
		json_str(&j, k1, v1);
	if (k2)
		json_str(&j, k2, v2);
	trace_end(&p->trace, &j);
}

Link *
proxy_find_link(Proxy *p, const char *name)
{
	for (int i = 0; i < MAX_LINKS; i++)
		if (p->links[i].used && strcmp(p->links[i].name, name) == 0)
			return &p->links[i];
	return NULL;
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

/* ------------------------------------------------------------ accepting */

/*
 * refuse mode=ignore: stop accepting on a link that has such a rule, so
 * connection attempts wait in the kernel's backlog (the client sees a
 * completed TCP handshake and then silence); accept again once it is gone.
 */
static void
link_sync_listener(Proxy *p, Link *l, uint64_t now)
{
	bool		ignore = faults_pause_accept(&p->fs, l->name);
	bool		off = ignore || now < l->backoff_until;

	if (ignore != l->ignoring)
	{
		l->ignoring = ignore;
		proxy_trace(p, ignore ? "accept_paused" : "accept_resumed", "link", l->name, NULL, NULL);
	}
	if (off != l->listener_off)
	{
		struct epoll_event ev = {.events = off ? 0 : EPOLLIN, .data.ptr = &l->h};

		epoll_ctl(p->ep, EPOLL_CTL_MOD, l->fd, &ev);
		l->listener_off = off;
	}
}

void
proxy_reserve_fd(Proxy *p)
{
	if (p->reserve_fd < 0)
		p->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * accept() failed for lack of descriptors (EMFILE, ENFILE) or kernel memory:
 * the connection stays in the backlog and the listener stays readable.
 * Give up the reserve descriptor, accept the connection and close it at
 * once (the client sees its connection closed, as with a full backlog),
 * take the reserve again.  Without a reserve, stop listening for
 * ACCEPT_BACKOFF_NS.  Either way the loop does not spin.
 */
static bool
accept_shortage(Proxy *p, Link *l, int why)
{
	char		what[64];
	bool		dropped = false;

	p->fd_shortages++;
	if (p->reserve_fd >= 0 && (why == EMFILE || why == ENFILE))
	{
		int			fd;

		close(p->reserve_fd);
		p->reserve_fd = -1;
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
		{
			close(fd);
			l->refused++;
			dropped = true;
		}
		proxy_reserve_fd(p);
	}
	snprintf(what, sizeof(what), "%s", strerror(why));
	proxy_trace(p, "accept_failed", "link", l->name, "error", what);
	if (!dropped)
	{
		l->backoff_until = proxy_now_ns() + ACCEPT_BACKOFF_NS;
		link_sync_listener(p, l, proxy_now_ns());
	}
	return dropped;
}

/* A refuse or partition rule turns the new connection fd (from src) away. */
static void
refuse_connection(Proxy *p, Link *l, Fault *rf, int fd, const char *src)
{
	char		buf[512];
	JsonBuf		j;
	uint64_t	now = proxy_now_ns();

	l->refused++;
	rf->fires++;
	if (rf->activated_ns == 0)
		rf->activated_ns = now;
	/* traced before the client can see it: whoever reads the trace after the refusal finds it */
	trace_begin(&p->trace, &j, buf, sizeof(buf), now, "fault");
	json_str(&j, "rule", rf->id);
	json_str(&j, "kind", fault_kind_name(rf->kind));
	json_str(&j, "link", l->name);
	json_str(&j, "src", src);
	json_u64(&j, "accept", l->accepted);
	json_str(&j, "action", rf->refuse_reset ? "reset" : "close");
	trace_end(&p->trace, &j);
	if (rf->refuse_reset)
	{
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

static void
on_accept(Proxy *p, Link *l)
{
	/*
	 * The batch of events may have been taken before a rule paused the
	 * listener: leave the connection in the backlog all the same.
	 */
	if (l->listener_off)
		return;
	for (;;)
	{
		struct sockaddr_storage peer;
		socklen_t	plen = sizeof(peer);
		int			fd = accept4(l->fd, (struct sockaddr *) &peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		const char *src = NETD_NO_NODE;
		Fault	   *rf;

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
				accept_shortage(p, l, errno))
				continue;
			return;
		}
		l->accepted++;
		if (peer.ss_family == AF_INET)
			src = nodes_lookup(&p->nodes, ((struct sockaddr_in *) &peer)->sin_addr.s_addr);
		rf = faults_refusing(&p->fs, l->name, src);
		if (rf)
			refuse_connection(p, l, rf, fd, src);
		else
			slot_open(p, l, fd, &peer, src);
	}
}

static void
on_listen_event(Handle *h, uint32_t events)
{
	(void) events;
	on_accept(h->owner, h->ptr);
}

/* ------------------------------------------------------------ links */

/* Listen on l's address; listen port 0 picks a free port (stored back in l). */
static bool
link_listen(Proxy *p, Link *l, const char *listen_addr, WalsimError *err)
{
	struct sockaddr_storage ss;
	socklen_t	sslen;
	struct sockaddr_in bound;
	socklen_t	blen = sizeof(bound);
	int			one = 1;

	if (!resolve(l->listen_host, l->listen_port, &ss, &sslen, err))
		return false;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return walsim_error_set(err, "socket: %s", strerror(errno));
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *) &ss, sslen) != 0 || listen(l->fd, 128) != 0)
	{
		walsim_error_set(err, "link %s: cannot listen on %s: %s", l->name, listen_addr, strerror(errno));
		close(l->fd);
		return false;
	}
	getsockname(l->fd, (struct sockaddr *) &bound, &blen);
	l->listen_port = ntohs(bound.sin_port);
	l->h.fn = on_listen_event;
	l->h.owner = p;
	l->h.ptr = l;
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->h};

		epoll_ctl(p->ep, EPOLL_CTL_ADD, l->fd, &ev);
	}
	return true;
}

bool
proxy_link_add(Proxy *p, const char *name, const char *listen_addr, const char *upstream,
			   bool tls_pass, bool raw, WalsimError *err)
{
	Link	   *l = NULL;
	char		addr[300];

	if (strlen(name) == 0 || strlen(name) >= NETD_NAME_MAX ||
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(name))
		return walsim_error_set(err, "link name \"%s\": use 1-63 letters, digits, _ - .", name);
	if (proxy_find_link(p, name))
		return walsim_error_set(err, "link \"%s\" already exists", name);
	for (int i = 0; i < MAX_LINKS; i++)
		if (!p->links[i].used)
		{
			l = &p->links[i];
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
	if (!link_listen(p, l, listen_addr, err))
		return false;
	l->tls_pass = tls_pass;
	l->raw = raw;
	l->used = true;
	snprintf(addr, sizeof(addr), "%s:%u", l->listen_host, l->listen_port);
	proxy_trace(p, "link_add", "link", l->name, "listen", addr);
	/* a refuse mode=ignore rule may name the link already */
	link_sync_listener(p, l, proxy_now_ns());
	return true;
}

bool
proxy_link_add_spec(Proxy *p, const char *spec, WalsimError *err)
{
	char		copy[600];
	char	   *eq,
			   *comma,
			   *proto;
	bool		raw = false;

	snprintf(copy, sizeof(copy), "%s", spec);
	eq = strchr(copy, '=');
	comma = eq ? strchr(eq, ',') : NULL;
	if (!eq || !comma)
		return walsim_error_set(err, "--link %s: expected NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT[,raw]", spec);
	*eq = '\0';
	*comma = '\0';
	proto = strchr(comma + 1, ',');
	if (proto)
	{
		*proto++ = '\0';
		if (strcmp(proto, "raw") == 0)
			raw = true;
		else if (strcmp(proto, "pg") != 0)
			return walsim_error_set(err, "--link %s: \"%s\": expected raw or pg after the upstream",
									spec, proto);
	}
	return proxy_link_add(p, copy, eq + 1, comma + 1, p->default_tls_pass, raw, err);
}

void
proxy_link_del(Proxy *p, Link *l)
{
	for (Slot *s = p->slots, *next; s; s = next)
	{
		next = s->next;
		if (s->link == l)
			slot_close(p, s, "link deleted", false);
	}
	epoll_ctl(p->ep, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	l->used = false;
	proxy_trace(p, "link_del", "link", l->name, NULL, NULL);
}

/* ------------------------------------------------------------ source nodes */

bool
proxy_node_add(Proxy *p, const char *name, const char *addr, int *renamed, WalsimError *err)
{
	if (!nodes_add(&p->nodes, name, addr, err))
		return false;
	*renamed = 0;
	for (Slot *s = p->slots; s; s = s->next)
	{
		const char *src = nodes_lookup(&p->nodes, s->peer_addr);

		if (s->peer_addr != 0 && strcmp(src, s->c.src) != 0)
		{
			conn_set_src(&s->c, src, NULL);
			(*renamed)++;
		}
	}
	proxy_trace(p, "node_add", "node", name, "addr", addr);
	return true;
}

bool
proxy_node_del(Proxy *p, const char *name)
{
	if (nodes_del(&p->nodes, name) == 0)
		return false;
	for (Slot *s = p->slots; s; s = s->next)
		if (s->c.has_src && strcmp(s->c.src, name) == 0)
			conn_set_src(&s->c, nodes_lookup(&p->nodes, s->peer_addr), NULL);
	proxy_trace(p, "node_del", "node", name, NULL, NULL);
	return true;
}

bool
proxy_check_fault(Proxy *p, const Fault *f, WalsimError *err)
{
	Link	   *l = proxy_find_link(p, f->link);
	const char *why;

	if (l == NULL)
		return walsim_error_set(err, "link=%s: no such link", f->link);
	if (l->raw && (why = fault_needs_protocol(f)) != NULL)
		return walsim_error_set(err, "link=%s is a raw link: %s needs PostgreSQL framing "
								"(raw links take byte-level faults only)", f->link, why);
	for (int i = 0; i < f->nsrc; i++)
		if (strcmp(f->src[i], NETD_NO_NODE) != 0 && !nodes_known(&p->nodes, f->src[i]))
		{
			char		names[512];

			nodes_names(&p->nodes, names, sizeof(names));
			return walsim_error_set(err, "src=%s: no such node (nodes: %s; \"-\" for none)",
									f->src[i], names);
		}
	return true;
}

/* ------------------------------------------------------------ the proxy */

void
proxy_settle(Proxy *p, uint64_t now)
{
	p->settled_ns = now;
	faults_expire(&p->fs, now);
	for (int i = 0; i < MAX_LINKS; i++)
		if (p->links[i].used)
			link_sync_listener(p, &p->links[i], now);
	for (Slot *s = p->slots, *next; s; s = next)
	{
		next = s->next;
		slot_service(p, s, now);
	}
}

void
proxy_bury_dead(Proxy *p)
{
	while (p->graveyard)
	{
		Slot	   *s = p->graveyard;

		p->graveyard = s->next;
		conn_free(&s->c);
		free(s);
	}
}

/* Keep t as the next deadline when it is the earliest one still to come. */
static inline void
earliest_after(uint64_t *next, uint64_t t, uint64_t after)
{
	if (t > after && t < *next)
		*next = t;
}

uint64_t
proxy_next_deadline(const Proxy *p)
{
	uint64_t	next = UINT64_MAX;

	earliest_after(&next, faults_next_expiry(&p->fs), p->settled_ns);
	for (int i = 0; i < MAX_LINKS; i++)
		if (p->links[i].used)
			earliest_after(&next, p->links[i].backoff_until, p->settled_ns);
	for (const Slot *s = p->slots; s; s = s->next)
	{
		earliest_after(&next, slot_startup_deadline(p, s), p->settled_ns);
		for (int d = 0; d < 2; d++)
			earliest_after(&next, pipe_next_release(&s->c.pipe[d]), p->settled_ns);
	}
	return next;
}

void
proxy_close_all(Proxy *p)
{
	while (p->slots)
		slot_close(p, p->slots, "netd shutting down", false);
	proxy_bury_dead(p);
	for (int i = 0; i < MAX_LINKS; i++)
		if (p->links[i].used)
		{
			close(p->links[i].fd);
			p->links[i].used = false;
		}
	if (p->reserve_fd >= 0)
		close(p->reserve_fd);
	p->reserve_fd = -1;
}
