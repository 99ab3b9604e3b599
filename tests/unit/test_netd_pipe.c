/*
 * test_netd_pipe.c — walsim-netd's fault core without sockets: the protocol
 * tracker, decision coordinates, and each message-level fault.  Streams are
 * the real captures of tests/data/streams and hand-built ones; pieces of
 * random size must never change the trace or the bytes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/decision.h"
#include "walsim/replmsg.h"
#include "walsim/wire.h"
#include "../../sim/net/pipe.h"
#include "unit_support.h"

typedef struct Run
{
	char	   *trace;			/* trace text without t_ns/seq */
	size_t		trace_len;
	WireBuf		out[2];			/* released bytes per direction */
	Conn		c;
	bool		ok;
} Run;

/* The connection number netd would give the next connection of an app (a reconnect: 1, 2...). */
static uint64_t test_app_number = 0;

static uint64_t
fixed_app_number(void *ctx, const char *link, const char *app)
{
	(void) ctx;
	(void) link;
	(void) app;
	return test_app_number;
}

static void
add_rule(FaultSet *fs, const char *text)
{
	char		copy[512];
	char	   *w[32];
	int			n;
	WalsimError err;

	snprintf(copy, sizeof(copy), "%s", text);
	n = netd_split_words(copy, w, 32);
	ck_assert_msg(fault_parse(&fs->faults[fs->nfaults], n, w, &err), "%s: %s", text, err.message);
	fs->nfaults++;
}

static void
collect(Run *r, uint64_t now)
{
	for (int d = 0; d < 2; d++)
	{
		const uint8_t *p;
		size_t		n;

		while ((n = pipe_ready(&r->c.pipe[d], now, &p)) > 0)
		{
			wire_put_bytes(&r->out[d], p, n);
			pipe_written(&r->c.pipe[d], n);
		}
	}
}

/* Strip "seq" and "t_ns" so traces of runs with different timing compare. */
static char *
strip_times(const char *text)
{
	char	   *out = malloc(strlen(text) + 1);
	char	   *o = out;

	while (*text)
	{
		if (strncmp(text, "\"seq\":", 6) == 0 || strncmp(text, "\"t_ns\":", 7) == 0)
		{
			while (*text && *text != ',')
				text++;
			if (*text)
				text++;
			continue;
		}
		*o++ = *text++;
	}
	*o = '\0';
	return out;
}

/*
 * Feed fe/be through a connection: all of fe's first `lead` bytes, then
 * alternating pieces (piece 0 = all at once, >0 fixed, <0 seeded sizes).
 * Down bytes never run ahead of the client's startup packet (causality).
 */
static Run
run_streams(const uint8_t *fe, size_t felen, const uint8_t *be, size_t belen,
			FaultSet *fs, int piece, uint64_t seed, bool tls_pass)
{
	Run			r;
	FILE	   *tf;
	Trace		trace = {0};
	char	   *buf = NULL;
	size_t		buflen = 0;
	size_t		pos[2] = {0, 0};
	const uint8_t *data[2] = {fe, be};
	size_t		len[2] = {felen, belen};
	uint64_t	now = 1000;
	uint64_t	step = 0;

	memset(&r, 0, sizeof(r));
	wire_buf_init(&r.out[0]);
	wire_buf_init(&r.out[1]);
	tf = open_memstream(&buf, &buflen);
	trace.f = tf;
	trace.seed = fs->seed;
	fs->trace = &trace;
	conn_init(&r.c, "l", 1, tls_pass);
	r.c.next_app_number = fixed_app_number;
	r.ok = true;
	while ((pos[0] < len[0] || pos[1] < len[1]) && r.ok)
	{
		for (int d = 0; d < 2; d++)
		{
			size_t		k = len[d] - pos[d];

			if (piece > 0 && (size_t) piece < k)
				k = (size_t) piece;
			else if (piece < 0)
			{
				uint64_t	co[2] = {step, (uint64_t) d};
				size_t		want = (size_t) decision_uniform(decision_u64(seed, "piece", co, 2), 1, 2000);

				if (want < k)
					k = want;
			}
			/* causality: the server speaks after the client's startup */
			if (d == NETD_DOWN && !r.c.info.startup_seen && !r.c.info.tls &&
				!(pos[0] == len[0] && !r.c.info.awaiting_answer))
			{
				/* only the one-byte answer to an SSLRequest may come first */
				size_t		allowed = ((be[0] == 'N' || be[0] == 'S') && pos[0] >= 8) ? 1 : 0;

				k = pos[1] < allowed ? allowed - pos[1] : 0;
			}
			if (k == 0)
				continue;
			if (!pipe_input(&r.c, (NetdDir) d, data[d] + pos[d], k, fs, now))
				r.ok = false;
			pos[d] += k;
			conn_check_actions(&r.c, fs, now);
			collect(&r, now);
		}
		step++;
		now += 1000;
	}
	for (int d = 0; d < 2; d++)
		pipe_pump(&r.c, (NetdDir) d, fs, UINT64_MAX - 1);
	collect(&r, UINT64_MAX - 1);
	fclose(tf);
	r.trace = strip_times(buf);
	r.trace_len = strlen(r.trace);
	free(buf);
	fs->trace = NULL;
	return r;
}

/*
 * The trace lines of one direction, in order, joined: how the directions
 * interleave depends on arrival, what each direction decided must not.
 */
static char *
dir_lines(const char *trace, const char *dir)
{
	char		needle[32];
	char	   *out = calloc(1, strlen(trace) + 1);
	const char *line = trace;

	snprintf(needle, sizeof(needle), "\"dir\":\"%s\"", dir);
	while (*line)
	{
		const char *end = strchr(line, '\n');
		size_t		len = end ? (size_t) (end - line + 1) : strlen(line);
		char	   *copy = strndup(line, len);

		if (strstr(copy, needle))
			strcat(out, copy);
		free(copy);
		line += len;
	}
	return out;
}

static void
run_free(Run *r)
{
	conn_free(&r->c);
	wire_buf_free(&r->out[0]);
	wire_buf_free(&r->out[1]);
	free(r->trace);
}

static void
reset_faults(FaultSet *fs)
{
	for (int i = 0; i < fs->nfaults; i++)
	{
		fs->faults[i].fires = 0;
		fs->faults[i].activated_ns = 0;
		fs->faults[i].expired = false;
	}
}

