/*
 * walsim-sampler — the observer's sampler: every node of a run sampled on
 * shared ticks, written as samples.jsonl lines on standard output.
 *
 * Round r is due at the tick t0 + r * interval.  At the tick the round's
 * prepared query is sent to every node at once (libpq's non-blocking
 * interface, one connection per node) and the answers are written as they
 * come: the samples of one round are one cluster-wide moment as nearly as
 * the machine allows, and a frozen or dead node never holds up the others
 * (a node still answering an earlier round misses the rounds in between; a
 * node that cannot be reached gives an "up": false line when it is first
 * missed and then once per detail round, and is reconnected in the
 * background).  Every detail_every-th round sends the detail statement,
 * the others the positions statement; both texts come from the observer
 * (tools/walsim/run/observer.py), which owns what is sampled.
 *
 * The observer used to do this in Python; this program exists because the
 * rounds cost: at a 10 ms tick, three nodes are 300 queries a second, and
 * the Python loop alone cost more than the 5 % of a core the whole observer
 * may use (docs/benchmarks.md).
 *
 * Standard input carries what must not be on the command line (connection
 * strings hold passwords) and the start:
 *
 *   conninfo NAME CONNINFO   where node NAME is (again, when it moved)
 *   start                    connect to every node (at most
 *                            --start-timeout), write "ready", begin rounds
 *
 * End of input ends the program (the observer stopped, or died: a sampler
 * never outlives it).  Exit status 0; 1 when standard output fails; 2 for
 * bad arguments or input.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "line.h"
#include "node.h"
#include "walsim/json.h"
#include "walsim/parse.h"

#define MAX_NODES		64
#define INPUT_MAX		65536
#define OUT_BUF			(256 * 1024)
#define MAX_COLUMNS		64		/* of a sample's row (the observer's have 8 to 10) */

/*
 * After a round is sent, answers are collected this long after the tick
 * (and whenever later), not as each one arrives: one wake-up for all of a
 * round's answers instead of one each.  A sample's time is the server's
 * clock, which this does not move; only the bracket a clock is trusted in
 * (line.h) widens by as much, well inside its tolerance.
 */
#define COLLECT_DELAY	0.0005	/* s */

typedef struct SamplerOptions
{
	const char *nodes[MAX_NODES];
	int			nnodes;
	double		interval;		/* s */
	uint32_t	detail_every;
	double		start_mono;
	double		start_wall;
	const char *positions_sql;
	const char *detail_sql;
	double		connect_timeout;	/* s, per attempt */
	double		start_timeout;	/* s, for the first connections */
} SamplerOptions;

typedef struct Sampler
{
	SamplerOptions opt;
	SampleAxis	axis;
	SampleStatements stmts;
	SamplerNode nodes[MAX_NODES];
	bool		start_requested;
	double		start_deadline;
	bool		running;
	int64_t		round;			/* the next round to send */
	double		collect_at;		/* the answers of the round sent last: not before (monotonic s) */
	JsonBuf		out;
	char		outbuf[OUT_BUF];
	char		input[INPUT_MAX];
	size_t		input_len;
	bool		input_open;
} Sampler;

static const char *const statement_names[] = {"walsim_positions", "walsim_sample"};

static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"walsim-sampler samples PostgreSQL nodes on shared ticks (the observer's sampler).\n"
			"\n"
			"Usage:\n"
			"  walsim-sampler --node NAME [--node NAME ...] --interval S --start-mono S\n"
			"                 --start-wall S --positions-sql SQL --detail-sql SQL [OPTION...]\n"
			"\n"
			"Options:\n"
			"  --node NAME             a node to sample (repeated; at most %d)\n"
			"  --interval S            seconds between two rounds' ticks (at least 0.001)\n"
			"  --detail-every N        every Nth round sends the detail statement (default 1)\n"
			"  --start-mono S          the run's start, CLOCK_MONOTONIC seconds (the origin of \"t\")\n"
			"  --start-wall S          the same moment in Unix time (the origin of \"server_t\")\n"
			"  --positions-sql SQL     the statement of the other rounds: one row, the server's\n"
			"                          Unix time first, then one column per member\n"
			"  --detail-sql SQL        the statement of the detail rounds, the same shape\n"
			"  --connect-timeout S     one connection attempt, prepare included (default 1)\n"
			"  --start-timeout S       the first connections, at most (default 2)\n"
			"  --help                  show this help and exit\n"
			"\n"
			"Standard input: \"conninfo NAME CONNINFO\" lines, then \"start\"; its end stops\n"
			"the sampler.  Standard output: \"ready\", then one samples.jsonl line per sample.\n"
			"Exit status: 0 input ended, 1 output failed, 2 bad arguments or input.\n",
			MAX_NODES);
}

