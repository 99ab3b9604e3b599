/*
 * replay.c — walsim-netd's replay mode (see replay.h).
 *
 * The two directions are fed in alternating pieces (sizes from
 * --replay-chunk, or drawn from the seed) through one Conn, 1 ms of virtual
 * time per step; everything the core releases is delivered at once and
 * hashed (FNV-1a), and optionally written out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/decision.h"
#include "pipe.h"
#include "replay.h"

#define FNV64_OFFSET UINT64_C(1469598103934665603)

typedef struct Replay
{
	uint8_t    *data[2];		/* the recording per direction */
	size_t		len[2];
	size_t		pos[2];			/* fed so far */
	FILE	   *out[2];			/* --replay-output files, or NULL */
	uint64_t	hash[2];		/* of what the core released */
	uint64_t	outlen[2];
	size_t		ssl_request_end;	/* the recording starts with an SSL/GSS request */
	Conn		c;
} Replay;

static uint8_t *
slurp(const char *path, size_t *len, WalsimError *err)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		size;

	if (f == NULL)
		return walsim_error_set(err, "%s: %s", path, strerror(errno)), NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) size + 1);
	if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		fclose(f);
		free(buf);
		return walsim_error_set(err, "%s: read error", path), NULL;
	}
	fclose(f);
	*len = (size_t) size;
	return buf;
}

static uint64_t
fnv64(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}

static void
replay_close(Replay *r)
{
	for (int d = 0; d < 2; d++)
	{
		if (r->out[d])
			fclose(r->out[d]);
		free(r->data[d]);
	}
}

/* Read PREFIX.fe/.be and create the outputs; false after saying why on stderr. */
static bool
replay_open(Replay *r, const ReplayOptions *o, const char *progname)
{
	char		path[4096];
	WalsimError err;

	memset(r, 0, sizeof(*r));
	for (int d = 0; d < 2; d++)
	{
		r->hash[d] = FNV64_OFFSET;
		snprintf(path, sizeof(path), "%s.%s", o->input, d == NETD_UP ? "fe" : "be");
		r->data[d] = slurp(path, &r->len[d], &err);
		if (r->data[d] == NULL)
		{
			fprintf(stderr, "%s: --replay-input: %s\n", progname, err.message);
			return false;
		}
		if (o->output)
		{
			snprintf(path, sizeof(path), "%s.%s", o->output, d == NETD_UP ? "up" : "down");
			r->out[d] = fopen(path, "wb");
			if (r->out[d] == NULL)
			{
				fprintf(stderr, "%s: --replay-output %s: %s\n", progname, path, strerror(errno));
				return false;
			}
		}
	}
	if (r->len[0] >= 8 && (wire_be32(r->data[0] + 4) == WIRE_SSL_REQUEST_CODE ||
						   wire_be32(r->data[0] + 4) == WIRE_GSSENC_REQUEST_CODE))
		r->ssl_request_end = 8;
	return true;
}

/* How many bytes of direction d to feed at this step. */
static uint64_t
replay_piece(const Replay *r, const FaultSet *fs, int d, uint64_t step, uint64_t chunk)
{
	uint64_t	k = chunk;

	if (k == 0)
	{
		uint64_t	coords[2] = {step, (uint64_t) d};

		k = decision_uniform(decision_u64(fs->seed, "replay-chunk", coords, 2), 1, 8192);
	}
	if (k > r->len[d] - r->pos[d])
		k = r->len[d] - r->pos[d];
	/*
	 * Causality: the server answers an SSL/GSS request only after the whole
	 * request arrived, and netd must know to expect the one-byte answer
	 * before it sees it.
	 */
	if (d == NETD_DOWN && r->pos[0] < r->ssl_request_end)
		k = 0;
	/* ... and says nothing else before the startup packet */
	if (d == NETD_DOWN && !r->c.info.startup_seen && r->ssl_request_end > 0 &&
		r->pos[1] + k > 1)
		k = r->pos[1] >= 1 ? 0 : 1;
	if (d == NETD_DOWN && !r->c.info.startup_seen && r->ssl_request_end == 0)
		k = 0;
	return k;
}

