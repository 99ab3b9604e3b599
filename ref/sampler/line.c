/*
 * line.c — the samples.jsonl lines of walsim-sampler (see line.h).
 */
#include "line.h"

#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"

bool
sample_server_time(const SampleAxis *axis, double server_wall, double sent_wall,
				   double received_wall, double *server_t, double *offset)
{
	double		mid;

	if (sent_wall - SAMPLE_CLOCK_TOLERANCE <= server_wall &&
		server_wall <= received_wall + SAMPLE_CLOCK_TOLERANCE)
	{
		*server_t = server_wall - axis->start_wall;
		return false;
	}
	mid = (sent_wall + received_wall) / 2;
	*server_t = mid - axis->start_wall;
	*offset = server_wall - mid;
	return true;
}

bool
sample_late(const SampleAxis *axis, int64_t round, double server_t)
{
	double		tick = axis->t0_mono - axis->start_mono + (double) round * axis->interval;

	return server_t - tick > axis->interval;
}

/* "t" and "wall" as the Python writer stamps them (4 decimals), then the node. */
static void
line_head(JsonBuf *j, const SampleAxis *axis, double now_mono, double now_wall, const char *node)
{
	char		num[64];

	snprintf(num, sizeof(num), "{\"t\": %.4f, \"wall\": %.4f, \"node\": ",
			 now_mono - axis->start_mono, now_wall);
	json_raw(j, num);
	json_escape(j, node);
}

/* JSON's number syntax, which PostgreSQL's "NaN" and "Infinity" are not. */
static bool
is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	s += strspn(s, "0123456789");
	if (*s == '.')
	{
		s++;
		if (*s < '0' || *s > '9')
			return false;
		s += strspn(s, "0123456789");
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		s += strspn(s, "0123456789");
	}
	return *s == '\0';
}

/*
 * JSON text as the server wrote it.  A raw line break can only be
 * whitespace between tokens (inside a string the server escapes it), so it
 * becomes a space: a line must stay one line.
 */
static void
json_text(JsonBuf *j, const char *p)
{
	while (*p != '\0')
	{
		size_t		run = strcspn(p, "\r\n");

		json_rawn(j, p, run);
		p += run;
		if (*p != '\0')
		{
			json_raw(j, " ");
			p++;
		}
	}
}

void
line_value(JsonBuf *j, const SampleColumn *col)
{
	uint64_t	lsn;
	char		num[32];

	if (col->value == NULL)
	{
		json_raw(j, "null");
		return;
	}
	switch (col->type)
	{
		case SAMPLE_BOOLOID:
			json_raw(j, col->value[0] == 't' ? "true" : "false");
			return;
		case SAMPLE_INT2OID:
		case SAMPLE_INT4OID:
		case SAMPLE_INT8OID:
		case SAMPLE_OIDOID:
		case SAMPLE_FLOAT4OID:
		case SAMPLE_FLOAT8OID:
		case SAMPLE_NUMERICOID:
			if (is_json_number(col->value))
			{
				json_raw(j, col->value);
				return;
			}
			break;				/* NaN, Infinity: a string */
		case SAMPLE_PG_LSNOID:
			if (lsn_parse(col->value, &lsn, NULL))
			{
				snprintf(num, sizeof(num), "%llu", (unsigned long long) lsn);
				json_raw(j, num);
				return;
			}
			break;
		case SAMPLE_JSONOID:
		case SAMPLE_JSONBOID:
			json_text(j, col->value);
			return;
		default:
			break;
	}
	json_escape(j, col->value);
}

void
line_up(JsonBuf *j, const SampleAxis *axis, double now_mono, double now_wall,
		const char *node, int64_t round, double server_t, const double *offset,
		bool late, const SampleColumn *cols, int ncols)
{
	char		num[128];

	line_head(j, axis, now_mono, now_wall, node);
	snprintf(num, sizeof(num), ", \"up\": true, \"round\": %lld, \"server_t\": %.6f",
			 (long long) round, server_t);
	json_raw(j, num);
	if (offset != NULL)
	{
		snprintf(num, sizeof(num), ", \"clock_offset\": %.6f", *offset);
		json_raw(j, num);
	}
	if (late)
		json_raw(j, ", \"late\": true");
	for (int i = 0; i < ncols; i++)
	{
		json_raw(j, ", ");
		json_escape(j, cols[i].name);
		json_raw(j, ": ");
		line_value(j, &cols[i]);
	}
	json_raw(j, "}\n");
}

void
line_down(JsonBuf *j, const SampleAxis *axis, double now_mono, double now_wall,
		  const char *node, int64_t round, const char *error)
{
	char		num[64];

	line_head(j, axis, now_mono, now_wall, node);
	snprintf(num, sizeof(num), ", \"up\": false, \"round\": %lld, \"error\": ", (long long) round);
	json_raw(j, num);
	json_escape(j, error);
	json_raw(j, "}\n");
}