static bool
parse_seconds(const char *what, const char *text, double min, double *out)
{
	WalsimError err;

	if (!parse_double(what, text, min, 1e12, out, &err))
	{
		fprintf(stderr, "walsim-sampler: %s\n", err.message);
		return false;
	}
	return true;
}

/* Parse the command line; false (after a message) when it is wrong. */
static bool
parse_options(int argc, char **argv, SamplerOptions *opt)
{
	static const struct option longopts[] = {
		{"node", required_argument, NULL, 'n'},
		{"interval", required_argument, NULL, 'i'},
		{"detail-every", required_argument, NULL, 'd'},
		{"start-mono", required_argument, NULL, 'm'},
		{"start-wall", required_argument, NULL, 'w'},
		{"positions-sql", required_argument, NULL, 'p'},
		{"detail-sql", required_argument, NULL, 'D'},
		{"connect-timeout", required_argument, NULL, 'c'},
		{"start-timeout", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	bool		have_mono = false,
				have_wall = false;
	int			c;
	WalsimError err;

	memset(opt, 0, sizeof(*opt));
	opt->detail_every = 1;
	opt->connect_timeout = 1.0;
	opt->start_timeout = 2.0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'n':
				if (opt->nnodes == MAX_NODES)
				{
					fprintf(stderr, "walsim-sampler: more than %d --node\n", MAX_NODES);
					return false;
				}
				if (optarg[0] == '\0' || strlen(optarg) >= NODE_NAME_MAX || strpbrk(optarg, " \t\n"))
				{
					fprintf(stderr, "walsim-sampler: --node \"%s\": a name of 1 to %d characters "
							"without blanks\n", optarg, NODE_NAME_MAX - 1);
					return false;
				}
				opt->nodes[opt->nnodes++] = optarg;
				break;
			case 'i':
				if (!parse_seconds("--interval", optarg, 0.001, &opt->interval))
					return false;
				break;
			case 'd':
				if (!parse_u32("--detail-every", optarg, 1, 1000000, &opt->detail_every, &err))
				{
					fprintf(stderr, "walsim-sampler: %s\n", err.message);
					return false;
				}
				break;
			case 'm':
				if (!parse_seconds("--start-mono", optarg, 0, &opt->start_mono))
					return false;
				have_mono = true;
				break;
			case 'w':
				if (!parse_seconds("--start-wall", optarg, 0, &opt->start_wall))
					return false;
				have_wall = true;
				break;
			case 'p':
				opt->positions_sql = optarg;
				break;
			case 'D':
				opt->detail_sql = optarg;
				break;
			case 'c':
				if (!parse_seconds("--connect-timeout", optarg, 0.001, &opt->connect_timeout))
					return false;
				break;
			case 's':
				if (!parse_seconds("--start-timeout", optarg, 0, &opt->start_timeout))
					return false;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			default:
				fprintf(stderr, "Try \"walsim-sampler --help\" for more information.\n");
				return false;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "walsim-sampler: unexpected argument \"%s\"\n", argv[optind]);
		return false;
	}
	if (opt->nnodes == 0 || opt->interval == 0 || !have_mono || !have_wall ||
		opt->positions_sql == NULL || opt->detail_sql == NULL)
	{
		fprintf(stderr, "walsim-sampler: --node, --interval, --start-mono, --start-wall, "
				"--positions-sql and --detail-sql are required\n");
		return false;
	}
	return true;
}

