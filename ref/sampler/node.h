/*
 * node.h — one sampled node: its libpq connection, made and used without
 * ever blocking (PQconnectStart/PQconnectPoll, PQsendQueryPrepared), so a
 * node that is slow, frozen or gone never delays the rounds of the others.
 *
 *   IDLE --connect--> CONNECTING --> PREPARING --> READY <--> BUSY
 *     ^                                  |                    |
 *     +------------- any failure (error kept for the next round's line)
 */
#ifndef WALSIM_SAMPLER_NODE_H
#define WALSIM_SAMPLER_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#define NODE_NAME_MAX	64
#define NODE_ERROR_MAX	300

typedef enum NodeState
{
	NODE_IDLE,					/* no connection (never made, or dropped) */
	NODE_CONNECTING,			/* PQconnectPoll under way */
	NODE_PREPARING,				/* preparing the sample statements */
	NODE_READY,					/* connected, nothing in flight */
	NODE_BUSY					/* a sample query in flight */
} NodeState;

/* The statements every connection prepares (names and texts). */
typedef struct SampleStatements
{
	int			count;
	const char *const *names;
	const char *const *texts;
} SampleStatements;

typedef struct SamplerNode
{
	char		name[NODE_NAME_MAX];
	char	   *conninfo;		/* NULL until the observer sent one (malloc'd) */
	PGconn	   *conn;
	NodeState	state;
	bool		want_write;		/* CONNECTING: PQconnectPoll waits to write */
	int			prepared;		/* PREPARING: statements prepared so far */
	bool		prepare_sent;	/* PREPARING: the next one is in flight */
	double		phase_start;	/* CONNECTING/PREPARING: since when (monotonic s) */
	PGresult   *result;			/* BUSY: the first result of the query */
	int64_t		busy_round;		/* BUSY: the round being answered */
	double		sent_wall;		/* BUSY: when its query was sent (Unix time) */
	char		error[NODE_ERROR_MAX];	/* why it is not READY ("" if no reason known) */
	bool		error_recorded; /* a line already says so */
} SamplerNode;

/* What node_advance() found. */
typedef enum NodeOutcome
{
	NODE_NOTHING,				/* nothing new (still waiting) */
	NODE_NOW_READY,				/* connected and prepared */
	NODE_ANSWERED,				/* the query answered: node->result, then node_done() */
	NODE_FAILED					/* dropped; node->error says why */
} NodeOutcome;

void		node_init(SamplerNode *node, const char *name);
void		node_free(SamplerNode *node);

/* A new conninfo for the next connection (the current one, if any, is kept). */
void		node_set_conninfo(SamplerNode *node, const char *conninfo);

/* Start connecting (IDLE only); false and node->error when it cannot start. */
bool		node_connect(SamplerNode *node, double now);

/* The descriptor and poll(2) events to wait for, or -1 when nothing is awaited. */
int			node_poll_fd(const SamplerNode *node, short *events);

/* Progress after the descriptor was ready (or a timeout passed). */
NodeOutcome node_advance(SamplerNode *node, const SampleStatements *stmts, double now,
						 double connect_timeout);

/* Send statement `name` for round `round` (READY only); false when dropped. */
bool		node_send(SamplerNode *node, const char *name, int64_t round, double sent_wall);

/* The answer was used: free it, back to READY. */
void		node_done(SamplerNode *node);

/* Close the connection (if any), keeping `error` as the reason. */
void		node_drop(SamplerNode *node, const char *error);

#endif							/* WALSIM_SAMPLER_NODE_H */
