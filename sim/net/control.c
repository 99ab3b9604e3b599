/*
 * control.c — the control protocol of walsim-netd (see control.h and
 * docs/netd.md): the socket, line framing, and one function per command.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

/* A command: the words of its line, the reply written into out. */
typedef void (*CommandFn) (ControlServer *cs, int nw, char **w, char *out, size_t outlen);

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

/* "ok" and a JSON object with one member, a string or a number. */
static void
reply_ok_member(char *out, size_t outlen, const char *key, const char *str, int64_t num)
{
	JsonBuf		j;

	json_init(&j, out, outlen - 1);
	json_raw(&j, "ok ");
	json_object_begin(&j, NULL);
	if (str)
		json_str(&j, key, str);
	else
		json_i64(&j, key, num);
	json_object_end(&j);
	json_raw(&j, "\n");
}

/* ------------------------------------------------------------ faults */

static void
fault_add(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	Proxy	   *p = cs->proxy;
	Fault		f;
	WalsimError err;
	char		js[FAULT_JSON_MAX];

	if (!fault_parse(&f, nw, w, &err) || !proxy_check_fault(p, &f, &err))
	{
		snprintf(out, outlen, "err %s\n", err.message);
		return;
	}
	if (faults_find(&p->fs, f.id) >= 0)
	{
		snprintf(out, outlen, "err id=%s: a fault with this id exists (fault del %s first)\n", f.id, f.id);
		return;
	}
	if (p->fs.nfaults == NETD_MAX_FAULTS)
	{
		snprintf(out, outlen, "err too many faults (max %d)\n", NETD_MAX_FAULTS);
		return;
	}
	if (f.trig == TRIG_NOW && f.kind != FK_CORRUPT && f.kind != FK_DROP && f.kind != FK_CUT_AFTER)
		f.activated_ns = proxy_now_ns();
	faults_add(&p->fs, &f);
	fault_to_json(&f, js, sizeof(js));
	{
		char		buf[FAULT_JSON_MAX + 256];
		JsonBuf		j;

		trace_begin(&p->trace, &j, buf, sizeof(buf), proxy_now_ns(), "fault_add");
		json_member_raw(&j, "fault", js);
		trace_end(&p->trace, &j);
	}
	proxy_settle(p, proxy_now_ns());
	snprintf(out, outlen, "ok %s\n", js);
}

static void
fault_del(ControlServer *cs, const char *id, char *out, size_t outlen)
{
	Proxy	   *p = cs->proxy;
	int			i = faults_find(&p->fs, id);

	if (i < 0)
	{
		snprintf(out, outlen, "err fault del %s: no such fault\n", id);
		return;
	}
	faults_remove_at(&p->fs, i);
	proxy_trace(p, "fault_del", "rule", id, NULL, NULL);
	proxy_settle(p, proxy_now_ns());
	reply_ok_member(out, outlen, "deleted", id, 0);
}

static void
fault_list(ControlServer *cs, char *out, size_t outlen)
{
	FaultSet   *fs = &cs->proxy->fs;
	JsonBuf		j;

	json_init(&j, out, outlen);
	json_raw(&j, "ok ");
	json_array_begin(&j, NULL);
	for (int i = 0; i < fs->nfaults; i++)
	{
		char		js[FAULT_JSON_MAX];

		fault_to_json(&fs->faults[i], js, sizeof(js));
		json_member_raw(&j, NULL, js);
	}
	json_array_end(&j);
	json_raw(&j, "\n");
}

static void
cmd_fault(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	if (nw >= 2 && strcmp(w[1], "add") == 0)
		fault_add(cs, nw - 2, w + 2, out, outlen);
	else if (nw == 3 && strcmp(w[1], "del") == 0)
		fault_del(cs, w[2], out, outlen);
	else if (nw == 2 && strcmp(w[1], "list") == 0)
		fault_list(cs, out, outlen);
	else
		snprintf(out, outlen, "err usage: fault add id=ID link=LINK kind=KIND [key=value...] | fault del ID | fault list\n");
}

static void
cmd_faults(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	(void) nw;
	(void) w;
	fault_list(cs, out, outlen);
}

