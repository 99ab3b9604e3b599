/*
 * main.c — walsim-netd, the protocol-aware deterministic TCP fault proxy
 * for PostgreSQL replication (see docs/netd.md): the command line, then
 * either the proxy (loop.h) or replay mode (replay.h).
 *
 * The modules, each with its header, from the bottom up (a module includes
 * only those below it):
 *
 *   trace    the JSON Lines trace (on walsim/json.h of libwalsim)
 *   fault    rules: syntax (rules.c), matching, activation, expiry (fault.c)
 *   nodes    source nodes: which address is which node (nodes.c)
 *   pipe     the socket- and clock-free fault core: protocol tracking,
 *            decisions, output queue, mover (track.c plan.c queue.c pipe.c)
 *   link     listeners and connections' socket I/O (link.c slot.c)
 *   control  the control protocol           replay   --replay-input
 *   loop     the epoll loop                 main     this file
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/parse.h"
#include "loop.h"
#include "replay.h"

static const char *const progname = "walsim-netd";

static volatile sig_atomic_t got_signal = 0;

typedef struct Options
{
	const char *control;
	const char *trace;
	uint64_t	seed;
	bool		tls_pass;
	char	   *links[MAX_LINKS];
	int			nlinks;
	char	   *faults[NETD_MAX_FAULTS];
	int			nfaults;
	char	   *nodes[NETD_MAX_NODE_ADDRS];	/* NAME=ADDRESS */
	int			nnodes;
	ReplayOptions replay;		/* replay.input NULL = proxy mode */
} Options;

static void
on_signal(int sig)
{
	got_signal = sig;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: %s --control PATH [--seed N] [--trace FILE] [--link NAME=LISTEN,UPSTREAM[,raw]]...\n"
			"       [--node NAME=ADDRESS]... [--fault 'id=.. link=.. kind=.. ...']... [--tls pass|refuse]\n"
			"       %s --replay-input PREFIX [--replay-output PREFIX] [--replay-link NAME]\n"
			"       [--replay-chunk N] [--seed N] [--trace FILE] [--fault '...']...\n"
			"\n"
			"Protocol-aware deterministic TCP fault proxy for PostgreSQL replication.\n"
			"Control commands (one per line on the UNIX socket): ping, links, stats,\n"
			"link add|del, node add|del, nodes, fault add|del|list, heal.  See docs/netd.md.\n",
			progname, progname);
}

/* One option with its argument; false after saying what is wrong. */
static bool
take_option(Options *o, int opt, char *arg)
{
	switch (opt)
	{
		case 'c':
			o->control = arg;
			return true;
		case 's':
			if (!parse_u64_hex_ok("--seed", arg, &o->seed, NULL))
				return fprintf(stderr, "%s: --seed %s: not an unsigned integer\n", progname, arg), false;
			return true;
		case 't':
			o->trace = arg;
			return true;
		case 'l':
			if (o->nlinks == MAX_LINKS)
				return fprintf(stderr, "%s: too many --link (max %d)\n", progname, MAX_LINKS), false;
			o->links[o->nlinks++] = arg;
			return true;
		case 'n':
			if (o->nnodes == NETD_MAX_NODE_ADDRS)
				return fprintf(stderr, "%s: too many --node (max %d)\n", progname, NETD_MAX_NODE_ADDRS), false;
			if (strchr(arg, '=') == NULL)
				return fprintf(stderr, "%s: --node %s: expected NAME=ADDRESS\n", progname, arg), false;
			o->nodes[o->nnodes++] = arg;
			return true;
		case 'f':
			if (o->nfaults == NETD_MAX_FAULTS)
				return fprintf(stderr, "%s: too many --fault\n", progname), false;
			o->faults[o->nfaults++] = arg;
			return true;
		case 'T':
			if (strcmp(arg, "pass") == 0)
				o->tls_pass = true;
			else if (strcmp(arg, "refuse") != 0)
				return fprintf(stderr, "%s: --tls %s: expected pass or refuse\n", progname, arg), false;
			return true;
		case 'R':
			o->replay.input = arg;
			return true;
		case 'O':
			o->replay.output = arg;
			return true;
		case 'L':
			o->replay.link = arg;
			return true;
		case 'C':
			if (!parse_u64("--replay-chunk", arg, 1, UINT64_MAX, &o->replay.chunk, NULL))
				return fprintf(stderr, "%s: --replay-chunk %s: expected a positive integer\n",
							   progname, arg), false;
			return true;
	}
	usage(stderr);
	return false;
}

