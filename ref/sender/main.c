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
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "sender.h"

#define PROGNAME "walsim-sender"
#define MAX_CHILDREN 1024

static volatile sig_atomic_t stop_requested = 0;

static void
handle_stop(int signo)
{
	(void) signo;
	stop_requested = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: " PROGNAME " -D WALDIR --listen HOST:PORT [OPTION]...\n"
			"Serve the WAL segments in WALDIR to PostgreSQL 15 standbys and pg_receivewal.\n\n"
			"  -D, --directory=WALDIR       segment files (and history files) to serve\n"
			"  -l, --listen=HOST:PORT       address to listen on (loopback in tests)\n"
			"      --auth=METHOD            trust, password, md5 or scram-sha-256 (default)\n"
			"      --passfile=FILE          accepted role:password lines (or .pgpass lines)\n"
			"      --password-file=FILE     same as --passfile\n"
			"      --wal-sender-timeout=T   close silent clients after T (default 60s; 0 = off;\n"
			"                               units ms, s, min; a bare number is milliseconds)\n"
			"      --follow                 serve WAL as the files grow (default)\n"
			"      --no-follow              serve only what is valid at startup\n"
			"      --poll-interval=MS       follow mode: how often to look for new WAL (default 10)\n"
			"      --system-id=N            report N instead of the segments' system identifier\n"
			"      --slots-file=FILE        physical slot state (default WALDIR/walsim-sender.slots)\n"
			"      --max-connections=N      refuse clients beyond N (default 100)\n"
			"      --json-events=FILE       append one JSON object per event to FILE\n"
			"      --misbehave=KIND[,KIND]  deliberate protocol faults (see docs/sender.md):\n"
			"                               wrong-sysid, lower-timeline, wrong-history-name,\n"
			"                               no-keepalive, no-copydone, single-commandcomplete,\n"
			"                               gap, unflushed, short-keepalive, bitflip, take-back\n"
			"  -h, --help                   show this help\n");
}

static const struct
{
	const char *name;
	Misbehave	bit;
}			misbehave_kinds[] =
{
	{"wrong-sysid", MIS_WRONG_SYSID},
	{"lower-timeline", MIS_LOWER_TIMELINE},
	{"wrong-history-name", MIS_WRONG_HISTORY_NAME},
	{"no-keepalive", MIS_NO_KEEPALIVE},
	{"no-copydone", MIS_NO_COPYDONE},
	{"single-commandcomplete", MIS_SINGLE_COMMANDCOMPLETE},
	{"gap", MIS_GAP},
	{"unflushed", MIS_UNFLUSHED},
	{"short-keepalive", MIS_SHORT_KEEPALIVE},
	{"bitflip", MIS_BITFLIP},
	{"take-back", MIS_TAKE_BACK},
};

#define N_MISBEHAVE (sizeof(misbehave_kinds) / sizeof(misbehave_kinds[0]))

bool
misbehave_parse(const char *text, unsigned *mask, WalsimError *err)
{
	const char *p = text;

	*mask = 0;
	while (*p)
	{
		size_t		len = strcspn(p, ",");
		size_t		i;

		for (i = 0; i < N_MISBEHAVE; i++)
			if (strlen(misbehave_kinds[i].name) == len && strncmp(p, misbehave_kinds[i].name, len) == 0)
				break;
		if (i == N_MISBEHAVE)
			return walsim_error_set(err, "--misbehave: unknown kind \"%.*s\" at offset %zu",
									(int) len, p, (size_t) (p - text));
		*mask |= misbehave_kinds[i].bit;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

void
misbehave_format(unsigned mask, char *buf, size_t buflen)
{
	size_t		pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_MISBEHAVE; i++)
		if ((mask & misbehave_kinds[i].bit) && pos < buflen)
			pos += (size_t) snprintf(buf + pos, buflen - pos, "%s%s", pos ? "," : "", misbehave_kinds[i].name);
}

/* "60s", "500ms", "1min", "0", "250" (milliseconds) -> milliseconds */
static bool
parse_duration_ms(const char *text, int *ms, WalsimError *err)
{
	char	   *end;
	long		v = strtol(text, &end, 10);
	long		mult;

	if (end == text || v < 0)
		return walsim_error_set(err, "--wal-sender-timeout \"%s\": expected a non-negative number with an optional unit", text);
	if (*end == '\0' || strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "min") == 0)
		mult = 60000;
	else
		return walsim_error_set(err, "--wal-sender-timeout \"%s\": unknown unit \"%s\" (ms, s, min)", text, end);
	if (v > 24L * 3600 * 1000 / mult)
		return walsim_error_set(err, "--wal-sender-timeout \"%s\": longer than a day", text);
	*ms = (int) (v * mult);
	return true;
}