/* Deliver what direction e releases at now (virtual time: all that is due). */
static void
replay_collect(Replay *r, FaultSet *fs, int e, uint64_t now)
{
	const uint8_t *ready;
	size_t		n;

	pipe_pump(&r->c, (NetdDir) e, fs, now);
	while ((n = pipe_ready(&r->c.pipe[e], now, &ready)) > 0)
	{
		r->hash[e] = fnv64(ready, n, r->hash[e]);
		r->outlen[e] += n;
		if (r->out[e])
			fwrite(ready, 1, n, r->out[e]);
		pipe_written(&r->c.pipe[e], n);
	}
}

/* Feed both recordings through the core; false when a stream is not valid protocol. */
static bool
replay_feed(Replay *r, FaultSet *fs, uint64_t chunk, const char *progname)
{
	uint64_t	now = 1000000000u;
	uint64_t	step = 0;

	while (r->pos[0] < r->len[0] || r->pos[1] < r->len[1])
	{
		for (int d = 0; d < 2; d++)
		{
			uint64_t	k = replay_piece(r, fs, d, step, chunk);
			bool		ok = k == 0 ||
				pipe_input(&r->c, (NetdDir) d, r->data[d] + r->pos[d], k, fs, now);

			if (!ok)
				fprintf(stderr, "%s: replay %s stream: %s\n", progname,
						d == NETD_UP ? "client" : "server", r->c.pipe[d].error);
			r->pos[d] += k;
			conn_check_actions(&r->c, fs, now);
			faults_expire(fs, now);
			for (int e = 0; e < 2; e++)
				replay_collect(r, fs, e, now);
			if (!ok)
				return false;
		}
		step++;
		now += 1000000;			/* 1 ms per step */
	}
	return true;
}

/* The JSON summary line on stdout. */
static void
replay_summary(const Replay *r, const FaultSet *fs, bool ok)
{
	char		line[1024];
	char		hash[2][20];
	JsonBuf		j;

	for (int d = 0; d < 2; d++)
		snprintf(hash[d], sizeof(hash[d]), "%016" PRIx64, r->hash[d]);
	json_init(&j, line, sizeof(line));
	json_object_begin(&j, NULL);
	json_u64(&j, "seed", fs->seed);
	json_str(&j, "conn", r->c.info.key);
	json_u64(&j, "up_in", r->len[0]);
	json_u64(&j, "up_out", r->outlen[0]);
	json_u64(&j, "down_in", r->len[1]);
	json_u64(&j, "down_out", r->outlen[1]);
	json_str(&j, "up_hash", hash[0]);
	json_str(&j, "down_hash", hash[1]);
	json_u64(&j, "trace_events", fs->trace ? fs->trace->seq : 0);
	json_u64(&j, "corrupted", r->c.pipe[0].corrupted + r->c.pipe[1].corrupted);
	json_u64(&j, "dropped_bytes", r->c.pipe[0].dropped + r->c.pipe[1].dropped);
	json_bool(&j, "ok", ok);
	json_object_end(&j);
	puts(line);
}

int
replay_run(FaultSet *fs, const ReplayOptions *o, const char *progname)
{
	Replay		r;
	bool		ok;

	if (!replay_open(&r, o, progname))
	{
		replay_close(&r);
		return 2;
	}
	/* the recorded server answered SSLRequest itself: pass it through */
	conn_init(&r.c, o->link, 0, true);
	ok = replay_feed(&r, fs, o->chunk, progname);
	/* drain: deliver everything still queued (delays are virtual) */
	for (int e = 0; e < 2; e++)
		replay_collect(&r, fs, e, UINT64_MAX - 1);
	replay_summary(&r, fs, ok);
	replay_close(&r);
	conn_free(&r.c);
	return ok ? 0 : 1;
}