static SamplerNode *
find_node(Sampler *s, const char *name)
{
	for (int i = 0; i < s->opt.nnodes; i++)
		if (strcmp(s->nodes[i].name, name) == 0)
			return &s->nodes[i];
	return NULL;
}

/* One line of standard input; false (after a message) when it is not understood. */
static bool
handle_input_line(Sampler *s, char *line)
{
	if (strcmp(line, "start") == 0)
	{
		double		now = clock_s(CLOCK_MONOTONIC);

		if (!s->start_requested)
		{
			s->start_requested = true;
			s->start_deadline = now + s->opt.start_timeout;
			for (int i = 0; i < s->opt.nnodes; i++)
				(void) node_connect(&s->nodes[i], now);
		}
		return true;
	}
	if (strncmp(line, "conninfo ", 9) == 0)
	{
		char	   *name = line + 9;
		char	   *sp = strchr(name, ' ');
		SamplerNode *node;

		if (sp != NULL)
		{
			*sp = '\0';
			node = find_node(s, name);
			if (node != NULL)
			{
				node_set_conninfo(node, sp + 1);
				return true;
			}
			fprintf(stderr, "walsim-sampler: standard input: conninfo for \"%s\", "
					"which is not a --node\n", name);
			return false;
		}
	}
	fprintf(stderr, "walsim-sampler: standard input: unknown line \"%.80s\"\n", line);
	return false;
}

/* Read what standard input has; false when a line was not understood. */
static bool
read_input(Sampler *s)
{
	for (;;)
	{
		ssize_t		n = read(STDIN_FILENO, s->input + s->input_len,
							 sizeof(s->input) - 1 - s->input_len);
		char	   *p,
				   *nl;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
		{
			s->input_open = false;
			return true;
		}
		s->input_len += n;
		s->input[s->input_len] = '\0';
		p = s->input;
		while ((nl = strchr(p, '\n')) != NULL)
		{
			*nl = '\0';
			if (!handle_input_line(s, p))
				return false;
			p = nl + 1;
		}
		s->input_len -= p - s->input;
		memmove(s->input, p, s->input_len);
		if (s->input_len == sizeof(s->input) - 1)
		{
			fprintf(stderr, "walsim-sampler: standard input: a line longer than %d bytes\n",
					INPUT_MAX - 1);
			return false;
		}
	}
}

static double
round_due(const Sampler *s, int64_t r)
{
	return s->axis.t0_mono + (double) r * s->opt.interval;
}

/* The next round after r that is not already past (missed rounds are skipped). */
static int64_t
next_round(const Sampler *s, int64_t r)
{
	int64_t		now_round = (int64_t) floor((clock_s(CLOCK_MONOTONIC) - s->axis.t0_mono) /
											s->opt.interval);

	return now_round + 1 > r + 1 ? now_round + 1 : r + 1;
}

static void
write_down(Sampler *s, SamplerNode *node, int64_t r)
{
	line_down(&s->out, &s->axis, clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_REALTIME),
			  node->name, r, node->error[0] ? node->error : "not connected yet");
	node->error_recorded = true;
}

static void
send_round(Sampler *s, int64_t r)
{
	bool		detail = r % s->opt.detail_every == 0;
	const char *name = statement_names[detail ? 1 : 0];
	double		now = clock_s(CLOCK_MONOTONIC);

	for (int i = 0; i < s->opt.nnodes; i++)
	{
		SamplerNode *node = &s->nodes[i];

		switch (node->state)
		{
			case NODE_IDLE:
			case NODE_CONNECTING:
			case NODE_PREPARING:
				/* unreachable: a line when it starts, then one per detail round */
				if (detail || !node->error_recorded)
					write_down(s, node, r);
				(void) node_connect(node, now);
				break;
			case NODE_BUSY:
				break;			/* still answering an earlier round: no sample in this one */
			case NODE_READY:
				if (!node_send(node, name, r, clock_s(CLOCK_REALTIME)))
				{
					write_down(s, node, r);
					(void) node_connect(node, now);
				}
				break;
		}
	}
}