/* ------------------------------------------------------------ tests */

START_TEST(test_tracker_on_capture)
{
	size_t		felen,
				belen;
	uint8_t    *fe = unit_load_data("streams/standby.fe", &felen);
	uint8_t    *be = unit_load_data("streams/standby.be", &belen);
	FaultSet	fs = {.seed = 1};
	Run			r = run_streams(fe, felen, be, belen, &fs, 0, 0, true);
	JsonBuf		j;
	char		stats[4096];

	ck_assert(r.ok);
	ck_assert(r.c.info.startup_seen);
	ck_assert_str_eq(r.c.info.app, "s1");
	ck_assert_str_eq(r.c.info.user, "repl");
	ck_assert_str_eq(r.c.info.replication, "true");
	ck_assert_str_eq(r.c.info.key, "l/s1/0");
	ck_assert_uint_eq(r.c.info.timeline, 1);
	ck_assert_uint_gt(r.c.info.start_lsn, 0);
	ck_assert_uint_eq(r.c.pipe[NETD_DOWN].msgs[MC_W], 1);
	ck_assert_uint_ge(r.c.pipe[NETD_UP].msgs[MC_R], 3);
	ck_assert_uint_ge(r.c.pipe[NETD_UP].msgs[MC_H], 1);
	ck_assert_uint_gt(r.c.info.last_lsn_sent, r.c.info.start_lsn);
	ck_assert_uint_eq(r.c.info.ack_flush, r.c.info.last_lsn_sent);
	/* no faults: the bytes pass unchanged */
	ck_assert_uint_eq(r.out[0].len, felen);
	ck_assert_mem_eq(r.out[0].data, fe, felen);
	ck_assert_uint_eq(r.out[1].len, belen);
	ck_assert_mem_eq(r.out[1].data, be, belen);
	ck_assert_ptr_nonnull(strstr(r.trace, "\"event\":\"startup\""));
	ck_assert_ptr_nonnull(strstr(r.trace, "START_REPLICATION"));

	json_init(&j, stats, sizeof(stats));
	conn_stats_json(&r.c, &j);
	ck_assert_ptr_nonnull(strstr(stats, "\"conn\":\"l/s1/0\""));
	ck_assert_ptr_nonnull(strstr(stats, "\"by_type\":{\"w\":1"));
	run_free(&r);
	free(fe);
	free(be);
}
END_TEST

/* The same seed and rules give the same trace and bytes for any piece sizes. */
START_TEST(test_pieces_do_not_change_decisions)
{
	const char *names[] = {"standby", "receivewal"};

	for (int s = 0; s < 2; s++)
	{
		char		name[64];
		size_t		felen,
					belen;
		uint8_t    *fe,
				   *be;
		FaultSet	fs = {.seed = 77};
		Run			base;
		const int	pieces[] = {1, 3, 100, 4096, -1, -2};

		snprintf(name, sizeof(name), "streams/%s.fe", names[s]);
		fe = unit_load_data(name, &felen);
		snprintf(name, sizeof(name), "streams/%s.be", names[s]);
		be = unit_load_data(name, &belen);
		add_rule(&fs, "id=j link=l kind=delay ms=1 jitter_ms=40");
		add_rule(&fs, "id=r link=l kind=drop msg=r prob=0.5");
		add_rule(&fs, "id=c link=l kind=corrupt nth=1 bits=3");
		add_rule(&fs, "id=o link=l kind=corrupt at_offset=20 dir=up bit=0");
		base = run_streams(fe, felen, be, belen, &fs, 0, 0, true);
		ck_assert(base.ok);
		ck_assert_ptr_nonnull(strstr(base.trace, "\"rule\":\"c\""));
		ck_assert_ptr_nonnull(strstr(base.trace, "\"rule\":\"o\""));
		for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		{
			Run			r;

			reset_faults(&fs);
			r = run_streams(fe, felen, be, belen, &fs, pieces[i], (uint64_t) i, true);
			ck_assert(r.ok);
			/* per direction the decisions are identical */
			ck_assert_uint_eq(r.out[0].len, base.out[0].len);
			ck_assert_mem_eq(r.out[0].data, base.out[0].data, base.out[0].len);
			ck_assert_uint_eq(r.out[1].len, base.out[1].len);
			for (size_t b = 0; b < base.out[1].len; b++)
				ck_assert_msg(r.out[1].data[b] == base.out[1].data[b],
							  "%s piece %d: down byte %zu differs", names[s], pieces[i], b);
			ck_assert_uint_eq(r.trace_len, base.trace_len);
			for (int d = 0; d < 2; d++)
			{
				char	   *a = dir_lines(base.trace, d ? "down" : "up");
				char	   *b = dir_lines(r.trace, d ? "down" : "up");

				ck_assert_msg(strlen(a) > 100, "no %s decisions traced", d ? "down" : "up");
				ck_assert_msg(strcmp(a, b) == 0, "%s piece %d: %s trace differs",
							  names[s], pieces[i], d ? "down" : "up");
				free(a);
				free(b);
			}
			run_free(&r);
		}
		/* a different seed decides differently */
		{
			Run			r;

			reset_faults(&fs);
			fs.seed = 78;
			r = run_streams(fe, felen, be, belen, &fs, 0, 0, true);
			ck_assert(strcmp(r.trace, base.trace) != 0);
			run_free(&r);
		}
		run_free(&base);
		free(fe);
		free(be);
	}
}
END_TEST

/* Build a small replication conversation by hand. */
static void
build_conv(WireBuf *fe, WireBuf *be, int nw, bool ssl)
{
	const char *k[] = {"user", "replication", "application_name"};
	const char *v[] = {"u", "true", "app1"};
	uint8_t		wal[1000];

	for (size_t i = 0; i < sizeof(wal); i++)
		wal[i] = (uint8_t) i;
	if (ssl)
		wire_put_ssl_request(fe);
	wire_put_startup(fe, WIRE_PROTOCOL_3_0, k, v, 3);
	wire_put_query(fe, "START_REPLICATION SLOT \"s\" 0/1000000 TIMELINE 2");
	for (int i = 0; i < nw; i++)
	{
		ReplStatus	s = {.write = 0x1000000 + (uint64_t) (i + 1) * 1000};
		ReplFeedback f = {.xmin = (uint32_t) i};

		repl_put_status(fe, &s);
		repl_put_feedback(fe, &f);
	}
	if (ssl)
		wire_put_u8(be, 'N');
	wire_put_auth_ok(be);
	wire_put_ready_for_query(be, 'I');
	wire_put_copy_both_response(be, 0, NULL, 0);
	for (int i = 0; i < nw; i++)
	{
		ReplKeepalive ka = {.wal_end = 0x1000000 + (uint64_t) i * 1000};

		repl_put_xlogdata(be, 0x1000000 + (uint64_t) i * 1000, 0x1000000 + (uint64_t) (i + 1) * 1000,
						  0, wal, sizeof(wal));
		repl_put_keepalive(be, &ka);
	}
}