static void
cmd_heal(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	Proxy	   *p = cs->proxy;
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
	if (link && proxy_find_link(p, link) == NULL)
	{
		snprintf(out, outlen, "err link=%s: no such link\n", link);
		return;
	}
	for (int i = p->fs.nfaults - 1; i >= 0; i--)
		if (link == NULL || strcmp(p->fs.faults[i].link, link) == 0)
		{
			faults_remove_at(&p->fs, i);
			removed++;
		}
	proxy_trace(p, "heal", "link", link ? link : "*", NULL, NULL);
	proxy_settle(p, proxy_now_ns());
	reply_ok_member(out, outlen, "removed", NULL, removed);
}

/* ------------------------------------------------------------ links */

static void
link_json(Proxy *p, Link *l, JsonBuf *j, bool with_conns)
{
	char		addr[300];
	uint64_t	bytes[2] = {l->closed_bytes[0], l->closed_bytes[1]};
	int			active = 0;

	for (Slot *s = p->slots; s; s = s->next)
		if (s->link == l)
		{
			active++;
			bytes[0] += s->c.pipe[NETD_UP].bytes_out;
			bytes[1] += s->c.pipe[NETD_DOWN].bytes_out;
		}
	json_object_begin(j, NULL);
	json_str(j, "name", l->name);
	snprintf(addr, sizeof(addr), "%s:%u", l->listen_host, l->listen_port);
	json_str(j, "listen", addr);
	json_u64(j, "port", l->listen_port);
	snprintf(addr, sizeof(addr), "%s:%u", l->up_host, l->up_port);
	json_str(j, "upstream", addr);
	json_str(j, "tls", l->tls_pass ? "pass" : "refuse");
	json_str(j, "proto", l->raw ? "raw" : "pg");
	json_u64(j, "accepted", l->accepted);
	json_u64(j, "refused", l->refused);
	json_u64(j, "active", (uint64_t) active);
	json_u64(j, "bytes_up", bytes[0]);
	json_u64(j, "bytes_down", bytes[1]);
	if (with_conns)
	{
		json_array_begin(j, "conns");
		for (Slot *s = p->slots; s; s = s->next)
			if (s->link == l)
				conn_stats_json(&s->c, j);
		json_array_end(j);
	}
	json_object_end(j);
}

/* "links" and "stats": the links (one with link=NAME), stats with connections. */
static void
links_or_stats(ControlServer *cs, int nw, char **w, char *out, size_t outlen, bool stats)
{
	Proxy	   *p = cs->proxy;
	JsonBuf		j;
	const char *only = NULL;

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
	if (only && proxy_find_link(p, only) == NULL)
	{
		snprintf(out, outlen, "err link=%s: no such link\n", only);
		return;
	}
	json_init(&j, out, outlen - 2);
	json_raw(&j, "ok ");
	if (stats)
	{
		json_object_begin(&j, NULL);
		json_u64(&j, "seed", p->fs.seed);
		json_u64(&j, "faults", (uint64_t) p->fs.nfaults);
		json_array_begin(&j, "links");
	}
	else
		json_array_begin(&j, NULL);
	for (int i = 0; i < MAX_LINKS; i++)
	{
		Link	   *l = &p->links[i];

		if (l->used && (only == NULL || strcmp(l->name, only) == 0))
			link_json(p, l, &j, stats);
	}
	json_array_end(&j);
	if (stats)
		json_object_end(&j);
	strcat(out, "\n");
}

static void
cmd_links(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	links_or_stats(cs, nw, w, out, outlen, false);
}

static void
cmd_stats(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	links_or_stats(cs, nw, w, out, outlen, true);
}

static void
link_add(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	Proxy	   *p = cs->proxy;
	const char *name = NULL,
			   *listen = NULL,
			   *upstream = NULL;
	bool		tls_pass = p->default_tls_pass;
	bool		raw = false;
	WalsimError err;
	Link	   *l;
	char		addr[300];
	JsonBuf		j;

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
		else if (strcmp(w[i], "proto=raw") == 0)
			raw = true;
		else if (strcmp(w[i], "proto=pg") == 0)
			raw = false;
		else
		{
			snprintf(out, outlen, "err link add: unknown word \"%s\" (name= listen= upstream= [tls=pass|refuse] [proto=pg|raw])\n", w[i]);
			return;
		}
	}
	if (!name || !listen || !upstream)
	{
		snprintf(out, outlen, "err link add needs name=NAME listen=HOST:PORT upstream=HOST:PORT\n");
		return;
	}
	if (!proxy_link_add(p, name, listen, upstream, tls_pass, raw, &err))
	{
		snprintf(out, outlen, "err %s\n", err.message);
		return;
	}
	l = proxy_find_link(p, name);
	snprintf(addr, sizeof(addr), "%s:%u", l->listen_host, l->listen_port);
	json_init(&j, out, outlen - 1);
	json_raw(&j, "ok ");
	json_object_begin(&j, NULL);
	json_str(&j, "name", l->name);
	json_str(&j, "listen", addr);
	json_u64(&j, "port", l->listen_port);
	json_str(&j, "proto", l->raw ? "raw" : "pg");
	json_object_end(&j);
	json_raw(&j, "\n");
}

