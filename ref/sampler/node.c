/*
 * node.c — one sampled node's connection, never blocking (see node.h).
 *
 * Failures keep the first line of libpq's message, which is what the
 * samples' "error" says: a connection refused, a server that went away in
 * the middle of a query, a timeout of ours while connecting or preparing
 * (libpq's connect_timeout applies only to blocking connections).
 */
#include "node.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keep the first line of `text` (trimmed) as the node's error. */
static void
set_error(SamplerNode *node, const char *text)
{
	size_t		n;

	while (*text == ' ' || *text == '\n' || *text == '\t')
		text++;
	n = strcspn(text, "\n");
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\r' || text[n - 1] == '\t'))
		n--;
	if (n == 0)
	{
		text = "connection lost";
		n = strlen(text);
	}
	if (n >= sizeof(node->error))
		n = sizeof(node->error) - 1;
	memcpy(node->error, text, n);
	node->error[n] = '\0';
}

void
node_init(SamplerNode *node, const char *name)
{
	memset(node, 0, sizeof(*node));
	snprintf(node->name, sizeof(node->name), "%s", name);
	node->state = NODE_IDLE;
	node->busy_round = -1;
}

void
node_drop(SamplerNode *node, const char *error)
{
	if (error != NULL)
		set_error(node, error);
	if (node->result != NULL)
		PQclear(node->result);
	node->result = NULL;
	if (node->conn != NULL)
		PQfinish(node->conn);
	node->conn = NULL;
	node->state = NODE_IDLE;
}

void
node_free(SamplerNode *node)
{
	node_drop(node, NULL);
	free(node->conninfo);
	node->conninfo = NULL;
}

void
node_set_conninfo(SamplerNode *node, const char *conninfo)
{
	char	   *copy = strdup(conninfo);

	if (copy == NULL)
		return;					/* keep the old one: the next connect says why it fails */
	free(node->conninfo);
	node->conninfo = copy;
}

bool
node_connect(SamplerNode *node, double now)
{
	/* the conninfo first (expand_dbname), then what the observer insists on */
	const char *const keys[] = {"dbname", "application_name", NULL};
	const char *values[] = {NULL, "walsim-observer", NULL};

	if (node->state != NODE_IDLE)
		return true;
	if (node->conninfo == NULL)
		return false;			/* the observer has not said where it is yet */
	values[0] = node->conninfo;
	node->conn = PQconnectStartParams(keys, values, 1);
	if (node->conn == NULL)
	{
		set_error(node, "out of memory starting a connection");
		return false;
	}
	if (PQstatus(node->conn) == CONNECTION_BAD)
	{
		node_drop(node, PQerrorMessage(node->conn));
		return false;
	}
	node->state = NODE_CONNECTING;
	node->want_write = true;	/* libpq: first wait as if PGRES_POLLING_WRITING */
	node->phase_start = now;
	return true;
}

int
node_poll_fd(const SamplerNode *node, short *events)
{
	switch (node->state)
	{
		case NODE_CONNECTING:
			*events = node->want_write ? POLLOUT : POLLIN;
			return PQsocket(node->conn);
		case NODE_PREPARING:
		case NODE_BUSY:
			*events = POLLIN;
			return PQsocket(node->conn);
		default:
			return -1;
	}
}

/*
 * Read what arrived and take results until the command is complete: 1 when
 * it is (its first result in node->result), 0 when more input is needed,
 * -1 when the connection failed.
 */
static int
collect(SamplerNode *node)
{
	if (!PQconsumeInput(node->conn))
		return -1;
	while (!PQisBusy(node->conn))
	{
		PGresult   *res = PQgetResult(node->conn);

		if (res == NULL)
			return 1;
		if (node->result == NULL)
			node->result = res;
		else
			PQclear(res);
	}
	return 0;
}

/* Send what libpq still holds (a few dozen bytes: the socket takes them at once). */
static bool
flush_all(SamplerNode *node)
{
	int			rc;

	while ((rc = PQflush(node->conn)) == 1)
	{
		struct pollfd pfd = {.fd = PQsocket(node->conn), .events = POLLOUT};

		(void) poll(&pfd, 1, 10);
	}
	return rc == 0;
}

/* libpq reported a failure of the connection: drop it with libpq's message. */
static NodeOutcome
connection_failed(SamplerNode *node)
{
	node_drop(node, PQerrorMessage(node->conn));
	return NODE_FAILED;
}