/* Decode a whole output stream; every message must be well framed. */
static int
count_copydata(const WireBuf *b, WireDirection dir, char subtype)
{
	WireDecoder d;
	size_t		pos = 0,
				used;
	int			n = 0;
	WireMessage m;

	wire_decoder_init(&d, dir, 0, 0);
	while (pos < b->len)
	{
		WireStatus	st = wire_decoder_next(&d, b->data + pos, b->len - pos, &used, &m, NULL);

		pos += used;
		ck_assert_int_ne(st, WIRE_FAILED);
		if (st == WIRE_NEED_MORE)
			break;
		if (m.kind == WIRE_MSG_TYPED && m.type == 'd' && m.body_len > 0 && m.body[0] == subtype)
			n++;
	}
	ck_assert_uint_eq(pos, b->len);
	ck_assert(!wire_decoder_in_message(&d));
	wire_decoder_free(&d);
	return n;
}

START_TEST(test_drop_keeps_framing)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 5};
	Run			r;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 10, false);
	add_rule(&fs, "id=dk link=l kind=drop msg=k");
	add_rule(&fs, "id=dr link=l kind=drop msg=r after_msgs=4");
	r = run_streams(fe.data, fe.len, be.data, be.len, &fs, 7, 0, false);
	ck_assert(r.ok);
	ck_assert_int_eq(count_copydata(&r.out[1], WIRE_BACKEND, 'k'), 0);
	ck_assert_int_eq(count_copydata(&r.out[1], WIRE_BACKEND, 'w'), 10);
	/* after_msgs=4: the 4th status update and later are dropped */
	ck_assert_int_eq(count_copydata(&r.out[0], WIRE_FRONTEND, 'r'), 3);
	ck_assert_int_eq(count_copydata(&r.out[0], WIRE_FRONTEND, 'h'), 10);
	ck_assert_uint_eq(fs.faults[0].fires, 10);
	ck_assert_uint_eq(fs.faults[1].fires, 7);
	ck_assert_str_eq(r.c.info.key, "l/app1/0");
	ck_assert_uint_eq(r.c.info.start_lsn, 0x1000000);
	ck_assert_uint_eq(r.c.info.timeline, 2);
	run_free(&r);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

START_TEST(test_corrupt_at_lsn_and_offset)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 5};
	Run			r;
	size_t		ndiff = 0,
				at = 0;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 3, false);
	/* WAL byte 0x1000000 + 1500 is byte 500 of the 2nd XLogData */
	add_rule(&fs, "id=c link=l kind=corrupt at_lsn=0/10005DC bit=2");
	r = run_streams(fe.data, fe.len, be.data, be.len, &fs, 13, 0, false);
	ck_assert_uint_eq(r.out[1].len, be.len);
	for (size_t i = 0; i < be.len; i++)
		if (r.out[1].data[i] != be.data[i])
		{
			ndiff++;
			at = i;
		}
	ck_assert_uint_eq(ndiff, 1);
	ck_assert_int_eq(r.out[1].data[at] ^ be.data[at], 0x04);
	ck_assert_int_eq(be.data[at], 500 % 256);
	ck_assert_ptr_nonnull(strstr(r.trace, "\"at_lsn\":\"0/10005DC\""));
	ck_assert_uint_eq(r.c.pipe[NETD_DOWN].corrupted, 1);
	run_free(&r);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

/*
 * The same 3000 bytes of WAL from 0/1000000, cut into XLogData messages of the
 * given sizes, each after `ka` keepalives: what a sender does differently from
 * one run to the next, by timing alone.
 */
static void
build_cut(WireBuf *fe, WireBuf *be, const size_t *cuts, int ncuts, int ka)
{
	const char *k[] = {"user", "replication", "application_name"};
	const char *v[] = {"u", "true", "pg2"};
	uint8_t		wal[3000];
	uint64_t	lsn = 0x1000000;
	size_t		off = 0;

	for (size_t i = 0; i < sizeof(wal); i++)
		wal[i] = (uint8_t) (i * 7 + 3);
	wire_put_startup(fe, WIRE_PROTOCOL_3_0, k, v, 3);
	wire_put_query(fe, "START_REPLICATION 0/1000000 TIMELINE 1");
	wire_put_auth_ok(be);
	wire_put_ready_for_query(be, 'I');
	wire_put_copy_both_response(be, 0, NULL, 0);
	for (int i = 0; i < ncuts; i++)
	{
		for (int j = 0; j < ka; j++)
		{
			ReplKeepalive kk = {.wal_end = lsn};

			repl_put_keepalive(be, &kk);
		}
		repl_put_xlogdata(be, lsn, lsn + cuts[i], 0, wal + off, cuts[i]);
		lsn += cuts[i];
		off += cuts[i];
	}
}

/* The WAL position and the mask a corrupt rule chose in one run (from the output bytes). */
static void
corruption_of(const char *rule, const size_t *cuts, int ncuts, int ka, uint64_t app_number,
			  uint64_t *lsn, int *mask)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 9};
	Run			r;
	const char *p;
	int			ndiff = 0;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_cut(&fe, &be, cuts, ncuts, ka);
	add_rule(&fs, rule);
	test_app_number = app_number;
	r = run_streams(fe.data, fe.len, be.data, be.len, &fs, 11, 0, false);
	test_app_number = 0;
	ck_assert(r.ok);
	ck_assert_uint_eq(r.out[1].len, be.len);
	*mask = 0;
	for (size_t i = 0; i < be.len; i++)
		if (r.out[1].data[i] != be.data[i])
		{
			ndiff++;
			*mask = r.out[1].data[i] ^ be.data[i];
		}
	ck_assert_int_eq(ndiff, 1);
	p = strstr(r.trace, "\"at_lsn\":\"0/");
	ck_assert_ptr_nonnull(p);
	*lsn = strtoull(p + strlen("\"at_lsn\":\"0/"), NULL, 16);
	p = strstr(r.trace, "\"mask\":");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(atoi(p + strlen("\"mask\":")), *mask);
	run_free(&r);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}