static void
cmd_link(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	if (nw >= 2 && strcmp(w[1], "add") == 0)
		link_add(cs, nw, w, out, outlen);
	else if (nw == 3 && strcmp(w[1], "del") == 0)
	{
		Link	   *l = proxy_find_link(cs->proxy, w[2]);

		if (l == NULL)
		{
			snprintf(out, outlen, "err link del %s: no such link\n", w[2]);
			return;
		}
		proxy_link_del(cs->proxy, l);
		reply_ok_member(out, outlen, "deleted", w[2], 0);
	}
	else
		snprintf(out, outlen, "err usage: link add name=NAME listen=HOST:PORT upstream=HOST:PORT | link del NAME\n");
}

/* ------------------------------------------------------------ nodes */

static void
node_add(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	const char *name = NULL,
			   *addr = NULL;
	WalsimError err;
	int			renamed;
	JsonBuf		j;

	for (int i = 2; i < nw; i++)
	{
		if (strncmp(w[i], "name=", 5) == 0)
			name = w[i] + 5;
		else if (strncmp(w[i], "addr=", 5) == 0)
			addr = w[i] + 5;
		else
		{
			snprintf(out, outlen, "err node add: unknown word \"%s\" (name=NAME addr=A.B.C.D)\n", w[i]);
			return;
		}
	}
	if (!name || !addr)
	{
		snprintf(out, outlen, "err node add needs name=NAME addr=A.B.C.D\n");
		return;
	}
	if (!proxy_node_add(cs->proxy, name, addr, &renamed, &err))
	{
		snprintf(out, outlen, "err %s\n", err.message);
		return;
	}
	json_init(&j, out, outlen - 1);
	json_raw(&j, "ok ");
	json_object_begin(&j, NULL);
	json_str(&j, "name", name);
	json_str(&j, "addr", addr);
	json_u64(&j, "conns", (uint64_t) renamed);
	json_object_end(&j);
	json_raw(&j, "\n");
}

static void
cmd_node(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	if (nw >= 2 && strcmp(w[1], "add") == 0)
		node_add(cs, nw, w, out, outlen);
	else if (nw == 3 && strcmp(w[1], "del") == 0)
	{
		if (!proxy_node_del(cs->proxy, w[2]))
		{
			snprintf(out, outlen, "err node del %s: no such node\n", w[2]);
			return;
		}
		reply_ok_member(out, outlen, "deleted", w[2], 0);
	}
	else
		snprintf(out, outlen, "err usage: node add name=NAME addr=A.B.C.D | node del NAME\n");
}

