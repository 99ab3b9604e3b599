/*
 * line.h — the samples.jsonl lines walsim-sampler writes, and where a
 * sample lies on the run's time axis.
 *
 * A line is the observer's fields followed by one member per column of the
 * server's row after the first (the server's clock), named as the column,
 * its value written by its type: numbers and booleans as JSON's, pg_lsn as
 * an integer, json as it came, NULL as null, anything else as a string:
 *
 *   {"t": 1.2345, "wall": 1765000000.1234, "node": "pg1", "up": true,
 *    "round": 12, "server_t": 1.234567, "role": "primary",
 *    "insert_lsn": 50331688, "replication": [...], ...}
 *   {"t": 1.2345, "wall": 1765000000.1234, "node": "pg2", "up": false,
 *    "round": 12, "error": "connection refused"}
 *
 * The spacing is Python's json.dumps(), so that the observer's reader
 * (tools/walsim/run/observer.py) reads the head of a line the same way
 * whoever wrote it.
 */
#ifndef WALSIM_SAMPLER_LINE_H
#define WALSIM_SAMPLER_LINE_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/json.h"

/* How far outside [sent, answer read] a server's clock may be before it is not trusted (s). */
#define SAMPLE_CLOCK_TOLERANCE 0.002

/* The run's time axis and the rounds' ticks, in seconds. */
typedef struct SampleAxis
{
	double		start_mono;		/* the run's start, CLOCK_MONOTONIC */
	double		start_wall;		/* the same moment, Unix time */
	double		t0_mono;		/* round 0's tick, CLOCK_MONOTONIC */
	double		interval;		/* between two rounds' ticks */
} SampleAxis;

/*
 * Place a sample whose server clock said server_wall, sent at sent_wall and
 * answered at received_wall (Unix times).  The servers run on this machine,
 * so a trusted clock lies inside the bracket (give or take the tolerance):
 * then *server_t is that clock on the run's axis and false is returned.
 * Outside it (a clock fault moved the node's time) the sample is placed at
 * the bracket's middle, *offset is the server's clock minus that middle,
 * and true is returned.
 */
bool		sample_server_time(const SampleAxis *axis, double server_wall, double sent_wall,
							   double received_wall, double *server_t, double *offset);

/* True when a sample of round `round` taken at server_t is more than a tick after its tick. */
bool		sample_late(const SampleAxis *axis, int64_t round, double server_t);

/* One column of the server's row: its name, its type's OID, its text (NULL: SQL NULL). */
typedef struct SampleColumn
{
	const char *name;
	unsigned int type;
	const char *value;
} SampleColumn;

/* The type OIDs written other than as strings (PostgreSQL's pg_type.dat). */
#define SAMPLE_BOOLOID		16
#define SAMPLE_INT8OID		20
#define SAMPLE_INT2OID		21
#define SAMPLE_INT4OID		23
#define SAMPLE_OIDOID		26
#define SAMPLE_JSONOID		114
#define SAMPLE_FLOAT4OID	700
#define SAMPLE_FLOAT8OID	701
#define SAMPLE_NUMERICOID	1700
#define SAMPLE_PG_LSNOID	3220
#define SAMPLE_JSONBOID		3802

/* One column's value as JSON. */
void		line_value(JsonBuf *j, const SampleColumn *col);

/* The line of an answered sample (its columns after the clock) and its '\n'. */
void		line_up(JsonBuf *j, const SampleAxis *axis, double now_mono, double now_wall,
					const char *node, int64_t round, double server_t, const double *offset,
					bool late, const SampleColumn *cols, int ncols);

/* The line of a node that could not be sampled in round `round`, and its '\n'. */
void		line_down(JsonBuf *j, const SampleAxis *axis, double now_mono, double now_wall,
					  const char *node, int64_t round, const char *error);

#endif							/* WALSIM_SAMPLER_LINE_H */