/*
 * Issue 19: the bits corrupt flips must be a function of the seed and the
 * LSN, not of how the stream was cut into messages (timing), of the
 * keepalives between them, or of the standby's connection number.
 */
START_TEST(test_corrupt_at_lsn_is_keyed_on_the_lsn)
{
	const size_t a[] = {1000, 1000, 1000};
	const size_t b[] = {700, 1300, 1000};
	const size_t c[] = {3000};
	const size_t d[] = {1499, 2, 1499};
	struct
	{
		const size_t *cuts;
		int			n;
		int			ka;
		uint64_t	app;
	}			runs[] = {{a, 3, 1, 0}, {b, 3, 0, 0}, {c, 1, 4, 1}, {d, 3, 2, 3}, {a, 3, 5, 7}};
	int			mask0 = 0;

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
	{
		uint64_t	lsn;
		int			mask;

		corruption_of("id=c link=l kind=corrupt at_lsn=0/10005DC bits=3", runs[i].cuts, runs[i].n,
					  runs[i].ka, runs[i].app, &lsn, &mask);
		ck_assert_uint_eq(lsn, 0x10005DC);
		ck_assert_int_eq(__builtin_popcount(mask), 3);
		if (i == 0)
			mask0 = mask;
		ck_assert_msg(mask == mask0, "cut %zu: mask %#x, first run %#x", i, mask, mask0);
	}
}
END_TEST

/* nth_message: the byte and the bits are keyed on N and the offset inside the message. */
START_TEST(test_corrupt_nth_ignores_keepalives_and_reconnects)
{
	const size_t a[] = {1000, 1000, 1000};
	uint64_t	lsn0 = 0;
	int			mask0 = 0;

	for (int i = 0; i < 4; i++)
	{
		uint64_t	lsn;
		int			mask;

		corruption_of("id=n link=l kind=corrupt nth=2 bits=2", a, 3, i, (uint64_t) i * 2, &lsn, &mask);
		ck_assert(lsn >= 0x1000000 + 1000 && lsn < 0x1000000 + 2000);
		if (i == 0)
		{
			lsn0 = lsn;
			mask0 = mask;
		}
		ck_assert_uint_eq(lsn, lsn0);
		ck_assert_int_eq(mask, mask0);
	}
}
END_TEST

START_TEST(test_ssl_refused_by_netd)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 1};
	Run			r;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	/* the server side has no 'N': netd answers the SSLRequest itself */
	build_conv(&fe, &be, 1, true);
	r = run_streams(fe.data, fe.len, be.data + 1, be.len - 1, &fs, 0, 0, false);
	ck_assert(r.ok);
	/* upstream never sees the SSLRequest; the client gets 'N' first */
	ck_assert_uint_eq(r.out[0].len, fe.len - 8);
	ck_assert_mem_eq(r.out[0].data, fe.data + 8, fe.len - 8);
	ck_assert_int_eq(r.out[1].data[0], 'N');
	ck_assert_uint_eq(r.out[1].len, be.len);
	run_free(&r);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

START_TEST(test_tls_passed_through_is_opaque)
{
	WireBuf		fe;
	uint8_t		be[1 + 3000];
	FaultSet	fs = {.seed = 1};
	Run			r;

	wire_buf_init(&fe);
	wire_put_ssl_request(&fe);
	for (int i = 0; i < 5000; i++)
		wire_put_u8(&fe, (uint8_t) (i * 31));	/* "TLS" bytes */
	be[0] = 'S';
	for (size_t i = 1; i < sizeof(be); i++)
		be[i] = (uint8_t) i;
	add_rule(&fs, "id=o link=l kind=corrupt at_offset=4100 dir=up bit=1");
	r = run_streams(fe.data, fe.len, be, sizeof(be), &fs, 0, 0, true);
	/* run_streams holds the server until a startup: feed its rest now */
	ck_assert(r.ok);
	ck_assert(r.c.info.tls);
	ck_assert(r.c.pipe[0].opaque && r.c.pipe[1].opaque);
	ck_assert_uint_eq(r.out[0].len, fe.len);
	ck_assert_int_eq(r.out[0].data[4100] ^ fe.data[4100], 0x02);
	run_free(&r);
	wire_buf_free(&fe);
}
END_TEST

START_TEST(test_stall_holds_then_releases)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 1};
	Conn		c;
	const uint8_t *p;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 2, false);
	conn_init(&c, "l", 1, false);
	add_rule(&fs, "id=s link=l kind=stall dir=down");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 10));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 10));
	ck_assert(pipe_stalled(&c, NETD_DOWN, &fs, 10));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 10, &p), 0);
	ck_assert_uint_eq(pipe_backlog(&c.pipe[NETD_DOWN]), be.len);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], 10, &p), fe.len);
	/* heal: everything held comes out, nothing lost */
	fs.nfaults = 0;
	pipe_pump(&c, NETD_DOWN, &fs, 20);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 20, &p), be.len);
	ck_assert_mem_eq(p, be.data, be.len);
	pipe_written(&c.pipe[NETD_DOWN], 100);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 20, &p), be.len - 100);
	ck_assert_mem_eq(p, be.data + 100, be.len - 100);
	conn_free(&c);

	/* discard: held bytes are dropped instead */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=s link=l kind=stall dir=down discard=1");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 10));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 10));
	ck_assert_uint_eq(pipe_backlog(&c.pipe[NETD_DOWN]), 0);
	ck_assert_uint_eq(c.pipe[NETD_DOWN].stall_dropped, be.len);
	conn_free(&c);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

START_TEST(test_delay_bandwidth_and_order)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 3};
	Conn		c;
	const uint8_t *p;
	uint64_t	now = 1000000000;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 2, false);
	conn_init(&c, "l", 1, false);
	add_rule(&fs, "id=d link=l kind=delay dir=down ms=50");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, now));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, now));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now + 49999999, &p), 0);
	ck_assert_uint_eq(pipe_next_release(&c.pipe[NETD_DOWN]), now + 50000000);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now + 50000000, &p), be.len);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], now, &p), fe.len);
	conn_free(&c);

	/* bandwidth: 1000 bytes/s => the last byte leaves len ms later */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=b link=l kind=bandwidth rate=1000 dir=down");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, now));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, now));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now, &p), 0);
	{
		uint64_t	end = now + (uint64_t) be.len * 1000000;

		ck_assert_uint_lt(pipe_ready(&c.pipe[NETD_DOWN], end - 2000000, &p), be.len);
		ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], end + 1000000, &p), be.len);
	}
	conn_free(&c);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