static bool
parse_int(const char *opt, const char *text, long min, long max, long *out, WalsimError *err)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return walsim_error_set(err, "%s \"%s\": expected an integer from %ld to %ld", opt, text, min, max);
	*out = v;
	return true;
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
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
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

typedef struct Children
{
	int			n;
	pid_t		pids[MAX_CHILDREN];
} Children;

static void
reap(Children *ch)
{
	pid_t		pid;
	int			status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int i = 0; i < ch->n; i++)
			if (ch->pids[i] == pid)
			{
				ch->pids[i] = ch->pids[--ch->n];
				break;
			}
}

/* The connection's process: serve, clean up, exit. */
static void
run_child(SenderConfig *cfg, WalSource *src, int listen_fd, int fd,
		  const char *peer, uint64_t number, int over_limit)
{
	int			one = 1;
	WalsimError err;

	close(listen_fd);
	if (!walsource_after_fork(src, &err))
	{
		fprintf(stderr, PROGNAME ": connection from %s: %s\n", peer, err.message);
		close(fd);
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_serve(cfg, src, fd, peer, number, over_limit, &stop_requested);
	walsource_close(src);
	auth_config_free(&cfg->auth);
	events_close(&cfg->events);
	exit(0);
}

/* SIGTERM: pass it on, wait for the connections to finish their shutdown. */
static void
shutdown_children(Children *ch, int grace_ms)
{
	struct timespec t0,
				t;

	for (int i = 0; i < ch->n; i++)
		kill(ch->pids[i], SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ch->n > 0)
	{
		reap(ch);
		if (ch->n == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > grace_ms)
		{
			for (int i = 0; i < ch->n; i++)
				kill(ch->pids[i], SIGKILL);
		}
		usleep(20000);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"directory", required_argument, NULL, 'D'},
		{"listen", required_argument, NULL, 'l'},
		{"auth", required_argument, NULL, 1},
		{"passfile", required_argument, NULL, 2},
		{"password-file", required_argument, NULL, 2},
		{"wal-sender-timeout", required_argument, NULL, 3},
		{"follow", no_argument, NULL, 4},
		{"no-follow", no_argument, NULL, 5},
		{"system-id", required_argument, NULL, 6},
		{"json-events", required_argument, NULL, 7},
		{"misbehave", required_argument, NULL, 8},
		{"poll-interval", required_argument, NULL, 9},
		{"slots-file", required_argument, NULL, 10},
		{"max-connections", required_argument, NULL, 11},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	SenderConfig cfg = {0};
	WalSource	src;
	WalsimError err;
	const char *listen_addr = NULL;
	const char *passfile = NULL;
	const char *events_path = NULL;
	char		bound[300];
	int			listen_fd;
	int			opt;
	long		v;
	uint64_t	nconn = 0;
	Children   *children;
	struct sigaction sa = {0};
	char		endbuf[LSN_TEXT_MAX];

	cfg.auth.method = AUTH_SCRAM;
	cfg.wal_sender_timeout_ms = 60000;
	cfg.follow = true;
	cfg.poll_interval_ms = 10;
	cfg.max_connections = 100;
	while ((opt = getopt_long(argc, argv, "D:l:h", longopts, NULL)) != -1)
	{
		bool		ok = true;

		switch (opt)
		{
			case 'D':
				cfg.waldir = optarg;
				break;
			case 'l':
				listen_addr = optarg;
				break;
			case 1:
				ok = auth_method_parse(optarg, &cfg.auth.method, &err);
				break;
			case 2:
				passfile = optarg;
				break;
			case 3:
				ok = parse_duration_ms(optarg, &cfg.wal_sender_timeout_ms, &err);
				break;
			case 4:
				cfg.follow = true;
				break;
			case 5:
				cfg.follow = false;
				break;
			case 6:
				{
					char	   *end;

					errno = 0;
					cfg.sysid_override = strtoull(optarg, &end, 10);
					cfg.sysid_override_set = true;
					if (errno || end == optarg || *end || optarg[0] == '-')
						ok = walsim_error_set(&err, "--system-id \"%s\": expected a decimal 64-bit number", optarg);
					break;
				}
			case 7:
				events_path = optarg;
				break;
			case 8:
				ok = misbehave_parse(optarg, &cfg.misbehave, &err);
				break;
			case 9:
				ok = parse_int("--poll-interval", optarg, 1, 10000, &v, &err);
				cfg.poll_interval_ms = (int) v;
				break;
			case 10:
				snprintf(cfg.slots_file, sizeof(cfg.slots_file), "%s", optarg);
				break;
			case 11:
				ok = parse_int("--max-connections", optarg, 1, MAX_CHILDREN, &v, &err);
				cfg.max_connections = (int) v;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				fprintf(stderr, "Try \"" PROGNAME " --help\" for more information.\n");
				return 2;
		}
		if (!ok)
		{
			fprintf(stderr, PROGNAME ": %s\n", err.message);
			return 2;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, PROGNAME ": unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (cfg.waldir == NULL || listen_addr == NULL)
	{
		fprintf(stderr, PROGNAME ": -D WALDIR and --listen HOST:PORT are required\n");
		return 2;
	}
	if (passfile != NULL)
	{
		AuthMethod	m = cfg.auth.method;

		if (!auth_passfile_load(passfile, &cfg.auth, &err))
		{
			fprintf(stderr, PROGNAME ": %s\n", err.message);
			return 2;
		}
		cfg.auth.method = m;
	}
	else if (cfg.auth.method != AUTH_TRUST)
	{
		fprintf(stderr, PROGNAME ": --auth %s needs --passfile FILE with the accepted role:password\n",
				auth_method_name(cfg.auth.method));
		return 2;
	}
	if (cfg.slots_file[0] == '\0')
		snprintf(cfg.slots_file, sizeof(cfg.slots_file), "%s/walsim-sender.slots", cfg.waldir);
	if (!events_open(&cfg.events, events_path, &err))
	{
		fprintf(stderr, PROGNAME ": %s\n", err.message);
		return 2;
	}
	if (!walsource_open(&src, cfg.waldir, &err))
	{
		fprintf(stderr, PROGNAME ": %s\n", err.message);
		return 2;
	}
	listen_fd = open_listener(listen_addr, bound, sizeof(bound), &err);
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

	lsn_format(src.end, endbuf);
	{
		char		mis[256];
		char		tli[16];

		misbehave_format(cfg.misbehave, mis, sizeof(mis));
		snprintf(tli, sizeof(tli), "%u", src.tli);
		events_emit(&cfg.events, "listening", "address", bound, "#timeline", tli,
					"end_of_wal", endbuf, "misbehave", mis, NULL);
		fprintf(stderr, PROGNAME ": listening on %s, serving \"%s\" (timeline %s, end of valid WAL %s%s%s)\n",
				bound, cfg.waldir, tli, endbuf, mis[0] ? ", misbehaving: " : "", mis);
	}

	children = calloc(1, sizeof(Children));
	if (children == NULL)
		return 2;
	while (!stop_requested)
	{
		struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
		struct sockaddr_storage ss;
		socklen_t	sl = sizeof(ss);
		int			fd;
		pid_t		pid;
		char		peer[64];

		reap(children);
		if (poll(&pfd, 1, 200) <= 0)
		{
			/* keep the inherited view fresh so new connections start close to the end */
			if (cfg.follow)
				walsource_refresh(&src, NULL, NULL);
			continue;
		}
		fd = accept4(listen_fd, (struct sockaddr *) &ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		peer_name(&ss, sl, peer, sizeof(peer));
		nconn++;
		pid = fork();
		if (pid == 0)
			run_child(&cfg, &src, listen_fd, fd,
					  peer, nconn, children->n >= cfg.max_connections ? cfg.max_connections : 0);
		close(fd);
		if (pid < 0)
		{
			fprintf(stderr, PROGNAME ": could not fork for %s: %s\n", peer, strerror(errno));
			continue;
		}
		if (children->n < MAX_CHILDREN)
			children->pids[children->n++] = pid;
	}
	close(listen_fd);
	events_emit(&cfg.events, "shutdown", "address", bound, NULL);
	shutdown_children(children, (cfg.wal_sender_timeout_ms > 0 ? cfg.wal_sender_timeout_ms : 60000) + 5000);
	free(children);
	walsource_close(&src);
	auth_config_free(&cfg.auth);
	events_close(&cfg.events);
	return 0;
}