/* A finished command's result is not `want`: fail with the server's message. */
static NodeOutcome
result_failed(SamplerNode *node, const char *what)
{
	char		msg[NODE_ERROR_MAX];
	const char *text = node->result ? PQresultErrorMessage(node->result) : "";

	if (text[0] == '\0')
	{
		snprintf(msg, sizeof(msg), "%s: %s", what,
				 node->result ? PQresStatus(PQresultStatus(node->result)) : "no result");
		text = msg;
	}
	node_drop(node, text);
	return NODE_FAILED;
}

/*
 * The command in flight: NODE_NOTHING while it runs, NODE_ANSWERED when it
 * completed with status `want` (its first result in node->result),
 * NODE_FAILED (dropped) otherwise.
 */
static NodeOutcome
await_result(SamplerNode *node, ExecStatusType want, const char *what)
{
	int			rc = collect(node);

	if (rc < 0)
		return connection_failed(node);
	if (rc == 0)
		return NODE_NOTHING;
	if (node->result == NULL || PQresultStatus(node->result) != want)
		return result_failed(node, what);
	return NODE_ANSWERED;
}

static NodeOutcome
advance_connecting(SamplerNode *node, double now)
{
	PostgresPollingStatusType st = PQconnectPoll(node->conn);

	if (st == PGRES_POLLING_FAILED)
		return connection_failed(node);
	if (st != PGRES_POLLING_OK)
	{
		node->want_write = (st == PGRES_POLLING_WRITING);
		return NODE_NOTHING;
	}
	if (PQsetnonblocking(node->conn, 1) != 0)
		return connection_failed(node);
	node->state = NODE_PREPARING;
	node->prepared = 0;
	node->prepare_sent = false;
	node->phase_start = now;
	return NODE_NOTHING;
}

static NodeOutcome
advance_preparing(SamplerNode *node, const SampleStatements *stmts)
{
	for (;;)
	{
		NodeOutcome out;

		if (!node->prepare_sent)
		{
			int			i = node->prepared;

			if (i == stmts->count)
			{
				node->state = NODE_READY;
				node->error_recorded = false;
				return NODE_NOW_READY;
			}
			if (!PQsendPrepare(node->conn, stmts->names[i], stmts->texts[i], 0, NULL) ||
				!flush_all(node))
				return connection_failed(node);
			node->prepare_sent = true;
		}
		out = await_result(node, PGRES_COMMAND_OK, "preparing the sample query");
		if (out != NODE_ANSWERED)
			return out;
		PQclear(node->result);
		node->result = NULL;
		node->prepared++;
		node->prepare_sent = false;
	}
}

static NodeOutcome
advance_busy(SamplerNode *node)
{
	NodeOutcome out = await_result(node, PGRES_TUPLES_OK, "the sample query");

	if (out != NODE_ANSWERED)
		return out;
	if (PQntuples(node->result) != 1 || PQnfields(node->result) < 1 || PQgetisnull(node->result, 0, 0))
	{
		node_drop(node, "the sample query returned no row, or a NULL clock");
		return NODE_FAILED;
	}
	return NODE_ANSWERED;
}

NodeOutcome
node_advance(SamplerNode *node, const SampleStatements *stmts, double now,
			 double connect_timeout)
{
	switch (node->state)
	{
		case NODE_CONNECTING:
		case NODE_PREPARING:
			if (now - node->phase_start > connect_timeout)
			{
				node_drop(node, node->state == NODE_CONNECTING ? "timeout expired while connecting"
						  : "timeout expired preparing the sample query");
				return NODE_FAILED;
			}
			if (node->state == NODE_CONNECTING)
			{
				NodeOutcome out = advance_connecting(node, now);

				if (out != NODE_NOTHING || node->state != NODE_PREPARING)
					return out;
			}
			return advance_preparing(node, stmts);
		case NODE_BUSY:
			return advance_busy(node);
		default:
			return NODE_NOTHING;
	}
}

bool
node_send(SamplerNode *node, const char *name, int64_t round, double sent_wall)
{
	if (!PQsendQueryPrepared(node->conn, name, 0, NULL, NULL, NULL, 0) || !flush_all(node))
	{
		node_drop(node, PQerrorMessage(node->conn));
		return false;
	}
	node->state = NODE_BUSY;
	node->busy_round = round;
	node->sent_wall = sent_wall;
	return true;
}

void
node_done(SamplerNode *node)
{
	if (node->result != NULL)
		PQclear(node->result);
	node->result = NULL;
	node->state = NODE_READY;
	node->error_recorded = false;
}