/*
 * Lifting a shaping fault releases what it held: bytes queued by a
 * bandwidth or delay fault go out as soon as the fault is deleted or
 * expires, not at the release times it had given them.
 */
START_TEST(test_lifted_shaping_releases_held_bytes)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 3};
	Conn		c;
	const uint8_t *p;
	uint64_t	now = 1000000000;

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 2, false);

	/* bandwidth, then fault del */
	conn_init(&c, "l", 1, false);
	add_rule(&fs, "id=b link=l kind=bandwidth rate=1000 dir=down");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, now));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, now));
	ck_assert_uint_lt(pipe_ready(&c.pipe[NETD_DOWN], now + 1000, &p), be.len);
	/* still in force: pumping changes nothing */
	pipe_pump(&c, NETD_DOWN, &fs, now + 1000);
	ck_assert_uint_lt(pipe_ready(&c.pipe[NETD_DOWN], now + 1000, &p), be.len);
	fs.nfaults = 0;
	pipe_pump(&c, NETD_DOWN, &fs, now + 1000);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now + 1000, &p), be.len);
	conn_free(&c);

	/* a delay on another link does not hold this one's bytes back */
	conn_init(&c, "l", 1, false);
	add_rule(&fs, "id=d link=l kind=delay dir=down ms=50 duration=10ms");
	add_rule(&fs, "id=o link=other kind=delay dir=down ms=500");
	fs.faults[0].activated_ns = now;
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, now));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, now));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now + 20000000, &p), 0);
	faults_expire(&fs, now + 20000000);
	pipe_pump(&c, NETD_DOWN, &fs, now + 20000000);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], now + 20000000, &p), be.len);
	conn_free(&c);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

START_TEST(test_cut_close_reset_triggers_expiry)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 3};
	Conn		c;
	const uint8_t *p;
	char		buf[1024];

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 3, false);

	/* cut_after: exactly N bytes, then the connection is to be closed */
	conn_init(&c, "l", 1, false);
	add_rule(&fs, "id=cut link=l kind=cut_after bytes=100 dir=down");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 1));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1, &p), 100);
	ck_assert(c.want_close);
	ck_assert_ptr_nonnull(strstr(c.close_reason, "cut_after 100 bytes down"));
	conn_free(&c);

	/* reset triggered by LSN: only once WAL past it has been sent */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=rs link=l kind=reset after_lsn=0/10005DC");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	conn_check_actions(&c, &fs, 1);
	ck_assert(!c.want_reset);
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 1));
	conn_check_actions(&c, &fs, 1);
	ck_assert(c.want_reset);
	conn_free(&c);

	/* close with an app filter that does not match: nothing */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=cl link=l kind=close app=other");
	add_rule(&fs, "id=cl2 link=other kind=close");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	conn_check_actions(&c, &fs, 1);
	ck_assert(!c.want_close);
	conn_free(&c);

	/* after_bytes trigger, duration expiry */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=st link=l kind=stall dir=down duration=2");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1000));
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 1000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1000, &p), 0);
	ck_assert_uint_eq(faults_next_expiry(&fs), 1000 + 2000000000u);
	{
		FILE	   *tf;
		char	   *t = NULL;
		size_t		tl = 0;
		Trace		tr = {0};

		tf = open_memstream(&t, &tl);
		tr.f = tf;
		fs.trace = &tr;
		faults_expire(&fs, 1000 + 1999999999u);
		ck_assert(!fs.faults[0].expired);
		faults_expire(&fs, 1000 + 2000000000u);
		ck_assert(fs.faults[0].expired);
		fclose(tf);
		ck_assert_ptr_nonnull(strstr(t, "\"event\":\"expire\""));
		free(t);
		fs.trace = NULL;
	}
	ck_assert_uint_eq(faults_next_expiry(&fs), UINT64_MAX);
	pipe_pump(&c, NETD_DOWN, &fs, 3000000000u);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 3000000000u, &p), be.len);
	conn_free(&c);

	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	add_rule(&fs, "id=ab link=l kind=drop msg=h after_bytes=200");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	ck_assert_uint_lt(fs.faults[0].fires, 3);
	ck_assert_uint_gt(fs.faults[0].fires, 0);
	conn_free(&c);

	/* a protocol error is reported, not hidden */
	conn_init(&c, "l", 1, false);
	fs.nfaults = 0;
	ck_assert(!pipe_input(&c, NETD_UP, (const uint8_t *) "GET / HTTP/1.0\r\n", 16, &fs, 1));
	ck_assert_ptr_nonnull(strstr(c.pipe[NETD_UP].error, "startup packet at stream offset 0"));
	conn_free(&c);
	(void) buf;
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

/* The zero-copy allowance: only the rest of a cleanly forwarded long body. */
START_TEST(test_splice_allowance)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 1};
	Conn		c;
	uint8_t		wal[100000];
	size_t		head;
	const uint8_t *p;

	memset(wal, 0x5a, sizeof(wal));
	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 0, false);
	head = be.len;
	repl_put_xlogdata(&be, 0x2000000, 0x2000000 + sizeof(wal), 0, wal, sizeof(wal));
	wire_put_copy_done(&be);
	conn_init(&c, "l", 1, false);
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	/* header + 2000 bytes of the XLogData: reported, moved, rest allowed */
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, head + 2000, &fs, 1));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1, &p), head + 2000);
	ck_assert_uint_eq(pipe_splice_allowance(&c, NETD_DOWN, &fs, 1), 0);	/* output not empty */
	pipe_written(&c.pipe[NETD_DOWN], head + 2000);
	{
		size_t		allow = pipe_splice_allowance(&c, NETD_DOWN, &fs, 1);

		ck_assert_uint_eq(allow, 5 + 25 + sizeof(wal) - 2000);
		/* a stall or a bandwidth limit closes the path */
		add_rule(&fs, "id=s link=l kind=stall dir=down");
		ck_assert_uint_eq(pipe_splice_allowance(&c, NETD_DOWN, &fs, 1), 0);
		fs.nfaults = 0;
		add_rule(&fs, "id=b link=l kind=bandwidth rate=10 dir=down");
		ck_assert_uint_eq(pipe_splice_allowance(&c, NETD_DOWN, &fs, 1), 0);
		fs.nfaults = 0;
		add_rule(&fs, "id=c link=l kind=cut_after bytes=1G dir=down");
		ck_assert_uint_eq(pipe_splice_allowance(&c, NETD_DOWN, &fs, 1), 0);
		fs.nfaults = 0;
		/* move all of it "outside", then the CopyDone is framed normally */
		pipe_spliced(&c, NETD_DOWN, allow);
		ck_assert_uint_eq(c.pipe[NETD_DOWN].spliced, allow);
		ck_assert_uint_eq(pipe_splice_allowance(&c, NETD_DOWN, &fs, 1), 0);
		ck_assert(pipe_input(&c, NETD_DOWN, be.data + head + 2000 + allow, 5, &fs, 1));
		ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1, &p), 5);
		ck_assert_int_eq(p[0], 'c');
	}
	conn_free(&c);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