/* A node answered its round's query: its line. */
static void
write_answer(Sampler *s, SamplerNode *node)
{
	double		received_wall = clock_s(CLOCK_REALTIME);
	const char *clock_text = PQgetvalue(node->result, 0, 0);
	char	   *end;
	double		server_wall = strtod(clock_text, &end);
	double		server_t,
				offset;
	bool		moved;
	SampleColumn cols[MAX_COLUMNS];
	int			ncols;

	if (end == clock_text || *end != '\0')
	{
		snprintf(node->error, sizeof(node->error),
				 "the sample query's clock is not a number: \"%.40s\"", clock_text);
		node_drop(node, NULL);
		write_down(s, node, node->busy_round);
		return;
	}
	ncols = PQnfields(node->result) - 1;
	if (ncols > MAX_COLUMNS)
		ncols = MAX_COLUMNS;
	for (int i = 0; i < ncols; i++)
	{
		cols[i].name = PQfname(node->result, i + 1);
		cols[i].type = PQftype(node->result, i + 1);
		cols[i].value = PQgetisnull(node->result, 0, i + 1) ? NULL : PQgetvalue(node->result, 0, i + 1);
	}
	moved = sample_server_time(&s->axis, server_wall, node->sent_wall, received_wall,
							   &server_t, &offset);
	line_up(&s->out, &s->axis, clock_s(CLOCK_MONOTONIC), received_wall, node->name,
			node->busy_round, server_t, moved ? &offset : NULL,
			sample_late(&s->axis, node->busy_round, server_t), cols, ncols);
	node_done(node);
}

/* Advance one node after its descriptor was ready or its deadline passed. */
static void
advance(Sampler *s, SamplerNode *node, double now)
{
	bool		was_busy = node->state == NODE_BUSY;

	switch (node_advance(node, &s->stmts, now, s->opt.connect_timeout))
	{
		case NODE_ANSWERED:
			write_answer(s, node);
			break;
		case NODE_FAILED:
			if (was_busy && s->running)
			{
				/* the round it was answering gets the failure, then reconnect at once */
				write_down(s, node, node->busy_round);
				(void) node_connect(node, now);
			}
			break;
		default:
			break;
	}
}

static bool
any_busy(const Sampler *s)
{
	for (int i = 0; i < s->opt.nnodes; i++)
		if (s->nodes[i].state == NODE_BUSY)
			return true;
	return false;
}

static bool
all_ready(const Sampler *s)
{
	for (int i = 0; i < s->opt.nnodes; i++)
		if (s->nodes[i].state != NODE_READY)
			return false;
	return true;
}

/* When a node's connection attempt times out (monotonic s), or -1 when none is under way. */
static double
connect_deadline(const Sampler *s, const SamplerNode *node)
{
	if (node->state != NODE_CONNECTING && node->state != NODE_PREPARING)
		return -1;
	return node->phase_start + s->opt.connect_timeout;
}

/*
 * How long poll may sleep: until the next tick or the nearest connection
 * deadline; NULL: until something happens.  ppoll(2), not poll(2): a tick
 * rounded up to the millisecond would start every round late.
 */
static const struct timespec *
poll_timeout(const Sampler *s, double now, struct timespec *ts)
{
	double		until = -1;

	if (s->running)
	{
		until = round_due(s, s->round) - now;
		if (now < s->collect_at && s->collect_at - now < until)
			until = s->collect_at - now;
	}
	else if (s->start_requested)
		until = s->start_deadline - now;
	for (int i = 0; i < s->opt.nnodes; i++)
	{
		double		d = connect_deadline(s, &s->nodes[i]);

		if (d >= 0 && (until < 0 || d - now < until))
			until = d - now;
	}
	if (until < 0 && !(s->running || s->start_requested))
		return NULL;
	if (until < 0)
		until = 0;
	ts->tv_sec = (time_t) until;
	ts->tv_nsec = (long) ((until - (double) ts->tv_sec) * 1e9);
	return ts;
}