static void
cmd_nodes(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	const NodeTable *t = &cs->proxy->nodes;
	JsonBuf		j;

	if (nw != 1)
	{
		snprintf(out, outlen, "err nodes: unknown word \"%s\" (nodes takes none)\n", w[1]);
		return;
	}
	json_init(&j, out, outlen - 1);
	json_raw(&j, "ok ");
	json_array_begin(&j, NULL);
	for (int i = 0; i < t->n; i++)
	{
		char		ip[INET_ADDRSTRLEN];
		struct in_addr a = {.s_addr = t->e[i].addr};

		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		json_object_begin(&j, NULL);
		json_str(&j, "name", t->e[i].name);
		json_str(&j, "addr", ip);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_raw(&j, "\n");
}

/* ------------------------------------------------------------ others */

static void
cmd_ping(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	(void) cs;
	(void) nw;
	(void) w;
	snprintf(out, outlen, "ok \"pong\"\n");
}

static void
cmd_shutdown(ControlServer *cs, int nw, char **w, char *out, size_t outlen)
{
	(void) nw;
	(void) w;
	cs->stop = true;
	snprintf(out, outlen, "ok \"bye\"\n");
}

static const struct
{
	const char *name;
	CommandFn	fn;
}			commands[] = {
	{"ping", cmd_ping},
	{"fault", cmd_fault},
	{"faults", cmd_faults},
	{"heal", cmd_heal},
	{"link", cmd_link},
	{"links", cmd_links},
	{"node", cmd_node},
	{"nodes", cmd_nodes},
	{"stats", cmd_stats},
	{"shutdown", cmd_shutdown},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ------------------------------------------------------------ the socket */

static void
control_line(ControlServer *cs, Control *cl, char *line)
{
	char	   *out = cs->reply;
	char	   *w[64];
	int			nw = netd_split_words(line, w, 64);
	size_t		i;

	out[0] = '\0';
	if (nw == 0)
		return;
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(w[0], commands[i].name) == 0)
			break;
	if (nw == 64)
		snprintf(out, REPLY_MAX, "err too many words\n");
	else if (i < NCOMMANDS)
		commands[i].fn(cs, nw, w, out, REPLY_MAX);
	else
	{
		char		names[200] = "";

		for (size_t k = 0; k < NCOMMANDS; k++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
					 k ? ", " : "", commands[k].name);
		snprintf(out, REPLY_MAX, "err unknown command \"%.64s\" (%s)\n", w[0], names);
	}
	reply(cl->fd, out);
}

static void
control_close(ControlServer *cs, Control *cl)
{
	Control   **pp;

	epoll_ctl(cs->proxy->ep, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	for (pp = &cs->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl)
		{
			*pp = cl->next;
			break;
		}
	free(cl);
}

/* Read what a client sent and run every complete line, one after the other. */
static void
on_control(Handle *h, uint32_t events)
{
	ControlServer *cs = h->owner;
	Control    *cl = h->ptr;

	(void) events;
	for (;;)
	{
		ssize_t		r = recv(cl->fd, cl->line + cl->len, sizeof(cl->line) - 1 - cl->len, 0);
		char	   *nl;

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		{
			control_close(cs, cl);
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
			control_line(cs, cl, cl->line);
			memmove(cl->line, cl->line + used, cl->len - used);
			cl->len -= used;
			cl->line[cl->len] = '\0';
			if (cs->stop)
				return;
		}
		if (cl->len == sizeof(cl->line) - 1)
		{
			reply(cl->fd, "err line too long\n");
			control_close(cs, cl);
			return;
		}
	}
}

static void
on_control_accept(Handle *h, uint32_t events)
{
	ControlServer *cs = h->owner;

	(void) events;
	for (;;)
	{
		int			fd = accept4(cs->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		Control    *cl;

		if (fd < 0)
			return;
		cl = calloc(1, sizeof(*cl));
		if (cl == NULL)
			abort();
		cl->fd = fd;
		cl->h = (Handle) {.fn = on_control, .owner = cs, .ptr = cl};
		cl->next = cs->clients;
		cs->clients = cl;
		{
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cl->h};

			epoll_ctl(cs->proxy->ep, EPOLL_CTL_ADD, fd, &ev);
		}
	}
}

bool
control_open(ControlServer *cs, Proxy *p, const char *path, WalsimError *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t		old;

	cs->proxy = p;
	if (strlen(path) >= sizeof(sa.sun_path))
		return walsim_error_set(err, "--control %s: path too long (max %zu)", path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	snprintf(cs->path, sizeof(cs->path), "%s", path);
	unlink(path);
	cs->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cs->fd < 0)
		return walsim_error_set(err, "socket: %s", strerror(errno));
	old = umask(0177);			/* the socket is created 0600 */
	if (bind(cs->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		umask(old);
		return walsim_error_set(err, "--control %s: %s", path, strerror(errno));
	}
	umask(old);
	chmod(path, 0600);
	if (listen(cs->fd, 16) != 0)
		return walsim_error_set(err, "--control %s: listen: %s", path, strerror(errno));
	cs->h = (Handle) {.fn = on_control_accept, .owner = cs, .ptr = NULL};
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs->h};

		epoll_ctl(p->ep, EPOLL_CTL_ADD, cs->fd, &ev);
	}
	return true;
}

void
control_close_all(ControlServer *cs)
{
	while (cs->clients)
		control_close(cs, cs->clients);
	if (cs->fd >= 0)
	{
		close(cs->fd);
		unlink(cs->path);
		cs->fd = -1;
	}
}