/* ------------------------------------------------------------ raw links */

/*
 * Feed two opaque streams through a raw connection opened by `src`, in
 * alternating pieces of `piece` bytes (0: all at once), the client first.
 */
static Run
run_raw(const uint8_t *fe, size_t felen, const uint8_t *be, size_t belen, FaultSet *fs,
		size_t piece, const char *src)
{
	Run			r;
	FILE	   *tf;
	Trace		trace = {0};
	char	   *buf = NULL;
	size_t		buflen = 0;
	size_t		pos[2] = {0, 0};
	const uint8_t *data[2] = {fe, be};
	size_t		len[2] = {felen, belen};
	uint64_t	now = 1000;

	memset(&r, 0, sizeof(r));
	wire_buf_init(&r.out[0]);
	wire_buf_init(&r.out[1]);
	tf = open_memstream(&buf, &buflen);
	trace.f = tf;
	trace.seed = fs->seed;
	fs->trace = &trace;
	conn_init(&r.c, "l", 1, false);
	conn_set_src(&r.c, src, "127.0.0.11:40000");
	conn_set_raw(&r.c, src, 0);
	r.ok = true;
	while (pos[0] < len[0] || pos[1] < len[1])
	{
		for (int d = 0; d < 2; d++)
		{
			size_t		k = len[d] - pos[d];

			if (piece > 0 && piece < k)
				k = piece;
			if (k == 0)
				continue;
			r.ok &= pipe_input(&r.c, (NetdDir) d, data[d] + pos[d], k, fs, now);
			pos[d] += k;
			conn_check_actions(&r.c, fs, now);
			collect(&r, now);
		}
		now += 1000;
	}
	for (int d = 0; d < 2; d++)
		pipe_pump(&r.c, (NetdDir) d, fs, UINT64_MAX - 1);
	collect(&r, UINT64_MAX - 1);
	fclose(tf);
	r.trace = strip_times(buf);
	r.trace_len = strlen(r.trace);
	free(buf);
	fs->trace = NULL;
	return r;
}

static const char http_req[] = "GET /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.20:2379\r\n"
	"Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"key\":\"YQ==\"}";
static const char http_resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	"Content-Length: 2\r\n\r\n{}";
/* the HTTP/2 connection preface gRPC (etcdctl) opens with, then a SETTINGS frame */
static const uint8_t h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/*
 * A raw link carries what a PostgreSQL link refuses: HTTP, the HTTP/2
 * preface, arbitrary bytes; unchanged, untracked, keyed by the source.
 */
START_TEST(test_raw_link_carries_any_protocol)
{
	FaultSet	fs = {.seed = 1};
	Run			r;
	Conn		c;

	/* a PostgreSQL link closes on it (the behaviour raw links exist for) */
	conn_init(&c, "l", 1, false);
	ck_assert(!pipe_input(&c, NETD_UP, (const uint8_t *) http_req, strlen(http_req), &fs, 1));
	ck_assert_ptr_nonnull(strstr(c.pipe[NETD_UP].error, "startup packet at stream offset 0"));
	conn_free(&c);

	r = run_raw((const uint8_t *) http_req, strlen(http_req), (const uint8_t *) http_resp,
				strlen(http_resp), &fs, 0, "pg1");
	ck_assert(r.ok);
	ck_assert_uint_eq(r.out[0].len, strlen(http_req));
	ck_assert_mem_eq(r.out[0].data, http_req, strlen(http_req));
	ck_assert_uint_eq(r.out[1].len, strlen(http_resp));
	ck_assert_mem_eq(r.out[1].data, http_resp, strlen(http_resp));
	ck_assert_str_eq(r.c.info.key, "l/pg1/0");
	ck_assert(!r.c.info.startup_seen);
	ck_assert_uint_eq(r.c.pipe[NETD_UP].nmsgs, 0);
	ck_assert_uint_eq(r.trace_len, 0);	/* no startup, no command: nothing to say */
	ck_assert_uint_eq(pipe_splice_allowance(&r.c, NETD_UP, &fs, 1), 0);
	run_free(&r);

	r = run_raw(h2_preface, sizeof(h2_preface) - 1, (const uint8_t *) "\x00\x00\x00\x04\x01", 5,
				&fs, 1, "-");
	ck_assert(r.ok);
	ck_assert_uint_eq(r.out[0].len, sizeof(h2_preface) - 1);
	ck_assert_mem_eq(r.out[0].data, h2_preface, sizeof(h2_preface) - 1);
	ck_assert_uint_eq(r.out[1].len, 5);
	ck_assert_str_eq(r.c.info.key, "l/-/0");
	run_free(&r);
}
END_TEST