/* Parse the command line; returns -1 to go on, else the exit status. */
static int
parse_options(int argc, char **argv, Options *o)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"trace", required_argument, NULL, 't'},
		{"link", required_argument, NULL, 'l'},
		{"fault", required_argument, NULL, 'f'},
		{"node", required_argument, NULL, 'n'},
		{"tls", required_argument, NULL, 'T'},
		{"replay-input", required_argument, NULL, 'R'},
		{"replay-output", required_argument, NULL, 'O'},
		{"replay-link", required_argument, NULL, 'L'},
		{"replay-chunk", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			opt;

	memset(o, 0, sizeof(*o));
	o->replay.link = "replay";
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		if (opt == 'h')
		{
			usage(stdout);
			return 0;
		}
		if (!take_option(o, opt, optarg))
			return 2;
	}
	if (optind < argc)
	{
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", progname, argv[optind]);
		return 2;
	}
	if (o->replay.input && o->nnodes > 0)
	{
		fprintf(stderr, "%s: --node applies to the proxy: a replayed stream has no source address\n",
				progname);
		return 2;
	}
	if (!o->replay.input && !o->control)
	{
		fprintf(stderr, "%s: --control PATH is required (or --replay-input)\n", progname);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* The --fault rules into the rule set; false after saying which is wrong. */
static bool
install_faults(FaultSet *fs, const Options *o)
{
	for (int i = 0; i < o->nfaults; i++)
	{
		char		copy[4096];	/* as a control line */
		char	   *w[64];
		int			nw;
		WalsimError err;

		if (strlen(o->faults[i]) >= sizeof(copy))
		{
			fprintf(stderr, "%s: --fault: rule longer than %zu bytes\n", progname, sizeof(copy) - 1);
			return false;
		}
		snprintf(copy, sizeof(copy), "%s", o->faults[i]);
		nw = netd_split_words(copy, w, 64);
		if (!fault_parse(&fs->faults[fs->nfaults], nw, w, &err))
		{
			fprintf(stderr, "%s: --fault \"%s\": %s\n", progname, o->faults[i], err.message);
			return false;
		}
		fs->nfaults++;
	}
	return true;
}

static int
run_replay(Netd *n, const Options *o)
{
	FaultSet   *fs = &n->proxy.fs;

	for (int i = 0; i < fs->nfaults; i++)
		if (strcmp(fs->faults[i].link, o->replay.link) != 0)
		{
			fprintf(stderr, "%s: --fault %s: link=%s is not the replay link \"%s\"\n", progname,
					fs->faults[i].id, fs->faults[i].link, o->replay.link);
			return 2;
		}
	return replay_run(fs, &o->replay, progname);
}

static int
run_proxy(Netd *n, const Options *o)
{
	Proxy	   *p = &n->proxy;
	WalsimError err;

	signal(SIGPIPE, SIG_IGN);
	{
		struct sigaction sa = {.sa_handler = on_signal};

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	if (!netd_open(n, &err))
	{
		fprintf(stderr, "%s: %s\n", progname, err.message);
		return 2;
	}
	for (int i = 0; i < o->nnodes; i++)
	{
		char		copy[256];
		char	   *eq;
		int			renamed;

		snprintf(copy, sizeof(copy), "%s", o->nodes[i]);
		eq = strchr(copy, '=');
		*eq = '\0';
		if (!proxy_node_add(p, copy, eq + 1, &renamed, &err))
		{
			fprintf(stderr, "%s: --node %s: %s\n", progname, o->nodes[i], err.message);
			return 2;
		}
	}
	for (int i = 0; i < o->nlinks; i++)
		if (!proxy_link_add_spec(p, o->links[i], &err))
		{
			fprintf(stderr, "%s: %s\n", progname, err.message);
			return 2;
		}
	for (int i = 0; i < p->fs.nfaults; i++)
	{
		Fault	   *f = &p->fs.faults[i];

		if (!proxy_check_fault(p, f, &err))
		{
			fprintf(stderr, "%s: --fault %s: %s\n", progname, f->id, err.message);
			return 2;
		}
		if (f->trig == TRIG_NOW)
			f->activated_ns = proxy_now_ns();
	}
	if (!control_open(&n->control, p, o->control, &err))
	{
		fprintf(stderr, "%s: %s\n", progname, err.message);
		return 2;
	}
	fprintf(stderr, "%s: seed %" PRIu64 ", control %s\n", progname, p->fs.seed, o->control);
	netd_run(n, &got_signal);
	netd_close(n);
	return 0;
}

int
main(int argc, char **argv)
{
	static Netd n;				/* large (reply buffer, links): not on the stack */
	Options		o;
	int			rc;

	netd_init(&n, progname);
	rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	n.proxy.fs.seed = o.seed;
	n.proxy.trace.seed = o.seed;
	n.proxy.default_tls_pass = o.tls_pass;
	if (o.trace)
	{
		n.proxy.trace.f = fopen(o.trace, "w");
		if (n.proxy.trace.f == NULL)
		{
			fprintf(stderr, "%s: --trace %s: %s\n", progname, o.trace, strerror(errno));
			return 2;
		}
	}
	if (!install_faults(&n.proxy.fs, &o))
		return 2;
	{
		char		buf[256];
		JsonBuf		j;

		trace_begin(&n.proxy.trace, &j, buf, sizeof(buf), o.replay.input ? 0 : proxy_now_ns(), "start");
		json_str(&j, "mode", o.replay.input ? "replay" : "proxy");
		trace_end(&n.proxy.trace, &j);
	}
	rc = o.replay.input ? run_replay(&n, &o) : run_proxy(&n, &o);
	if (n.proxy.trace.f)
		fclose(n.proxy.trace.f);
	return rc;
}
