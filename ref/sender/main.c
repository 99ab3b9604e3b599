/*
 * main.c — walsim-sender: serve a directory of WAL segment files to
 * PostgreSQL replication clients (standbys, pg_receivewal) as a PostgreSQL
 * 15 primary's walsender would.
 *
 * Process model: like the postmaster, one listening process that forks a
 * process per connection.  Each connection is then a plain sequential
 * conversation with its own deadlines; a crash or a leak in one connection
 * cannot touch the others or the listener; the listener holds no client
 * state, so 50 clients coming and going cost it nothing but a fork each.
 * The price is that connections share nothing in memory: slots live in a
 * locked state file (slots.h), and each connection follows the directory
 * on its own (a few stat/pread calls per poll interval).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "conn.h"
#include "exec.h"
#include "options.h"
#include "session.h"

#define PROGNAME "walsim-sender"
#define LISTEN_BACKLOG		128
#define ACCEPT_POLL_MS		200		/* also how often the listener refreshes its view */
#define SHUTDOWN_GRACE_MS	5000	/* beyond wal_sender_timeout for children to finish */

static volatile sig_atomic_t stop_requested = 0;

static void
handle_stop(int signo)
{
	(void) signo;
	stop_requested = 1;
}

static int
open_listener(const char *hostport, char *bound, size_t boundlen, WalsimError *err)
{
	char		host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = {0},
			   *res,
			   *ai;
	int			rc;
	int			fd = -1;

	if (colon == NULL || colon == hostport || colon[1] == '\0' || (size_t) (colon - hostport) >= sizeof(host))
	{
		walsim_error_set(err, "--listen \"%s\": expected HOST:PORT", hostport);
		return -1;
	}
	memcpy(host, hostport, (size_t) (colon - hostport));
	host[colon - hostport] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']')
	{
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
	{
		walsim_error_set(err, "--listen \"%s\": %s", hostport, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
	{
		int			one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		walsim_error_set(err, "--listen \"%s\": %s", hostport, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
	{
		struct sockaddr_storage ss;
		socklen_t	sl = sizeof(ss);
		char		h[NI_MAXHOST],
					p[NI_MAXSERV];

		getsockname(fd, (struct sockaddr *) &ss, &sl);
		getnameinfo((struct sockaddr *) &ss, sl, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(bound, boundlen, "%.200s:%.20s", h, p);
	}
	return fd;
}

static void
peer_name(const struct sockaddr_storage *ss, socklen_t sl, char *buf, size_t len)
{
	char		h[NI_MAXHOST],
				p[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *) ss, sl, h, sizeof(h), p, sizeof(p),
					NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%.45s:%.10s", h, p);
}

/*
 * The connection processes by place: pids[i] is 0 when place i is free.  A
 * place is the process's index in SenderShared.authed.
 */
typedef struct Children
{
	int			n;
	pid_t		pids[SENDER_MAX_PLACES];
} Children;

/* Give back the --max-connections place of a process that has exited. */
static void
release_place(SenderShared *sh, int place)
{
	if (atomic_exchange(&sh->authed[place], 0))
	{
		int			cur = atomic_load(&sh->authenticated);

		while (cur > 0 && !atomic_compare_exchange_weak(&sh->authenticated, &cur, cur - 1))
			;
	}
}

static void
reap(Children *ch, SenderShared *sh)
{
	pid_t		pid;
	int			status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int i = 0; i < SENDER_MAX_PLACES; i++)
			if (ch->pids[i] == pid)
			{
				ch->pids[i] = 0;
				ch->n--;
				release_place(sh, i);
				break;
			}
}

static int
free_place(const Children *ch)
{
	for (int i = 0; i < SENDER_MAX_PLACES; i++)
		if (ch->pids[i] == 0)
			return i;
	return -1;
}

/*
 * The connection's process: startup and authentication, then replication
 * commands until the client is gone or a stop was requested; clean up, exit.
 */
static void
run_child(SenderConfig *cfg, WalSource *src, int listen_fd, int fd,
		  const char *peer, uint64_t number, int place)
{
	int			one = 1;
	WalsimError err;
	Conn	   *c;

	close(listen_fd);
	if (!walsource_after_fork(src, &err))
	{
		fprintf(stderr, PROGNAME ": connection from %s: %s\n", peer, err.message);
		close(fd);
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_open(cfg, src, fd, peer, number, place, &stop_requested);
	if (c != NULL)
	{
		if (session_establish(c))
			exec_command_loop(c);
		conn_close(c);
	}
	walsource_close(src);
	auth_config_free(&cfg->auth);
	events_close(&cfg->events);
	exit(0);
}

/* SIGTERM: pass it on, wait for the connections to finish their shutdown. */
static void
shutdown_children(Children *ch, SenderShared *sh, int grace_ms)
{
	struct timespec t0,
				t;

	for (int i = 0; i < SENDER_MAX_PLACES; i++)
		if (ch->pids[i])
			kill(ch->pids[i], SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ch->n > 0)
	{
		reap(ch, sh);
		if (ch->n == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > grace_ms)
		{
			for (int i = 0; i < SENDER_MAX_PLACES; i++)
				if (ch->pids[i])
					kill(ch->pids[i], SIGKILL);
		}
		usleep(20000);
	}
}


/*
 * The configuration both the listener and the connections use, from the
 * options: load the password file, name the slot file, open the event log.
 */
static bool
configure(const SenderOptions *opt, SenderConfig *cfg, WalsimError *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->waldir = opt->waldir;
	cfg->wal_sender_timeout_ms = opt->wal_sender_timeout_ms;
	cfg->follow = opt->follow;
	cfg->poll_interval_ms = opt->poll_interval_ms;
	cfg->sysid_override_set = opt->sysid_override_set;
	cfg->sysid_override = opt->sysid_override;
	cfg->misbehave = opt->misbehave;
	cfg->max_connections = opt->max_connections;
	cfg->max_startup_connections = opt->max_startup_connections;
	cfg->authentication_timeout_ms = opt->authentication_timeout_ms;
	cfg->shared = mmap(NULL, sizeof(SenderShared), PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cfg->shared == MAP_FAILED)
	{
		cfg->shared = NULL;
		return walsim_error_set(err, "mmap of the shared connection table: %s", strerror(errno));
	}
	cfg->events.fd = -1;
	/* the passfile's lines name roles; the method is the command line's */
	if (opt->passfile != NULL && !auth_passfile_load(opt->passfile, &cfg->auth, err))
		return false;
	cfg->auth.method = opt->auth_method;
	if (opt->slots_file != NULL)
		snprintf(cfg->slots_file, sizeof(cfg->slots_file), "%s", opt->slots_file);
	else
		snprintf(cfg->slots_file, sizeof(cfg->slots_file), "%s/walsim-sender.slots", cfg->waldir);
	return events_open(&cfg->events, opt->json_events, err);
}

/* The "listening" event and the start-up line on stderr. */
static void
announce(const SenderConfig *cfg, const WalSource *src, const char *bound)
{
	char		endbuf[LSN_TEXT_MAX];
	char		mis[256];
	EventLine	ev;

	lsn_format(src->end, endbuf);
	misbehave_format(cfg->misbehave, mis, sizeof(mis));
	if (events_begin(&cfg->events, &ev, "listening"))
	{
		json_str(&ev.j, "address", bound);
		json_u64(&ev.j, "timeline", src->tli);
		json_i64(&ev.j, "pg_major", src->version->major);
		json_str(&ev.j, "end_of_wal", endbuf);
		json_str(&ev.j, "misbehave", mis);
		events_end(&cfg->events, &ev);
	}
	fprintf(stderr, PROGNAME ": listening on %s, serving \"%s\" (PostgreSQL %d WAL, timeline %u, end of valid WAL %s%s%s)\n",
			bound, cfg->waldir, src->version->major, src->tli, endbuf, mis[0] ? ", misbehaving: " : "", mis);
}

/*
 * A connection beyond --max-startup-connections unauthenticated ones is
 * closed at once, without a process: a flood of clients that never finish
 * their startup costs the listener nothing and cannot take the places of
 * real standbys (those count only once authenticated, see SenderShared).
 */
static void
turn_away(SenderConfig *cfg, int fd, const char *peer, int waiting)
{
	EventLine	ev;

	if (events_begin(&cfg->events, &ev, "connection_refused"))
	{
		json_str(&ev.j, "peer", peer);
		json_str(&ev.j, "reason", "too many connections not yet authenticated");
		json_i64(&ev.j, "unauthenticated", waiting);
		events_end(&cfg->events, &ev);
	}
	close(fd);
}

/*
 * Accept connections until a stop is requested, one process each.  Beyond
 * --max-connections authenticated ones a connection is refused with
 * PostgreSQL's error once it has authenticated (session.c).
 */
static void
serve(SenderConfig *cfg, WalSource *src, int listen_fd, Children *children)
{
	uint64_t	nconn = 0;

	while (!stop_requested)
	{
		struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
		struct sockaddr_storage ss;
		socklen_t	sl = sizeof(ss);
		int			fd;
		pid_t		pid;
		char		peer[64];

		int			place;
		int			waiting;

		reap(children, cfg->shared);
		if (poll(&pfd, 1, ACCEPT_POLL_MS) <= 0)
		{
			/* keep the inherited view fresh so new connections start close to the end */
			if (cfg->follow)
				walsource_refresh(src, NULL, NULL);
			continue;
		}
		fd = accept4(listen_fd, (struct sockaddr *) &ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		peer_name(&ss, sl, peer, sizeof(peer));
		waiting = children->n - atomic_load(&cfg->shared->authenticated);
		place = free_place(children);
		if (waiting >= cfg->max_startup_connections || place < 0)
		{
			turn_away(cfg, fd, peer, waiting);
			continue;
		}
		nconn++;
		atomic_store(&cfg->shared->authed[place], 0);
		pid = fork();
		if (pid == 0)
			run_child(cfg, src, listen_fd, fd, peer, nconn, place);
		close(fd);
		if (pid < 0)
		{
			fprintf(stderr, PROGNAME ": could not fork for %s: %s\n", peer, strerror(errno));
			continue;
		}
		children->pids[place] = pid;
		children->n++;
	}
}

int
main(int argc, char **argv)
{
	SenderOptions opt;
	SenderConfig cfg;
	WalSource	src;
	WalsimError err;
	char		bound[300];
	int			listen_fd;
	Children   *children;
	struct sigaction sa = {0};
	EventLine	ev;

	switch (sender_options_parse(argc, argv, &opt, &err))
	{
		case OPTIONS_OK:
			break;
		case OPTIONS_EXIT_OK:
			return 0;
		case OPTIONS_USAGE:
			fprintf(stderr, "Try \"" PROGNAME " --help\" for more information.\n");
			return 2;
		case OPTIONS_ERROR:
			fprintf(stderr, PROGNAME ": %s\n", err.message);
			return 2;
	}
	if (!configure(&opt, &cfg, &err) || !walsource_open(&src, cfg.waldir, &err))
	{
		fprintf(stderr, PROGNAME ": %s\n", err.message);
		return 2;
	}
	listen_fd = open_listener(opt.listen, bound, sizeof(bound), &err);
	if (listen_fd < 0)
	{
		fprintf(stderr, PROGNAME ": %s\n", err.message);
		walsource_close(&src);
		return 2;
	}

	sa.sa_handler = handle_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	announce(&cfg, &src, bound);

	children = calloc(1, sizeof(Children));
	if (children == NULL)
		return 2;
	serve(&cfg, &src, listen_fd, children);
	close(listen_fd);
	if (events_begin(&cfg.events, &ev, "shutdown"))
	{
		json_str(&ev.j, "address", bound);
		events_end(&cfg.events, &ev);
	}
	shutdown_children(children, cfg.shared, (cfg.wal_sender_timeout_ms > 0 ? cfg.wal_sender_timeout_ms :
								 DEFAULT_WAL_SENDER_TIMEOUT_MS) + SHUTDOWN_GRACE_MS);
	free(children);
	walsource_close(&src);
	auth_config_free(&cfg.auth);
	events_close(&cfg.events);
	return 0;
}