/* Every byte-level fault acts on a raw connection. */
START_TEST(test_raw_byte_level_faults)
{
	FaultSet	fs = {.seed = 5};
	Run			r;
	Conn		c;
	const uint8_t *p;
	size_t		reqlen = strlen(http_req);
	size_t		resplen = strlen(http_resp);

	/* cut_after: exactly 10 bytes of the request, then close */
	add_rule(&fs, "id=c link=l kind=cut_after bytes=10 dir=up");
	r = run_raw((const uint8_t *) http_req, reqlen, (const uint8_t *) http_resp, resplen, &fs, 3, "pg1");
	ck_assert_uint_eq(r.out[0].len, 10);
	ck_assert_mem_eq(r.out[0].data, http_req, 10);
	ck_assert(r.c.want_close);
	ck_assert_ptr_nonnull(strstr(r.trace, "\"event\":\"fault\",\"rule\":\"c\",\"kind\":\"cut_after\""));
	ck_assert_ptr_nonnull(strstr(r.trace, "\"src\":\"pg1\""));
	run_free(&r);

	/* corrupt at_offset: one byte of the response, bit 3 */
	fs.nfaults = 0;
	add_rule(&fs, "id=x link=l kind=corrupt at_offset=9 dir=down bit=3");
	r = run_raw((const uint8_t *) http_req, reqlen, (const uint8_t *) http_resp, resplen, &fs, 0, "pg1");
	ck_assert_uint_eq(r.out[1].len, resplen);
	ck_assert_int_eq(r.out[1].data[9] ^ (uint8_t) http_resp[9], 0x08);
	ck_assert_mem_eq(r.out[0].data, http_req, reqlen);
	run_free(&r);

	/* reset and close */
	fs.nfaults = 0;
	add_rule(&fs, "id=rs link=l kind=reset after_bytes=20 dir=up");
	r = run_raw((const uint8_t *) http_req, reqlen, (const uint8_t *) http_resp, resplen, &fs, 0, "pg1");
	ck_assert(r.c.want_reset);
	run_free(&r);
	fs.nfaults = 0;
	add_rule(&fs, "id=cl link=l kind=close");
	r = run_raw((const uint8_t *) http_req, reqlen, (const uint8_t *) http_resp, resplen, &fs, 0, "pg1");
	ck_assert(r.c.want_close && !r.c.want_reset);
	run_free(&r);

	/* stall (and partition): held, then released in order on heal */
	for (int k = 0; k < 2; k++)
	{
		conn_init(&c, "l", 1, false);
		conn_set_src(&c, "pg1", NULL);
		conn_set_raw(&c, "pg1", 0);
		fs.nfaults = 0;
		add_rule(&fs, k == 0 ? "id=s link=l kind=stall" : "id=s link=l kind=partition");
		ck_assert(pipe_input(&c, NETD_UP, (const uint8_t *) http_req, reqlen, &fs, 10));
		ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], 10, &p), 0);
		ck_assert_uint_eq(pipe_backlog(&c.pipe[NETD_UP]), reqlen);
		fs.nfaults = 0;
		pipe_pump(&c, NETD_UP, &fs, 20);
		ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], 20, &p), reqlen);
		ck_assert_mem_eq(p, http_req, reqlen);
		conn_free(&c);
	}

	/* delay: released 50 ms after arrival; bandwidth: at the rate */
	conn_init(&c, "l", 1, false);
	conn_set_raw(&c, "-", 0);
	fs.nfaults = 0;
	add_rule(&fs, "id=d link=l kind=delay ms=50 dir=down");
	ck_assert(pipe_input(&c, NETD_DOWN, (const uint8_t *) http_resp, resplen, &fs, 1000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1000 + 49999999, &p), 0);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1000 + 50000000, &p), resplen);
	/* a later request within the same 4 kB block is delayed from its own arrival */
	ck_assert(pipe_input(&c, NETD_UP, (const uint8_t *) http_req, reqlen, &fs, 2000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], 2000, &p), reqlen);	/* up is not delayed */
	conn_free(&c);

	/*
	 * A rule added in the middle of a block applies to the bytes that come
	 * after it (an idle HTTP connection must not wait for the next 4 kB),
	 * while the bytes already there keep their plan.
	 */
	conn_init(&c, "l", 1, false);
	conn_set_raw(&c, "-", 0);
	fs.nfaults = 0;
	ck_assert(pipe_input(&c, NETD_DOWN, (const uint8_t *) http_resp, resplen, &fs, 1000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 1000, &p), resplen);
	pipe_written(&c.pipe[NETD_DOWN], resplen);
	{
		Fault		f;
		char		rule[] = "id=d2 link=l kind=delay ms=50 dir=down";
		char	   *w[8];
		int			n = netd_split_words(rule, w, 8);

		ck_assert(fault_parse(&f, n, w, NULL));
		faults_add(&fs, &f);
	}
	ck_assert(pipe_input(&c, NETD_DOWN, (const uint8_t *) http_resp, resplen, &fs, 2000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 2000, &p), 0);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 2000 + 50000000, &p), resplen);
	pipe_written(&c.pipe[NETD_DOWN], resplen);
	ck_assert_uint_eq(c.pipe[NETD_DOWN].nplans, 1);	/* the rest of block 0, planned again */
	/* and removed mid-block: the next bytes go at once */
	faults_remove_at(&fs, 0);
	ck_assert(pipe_input(&c, NETD_DOWN, (const uint8_t *) http_resp, resplen, &fs, 60000000));
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_DOWN], 60000000, &p), resplen);
	conn_free(&c);
	fs.nfaults = 0;

	conn_init(&c, "l", 1, false);
	conn_set_raw(&c, "-", 0);
	fs.nfaults = 0;
	add_rule(&fs, "id=b link=l kind=bandwidth rate=1000 dir=up");
	ck_assert(pipe_input(&c, NETD_UP, (const uint8_t *) http_req, reqlen, &fs, 0));
	ck_assert_uint_lt(pipe_ready(&c.pipe[NETD_UP], reqlen * 1000000 - 2000000, &p), reqlen);
	ck_assert_uint_eq(pipe_ready(&c.pipe[NETD_UP], reqlen * 1000000 + 1000000, &p), reqlen);
	conn_free(&c);
}
END_TEST