/* Write the lines of this pass; false when standard output is gone. */
static bool
flush_output(Sampler *s)
{
	if (!json_flush(&s->out))
		return false;
	return fflush(stdout) == 0;
}

static int
run(Sampler *s)
{
	struct pollfd fds[MAX_NODES + 1];
	SamplerNode *owner[MAX_NODES + 1];
	struct timespec timeout;

	while (s->input_open)
	{
		double		now = clock_s(CLOCK_MONOTONIC);
		int			nfds = 0;
		int			rc;

		if (!s->running && s->start_requested && (all_ready(s) || now >= s->start_deadline))
		{
			s->running = true;
			s->axis.t0_mono = now + s->opt.interval;
			s->round = 0;
			json_raw(&s->out, "ready\n");
		}
		if (s->running && now >= round_due(s, s->round))
		{
			/* what a frozen node's round still holds back goes out now, at the latest */
			if (!flush_output(s))
				return 1;
			send_round(s, s->round);
			s->collect_at = clock_s(CLOCK_MONOTONIC) + COLLECT_DELAY;
			s->round = next_round(s, s->round);
		}
		/* one write per round: once every node answered (or cannot) */
		if (!any_busy(s) && !flush_output(s))
			return 1;

		fds[nfds] = (struct pollfd) {.fd = STDIN_FILENO, .events = POLLIN};
		owner[nfds++] = NULL;
		for (int i = 0; i < s->opt.nnodes; i++)
		{
			short		events;
			int			fd = node_poll_fd(&s->nodes[i], &events);

			if (s->nodes[i].state == NODE_BUSY && now < s->collect_at)
				continue;		/* its answer is collected with the others' */
			if (fd >= 0)
			{
				fds[nfds] = (struct pollfd) {.fd = fd, .events = events};
				owner[nfds++] = &s->nodes[i];
			}
		}
		rc = ppoll(fds, nfds, poll_timeout(s, clock_s(CLOCK_MONOTONIC), &timeout), NULL);
		if (rc < 0 && errno != EINTR)
		{
			fprintf(stderr, "walsim-sampler: ppoll: %s\n", strerror(errno));
			return 1;
		}
		now = clock_s(CLOCK_MONOTONIC);
		if (rc > 0 && fds[0].revents != 0 && !read_input(s))
			return 2;
		for (int k = 1; k < nfds; k++)
		{
			SamplerNode *node = owner[k];
			double		deadline = connect_deadline(s, node);
			bool		overdue = deadline >= 0 && now > deadline;

			if ((rc > 0 && fds[k].revents != 0) || overdue)
				advance(s, node, now);
		}
	}
	return flush_output(s) ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static Sampler sampler;
	Sampler    *s = &sampler;
	int			status;
	int			stdin_flags;

	if (!parse_options(argc, argv, &s->opt))
		return 2;
	signal(SIGPIPE, SIG_IGN);	/* a closed output is an error to report, not a death */
	s->axis.start_mono = s->opt.start_mono;
	s->axis.start_wall = s->opt.start_wall;
	s->axis.interval = s->opt.interval;
	s->stmts.count = 2;
	s->stmts.names = statement_names;
	s->stmts.texts = (const char *const[]) {s->opt.positions_sql, s->opt.detail_sql};
	for (int i = 0; i < s->opt.nnodes; i++)
		node_init(&s->nodes[i], s->opt.nodes[i]);
	s->input_open = true;
	stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
	if (stdin_flags < 0 || fcntl(STDIN_FILENO, F_SETFL, stdin_flags | O_NONBLOCK) != 0)
	{
		fprintf(stderr, "walsim-sampler: standard input: %s\n", strerror(errno));
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, OUT_BUF);
	json_init_stream(&s->out, s->outbuf, sizeof(s->outbuf), stdout);
	status = run(s);
	for (int i = 0; i < s->opt.nnodes; i++)
		node_free(&s->nodes[i]);
	/* the description may be shared (a terminal): leave it as it was */
	(void) fcntl(STDIN_FILENO, F_SETFL, stdin_flags);
	return status;
}