/* Decisions on a raw stream are per block of offset: pieces never change them. */
START_TEST(test_raw_pieces_do_not_change_decisions)
{
	static uint8_t fe[20000],
				be[30000];
	FaultSet	fs = {.seed = 77};
	Run			ref;
	static const size_t pieces[] = {1, 3, 100, 4096, 7000};

	for (size_t i = 0; i < sizeof(fe); i++)
		fe[i] = (uint8_t) (i * 7 + 1);
	for (size_t i = 0; i < sizeof(be); i++)
		be[i] = (uint8_t) (i * 13 + 5);
	add_rule(&fs, "id=j link=l kind=delay ms=1 jitter_ms=40 prob=0.6");
	add_rule(&fs, "id=x link=l kind=corrupt at_offset=12345 dir=down");
	ref = run_raw(fe, sizeof(fe), be, sizeof(be), &fs, 0, "pg2");
	ck_assert(ref.ok);
	ck_assert_ptr_nonnull(strstr(ref.trace, "\"delay_us\":"));
	ck_assert_ptr_nonnull(strstr(ref.trace, "\"rule\":\"x\""));
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
	{
		Run			r;
		char	   *a,
				   *b;

		reset_faults(&fs);
		r = run_raw(fe, sizeof(fe), be, sizeof(be), &fs, pieces[i], "pg2");
		ck_assert_uint_eq(r.out[0].len, sizeof(fe));
		ck_assert_uint_eq(r.out[1].len, sizeof(be));
		ck_assert_mem_eq(r.out[0].data, ref.out[0].data, sizeof(fe));
		ck_assert_mem_eq(r.out[1].data, ref.out[1].data, sizeof(be));
		for (int d = 0; d < 2; d++)
		{
			a = dir_lines(ref.trace, d ? "down" : "up");
			b = dir_lines(r.trace, d ? "down" : "up");
			ck_assert_str_eq(a, b);
			free(a);
			free(b);
		}
		run_free(&r);
	}
	run_free(&ref);
}
END_TEST

/*
 * src= rules see the connection's source node; "activate" and "fault"
 * name it.  A connection renamed by "node add" matches by its new name.
 */
START_TEST(test_rules_by_source_node)
{
	WireBuf		fe,
				be;
	FaultSet	fs = {.seed = 1};
	Conn		c;
	char	   *text = NULL;
	size_t		len = 0;
	FILE	   *tf = open_memstream(&text, &len);
	Trace		tr = {.f = tf};

	wire_buf_init(&fe);
	wire_buf_init(&be);
	build_conv(&fe, &be, 2, false);
	fs.trace = &tr;
	add_rule(&fs, "id=p link=l kind=partition src=pg2,pg3");

	/* a PostgreSQL connection from pg1: untouched, and its key is unchanged */
	conn_init(&c, "l", 1, false);
	conn_set_src(&c, "pg1", "127.0.0.11:5000");
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 1));
	ck_assert(!pipe_stalled(&c, NETD_UP, &fs, 1));
	ck_assert_str_eq(c.src_addr, "127.0.0.11:5000");
	/* renamed pg2 (node add): held from its next byte */
	conn_set_src(&c, "pg2", NULL);
	ck_assert_str_eq(c.src_addr, "127.0.0.11:5000");
	ck_assert(pipe_input(&c, NETD_DOWN, be.data, be.len, &fs, 2));
	ck_assert(pipe_stalled(&c, NETD_DOWN, &fs, 2));
	ck_assert_uint_eq(pipe_backlog(&c.pipe[NETD_DOWN]), be.len);
	conn_free(&c);

	/* no source known (replay): a src= rule never applies */
	conn_init(&c, "l", 2, false);
	ck_assert(pipe_input(&c, NETD_UP, fe.data, fe.len, &fs, 3));
	ck_assert(!pipe_stalled(&c, NETD_UP, &fs, 3));
	conn_free(&c);

	fclose(tf);
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"activate\",\"rule\":\"p\",\"kind\":\"partition\","
								 "\"link\":\"l\",\"dir\":\"down\",\"conn\":\"l/app1/0\",\"src\":\"pg2\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"startup\",\"link\":\"l\",\"dir\":\"up\","
								 "\"conn\":\"l/app1/0\",\"src\":\"pg1\""));
	free(text);
	wire_buf_free(&fe);
	wire_buf_free(&be);
}
END_TEST

/* The loop's wait for the next release: an overdue one is served at once, never after the cap. */
START_TEST(test_wait_for_overdue_release)
{
	const uint64_t cap = 1000000000u;

	ck_assert_uint_eq(pipe_wait_ns(5000, 5000, cap), 0);
	ck_assert_uint_eq(pipe_wait_ns(4999, 5000, cap), 0);	/* fell due while busy */
	ck_assert_uint_eq(pipe_wait_ns(0, UINT64_MAX - 1, cap), 0);
	ck_assert_uint_eq(pipe_wait_ns(5000 + 780000, 5000, cap), 780000);
	ck_assert_uint_eq(pipe_wait_ns(5000 + cap + 1, 5000, cap), cap);
	ck_assert_uint_eq(pipe_wait_ns(UINT64_MAX, 5000, cap), cap);	/* nothing scheduled */
}
END_TEST

START_TEST(test_names)
{
	ck_assert_int_eq(netd_msg_class('w'), MC_W);
	ck_assert_int_eq(netd_msg_class('Q'), MC_QUERY);
	ck_assert_int_eq(netd_msg_class('d'), MC_OTHER_COPY);
	ck_assert_int_eq(netd_msg_class('x'), MC_OTHER);
	ck_assert_str_eq(netd_msg_class_name(MC_H), "h");
	ck_assert_str_eq(netd_msg_class_name(99), "?");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("netd_pipe");
	TCase	   *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tracker_on_capture);
	tcase_add_test(tc, test_pieces_do_not_change_decisions);
	tcase_add_test(tc, test_drop_keeps_framing);
	tcase_add_test(tc, test_corrupt_at_lsn_and_offset);
	tcase_add_test(tc, test_corrupt_at_lsn_is_keyed_on_the_lsn);
	tcase_add_test(tc, test_corrupt_nth_ignores_keepalives_and_reconnects);
	tcase_add_test(tc, test_ssl_refused_by_netd);
	tcase_add_test(tc, test_tls_passed_through_is_opaque);
	tcase_add_test(tc, test_stall_holds_then_releases);
	tcase_add_test(tc, test_delay_bandwidth_and_order);
	tcase_add_test(tc, test_lifted_shaping_releases_held_bytes);
	tcase_add_test(tc, test_cut_close_reset_triggers_expiry);
	tcase_add_test(tc, test_splice_allowance);
	tcase_add_test(tc, test_raw_link_carries_any_protocol);
	tcase_add_test(tc, test_raw_byte_level_faults);
	tcase_add_test(tc, test_raw_pieces_do_not_change_decisions);
	tcase_add_test(tc, test_rules_by_source_node);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_wait_for_overdue_release);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
