/*
 * test_wire.c — protocol 3.0 framing: the incremental decoder (pieces of any
 * size give the same messages, over hand-made and real captured streams),
 * its errors, the body parsers and the byte-exact encoders.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/decision.h"
#include "walsim/replmsg.h"
#include "walsim/wire.h"
#include "unit_support.h"

/* ------------------------------------------------------------ helpers */

/* A growing text log of decoded messages. */
typedef struct Log
{
	char	   *text;
	size_t		len;
	size_t		cap;
	int			nmsgs;
	bool		failed;
	char		error[WALSIM_ERROR_MAX];
} Log;

static void
log_add(Log *l, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void
log_add(Log *l, const char *fmt,...)
{
	va_list		ap;
	char		line[512];
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->len + (size_t) n + 1 > l->cap)
	{
		l->cap = (l->cap + (size_t) n + 1) * 2;
		l->text = realloc(l->text, l->cap);
	}
	memcpy(l->text + l->len, line, (size_t) n + 1);
	l->len += (size_t) n;
}

static uint64_t
fnv(const uint8_t *p, size_t n)
{
	uint64_t	h = UINT64_C(1469598103934665603);

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}

/*
 * Decode a whole stream fed in pieces: piece 0 means all at once, a positive
 * number that fixed size, -1 sizes drawn from the decision function.
 * For a backend stream, `answer_first` announces an SSL answer at the start.
 */
static Log
decode_stream(WireDirection dir, const uint8_t *data, size_t len, int piece,
			  uint32_t capture, bool answer_first, uint64_t seed)
{
	WireDecoder d;
	Log			l = {0};
	size_t		pos = 0;
	uint64_t	npiece = 0;

	wire_decoder_init(&d, dir, 0, capture);
	if (answer_first)
		wire_decoder_expect_answer(&d);
	log_add(&l, "%s", "");
	while (pos < len && !l.failed)
	{
		size_t		n = len - pos;
		size_t		off = 0;

		if (piece > 0 && (size_t) piece < n)
			n = (size_t) piece;
		else if (piece < 0)
		{
			uint64_t	c[1] = {npiece++};
			size_t		r = (size_t) decision_uniform(decision_u64(seed, "piece", c, 1), 1, 300);

			if (r < n)
				n = r;
		}
		while (off < n)
		{
			WireMessage m;
			WalsimError err;
			size_t		used;
			WireStatus	st = wire_decoder_next(&d, data + pos + off, n - off, &used, &m, &err);

			off += used;
			if (st == WIRE_FAILED)
			{
				l.failed = true;
				snprintf(l.error, sizeof(l.error), "%s", err.message);
				log_add(&l, "FAILED %s\n", err.message);
				break;
			}
			if (st == WIRE_NEED_MORE)
			{
				ck_assert_uint_eq(used, n - (off - used));
				break;
			}
			log_add(&l, "%" PRIu64 " k%d t%d c%u @%" PRIu64 " sz%" PRIu64 " h%u b%u/%u %d %016" PRIx64 "\n",
					m.index, m.kind, m.type, m.code, m.offset, m.size,
					m.header_len, m.body_avail, m.body_len, m.body_complete,
					fnv(m.body, m.body_avail));
			l.nmsgs++;
		}
		pos += n;
	}
	wire_decoder_free(&d);
	return l;
}

static void
assert_same_in_pieces(WireDirection dir, const uint8_t *data, size_t len,
					  uint32_t capture, bool answer_first)
{
	Log			whole = decode_stream(dir, data, len, 0, capture, answer_first, 0);
	const int	pieces[] = {1, 2, 3, 5, 7, 13, 64, 4096, -1, -1};
	/* long streams: fewer sizes, so Valgrind runs stay short */
	size_t		npieces = len > 20000 ? 4 : sizeof(pieces) / sizeof(pieces[0]);
	const int	long_pieces[] = {1, 7, 4096, -1};

	for (size_t i = 0; i < npieces; i++)
	{
		int			piece = len > 20000 ? long_pieces[i] : pieces[i];
		Log			p = decode_stream(dir, data, len, piece, capture, answer_first, i);

		ck_assert_msg(strcmp(whole.text, p.text) == 0,
					  "piece size %d differs from all-at-once", piece);
		free(p.text);
	}
	free(whole.text);
}

/* A small frontend conversation: SSLRequest, startup, queries, CopyData r/h. */
static void
build_frontend(WireBuf *b)
{
	const char *keys[] = {"user", "database", "replication", "application_name"};
	const char *vals[] = {"postgres", "replication", "true", "walreceiver"};
	ReplStatus	s = {.write = 0x3000000, .flush = 0x3000000, .apply = 0x2FFFFFF};
	ReplFeedback f = {.xmin = 7};

	wire_put_ssl_request(b);
	wire_put_startup(b, WIRE_PROTOCOL_3_0, keys, vals, 4);
	wire_put_password(b, "secret");
	wire_put_query(b, "IDENTIFY_SYSTEM");
	wire_put_query(b, "START_REPLICATION 0/3000000 TIMELINE 1");
	repl_put_status(b, &s);
	repl_put_feedback(b, &f);
	wire_put_copy_done(b);
	wire_put_terminate(b);
}

static void
build_backend(WireBuf *b)
{
	WireField	fields[] = {
		{"systemid", 0, 0, 25, -1, -1, 0},
		{"timeline", 0, 0, 23, 4, -1, 0},
		{"xlogpos", 0, 0, 25, -1, -1, 0},
		{"dbname", 0, 0, 25, -1, -1, 0},
	};
	const char *row[] = {"7712584000942599484", "1", "0/3000000", NULL};
	uint8_t		wal[300];
	ReplKeepalive k = {.wal_end = 0x3000BB8, .reply_requested = true};
	const char *mech[] = {"SCRAM-SHA-256"};
	uint8_t		salt[4] = {1, 2, 3, 4};

	for (size_t i = 0; i < sizeof(wal); i++)
		wal[i] = (uint8_t) (i * 7);
	wire_put_u8(b, 'N');		/* SSL refused */
	wire_put_auth_sasl(b, mech, 1);
	wire_put_auth_sasl_continue(b, "r=abc", 5);
	wire_put_auth_sasl_final(b, "v=xyz", 5);
	wire_put_auth_md5(b, salt);
	wire_put_auth_cleartext(b);
	wire_put_auth_ok(b);
	wire_put_parameter_status(b, "server_version", "15.18");
	wire_put_backend_key_data(b, 4242, 0xDEADBEEF);
	wire_put_ready_for_query(b, 'I');
	wire_put_row_description(b, fields, 4);
	wire_put_data_row(b, row, NULL, 4);
	wire_put_command_complete(b, "IDENTIFY_SYSTEM");
	wire_put_notice(b, "WARNING", "01000", "careful", NULL);
	wire_put_copy_both_response(b, 0, NULL, 0);
	repl_put_xlogdata(b, 0x3000000, 0x3000BB8, 0, wal, sizeof(wal));
	repl_put_keepalive(b, &k);
	wire_put_copy_done(b);
	wire_put_error(b, "FATAL", "57P01", "terminating connection", "detail here");
}

/* ------------------------------------------------------------ decoder tests */

START_TEST(test_frontend_pieces)
{
	WireBuf		b;

	wire_buf_init(&b);
	build_frontend(&b);
	assert_same_in_pieces(WIRE_FRONTEND, b.data, b.len, 0, false);
	assert_same_in_pieces(WIRE_FRONTEND, b.data, b.len, 8, false);
	wire_buf_free(&b);
}
END_TEST

START_TEST(test_backend_pieces)
{
	WireBuf		b;

	wire_buf_init(&b);
	build_backend(&b);
	assert_same_in_pieces(WIRE_BACKEND, b.data, b.len, 0, true);
	/* a capture limit smaller than the XLogData body: reported early */
	assert_same_in_pieces(WIRE_BACKEND, b.data, b.len, 25, true);
	wire_buf_free(&b);
}
END_TEST

START_TEST(test_frontend_sequence)
{
	WireBuf		b;
	WireDecoder d;
	WireMessage m;
	size_t		used,
				pos = 0;
	WireKind	kinds[16];
	char		types[16];
	int			n = 0;

	wire_buf_init(&b);
	build_frontend(&b);
	wire_decoder_init(&d, WIRE_FRONTEND, 0, 0);
	while (pos < b.len)
	{
		WireStatus	st = wire_decoder_next(&d, b.data + pos, b.len - pos, &used, &m, NULL);

		pos += used;
		ck_assert_int_ne(st, WIRE_FAILED);
		if (st == WIRE_NEED_MORE)
			break;
		ck_assert_int_lt(n, 16);
		kinds[n] = m.kind;
		types[n] = m.type;
		if (m.kind == WIRE_MSG_STARTUP)
		{
			WireStartup s;
			WalsimError err;

			ck_assert_uint_eq(m.code, WIRE_PROTOCOL_3_0);
			ck_assert(wire_parse_startup(m.code, m.body, m.body_len, &s, &err));
			ck_assert_int_eq(s.nparams, 4);
			ck_assert_str_eq(wire_startup_get(&s, "application_name"), "walreceiver");
			ck_assert_str_eq(wire_startup_get(&s, "replication"), "true");
			ck_assert_ptr_null(wire_startup_get(&s, "options"));
		}
		if (m.kind == WIRE_MSG_TYPED && m.type == 'Q' && n == 4)
		{
			const char *sql;

			ck_assert(wire_parse_query(m.body, m.body_len, &sql, NULL));
			ck_assert_str_eq(sql, "START_REPLICATION 0/3000000 TIMELINE 1");
		}
		n++;
	}
	ck_assert_uint_eq(pos, b.len);
	ck_assert_int_eq(n, 9);
	ck_assert_int_eq(kinds[0], WIRE_MSG_SSL_REQUEST);
	ck_assert_int_eq(kinds[1], WIRE_MSG_STARTUP);
	ck_assert_int_eq(types[2], 'p');
	ck_assert_int_eq(types[5], 'd');
	ck_assert_int_eq(types[7], 'c');
	ck_assert_int_eq(types[8], 'X');
	ck_assert(!wire_decoder_in_message(&d));
	wire_decoder_free(&d);
	wire_buf_free(&b);
}
END_TEST

START_TEST(test_zero_copy_and_capture)
{
	WireBuf		b;
	WireDecoder d;
	WireMessage m;
	size_t		used;
	uint8_t		big[1000];

	memset(big, 'x', sizeof(big));
	wire_buf_init(&b);
	wire_put_copy_data(&b, big, sizeof(big));
	wire_put_copy_done(&b);

	/* whole message in one piece: the body points into the input */
	wire_decoder_init(&d, WIRE_BACKEND, 0, 0);
	ck_assert_int_eq(wire_decoder_next(&d, b.data, b.len, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_ptr_eq(m.body, b.data + 5);
	ck_assert(m.body_complete);
	ck_assert_uint_eq(used, 1005);
	wire_decoder_free(&d);

	/* capture 100: reported after 105 bytes; the rest passes uncopied */
	wire_decoder_init(&d, WIRE_BACKEND, 0, 100);
	ck_assert_int_eq(wire_decoder_next(&d, b.data, b.len, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_uint_eq(used, 105);
	ck_assert(!m.body_complete);
	ck_assert_uint_eq(m.body_avail, 100);
	ck_assert_uint_eq(m.body_len, 1000);
	ck_assert_uint_eq(m.size, 1005);
	ck_assert(wire_decoder_in_message(&d));
	ck_assert_uint_eq(wire_decoder_remaining(&d), 900);
	ck_assert_int_eq(wire_decoder_next(&d, b.data + 105, 300, &used, &m, NULL), WIRE_NEED_MORE);
	/* 100 bytes moved by the caller without the decoder (splice) */
	ck_assert(!wire_decoder_skip(&d, 601));
	ck_assert(wire_decoder_skip(&d, 100));
	ck_assert_uint_eq(wire_decoder_remaining(&d), 500);
	ck_assert_int_eq(wire_decoder_next(&d, b.data + 505, b.len - 505, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_int_eq(m.type, 'c');
	ck_assert_uint_eq(m.offset, 1005);
	ck_assert_uint_eq(m.index, 1);
	ck_assert_uint_eq(wire_decoder_remaining(&d), 0);
	ck_assert(!wire_decoder_skip(&d, 1));	/* not inside a body */
	wire_decoder_free(&d);
	wire_buf_free(&b);
}
END_TEST

/* Every prefix of a stream: exactly the complete messages are reported. */
START_TEST(test_truncated_at_each_byte)
{
	WireBuf		b;
	Log			whole;

	wire_buf_init(&b);
	build_backend(&b);
	whole = decode_stream(WIRE_BACKEND, b.data, b.len, 0, 0, true, 0);
	for (size_t cut = 0; cut < b.len; cut++)
	{
		/* odd cuts a byte at a time, even ones at once */
		Log			part = decode_stream(WIRE_BACKEND, b.data, cut, cut % 2 ? 1 : 0, 0, true, 0);

		ck_assert(!part.failed);
		/* the prefix's log is a prefix of the whole log, ending at a line */
		ck_assert_msg(strncmp(whole.text, part.text, part.len) == 0, "cut %zu", cut);
		ck_assert(part.len == 0 || part.text[part.len - 1] == '\n');
		ck_assert_int_lt(part.nmsgs, whole.nmsgs);
		free(part.text);
	}
	free(whole.text);

	wire_buf_reset(&b);
	build_frontend(&b);
	whole = decode_stream(WIRE_FRONTEND, b.data, b.len, 0, 0, false, 0);
	for (size_t cut = 0; cut < b.len; cut++)
	{
		Log			part = decode_stream(WIRE_FRONTEND, b.data, cut, 3, 0, false, 0);

		ck_assert(!part.failed);
		ck_assert(strncmp(whole.text, part.text, part.len) == 0);
		ck_assert_int_lt(part.nmsgs, whole.nmsgs);
		free(part.text);
	}
	free(whole.text);
	wire_buf_free(&b);
}
END_TEST

/* Decode raw bytes and return the error (or "" if none). */
static const char *
decode_error(WireDirection dir, const uint8_t *data, size_t len, uint32_t max,
			 bool answer)
{
	static char out[WALSIM_ERROR_MAX];
	WireDecoder d;
	size_t		pos = 0;

	out[0] = '\0';
	wire_decoder_init(&d, dir, max, 0);
	if (answer)
		wire_decoder_expect_answer(&d);
	/* one byte at a time and all at once must fail the same way */
	for (int pass = 0; pass < 2; pass++)
	{
		char		first[WALSIM_ERROR_MAX] = "";

		if (pass == 1)
		{
			memcpy(first, out, sizeof(first));
			wire_decoder_free(&d);
			wire_decoder_init(&d, dir, max, 0);
			if (answer)
				wire_decoder_expect_answer(&d);
			out[0] = '\0';
		}
		pos = 0;
		while (pos < len)
		{
			WireMessage m;
			WalsimError err;
			size_t		used;
			size_t		n = pass == 0 ? len - pos : 1;
			WireStatus	st = wire_decoder_next(&d, data + pos, n, &used, &m, &err);

			pos += used;
			if (st == WIRE_FAILED)
			{
				snprintf(out, sizeof(out), "%s", err.message);
				/* stays failed */
				ck_assert_int_eq(wire_decoder_next(&d, data, len, &used, &m, &err), WIRE_FAILED);
				ck_assert_str_eq(err.message, out);
				break;
			}
		}
		if (pass == 1)
			ck_assert_str_eq(first, out);
	}
	wire_decoder_free(&d);
	return out;
}

START_TEST(test_malformed)
{
	/* typed length below 4 */
	const uint8_t short_len[] = {'Q', 0, 0, 0, 3};
	/* typed length over a 1000-byte limit */
	const uint8_t long_len[] = {'d', 0, 0, 0x10, 0};
	/* over the default limit (1 GB - 1) */
	const uint8_t huge[] = {'d', 0x7F, 0xFF, 0xFF, 0xFF};
	const uint8_t startup_short[] = {0, 0, 0, 7, 0, 3, 0, 0};
	const uint8_t startup_long[] = {0, 0, 0x27, 0x11, 0, 3, 0, 0};
	const uint8_t ssl_long[] = {0, 0, 0, 12, 0x04, 0xD2, 0x16, 0x2F, 0, 0, 0, 0};
	const uint8_t cancel_short[] = {0, 0, 0, 12, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0, 1};
	const uint8_t cancel_then[] = {0, 0, 0, 16, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0, 1, 0, 0, 0, 2, 'X'};
	const uint8_t bad_answer[] = {'Y'};
	const uint8_t hex_type[] = {0x01, 0, 0, 0, 0};

	ck_assert_str_eq(decode_error(WIRE_BACKEND, short_len, sizeof(short_len), 0, false),
					 "message type 'Q' at stream offset 0: length 3 is below the minimum 4");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, (const uint8_t[]) {0, 0, 0, 8, 0, 3, 0, 0, 'Q', 0, 0, 0, 2}, 13, 0, false),
					 "message type 'Q' at stream offset 8: length 2 is below the minimum 4");
	ck_assert_str_eq(decode_error(WIRE_BACKEND, long_len, sizeof(long_len), 1000, false),
					 "message type 'd' at stream offset 0: length 4096 exceeds the limit 1000");
	ck_assert_str_eq(decode_error(WIRE_BACKEND, huge, sizeof(huge), 0, false),
					 "message type 'd' at stream offset 0: length 2147483647 exceeds the limit 1073741823");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, startup_short, sizeof(startup_short), 0, false),
					 "startup packet at stream offset 0: length 7 outside 8..10000");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, startup_long, sizeof(startup_long), 0, false),
					 "startup packet at stream offset 0: length 10001 outside 8..10000");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, ssl_long, sizeof(ssl_long), 0, false),
					 "SSLRequest at stream offset 0: length 12, expected 8");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, cancel_short, sizeof(cancel_short), 0, false),
					 "CancelRequest at stream offset 0: length 12, expected 16 to 268");
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, cancel_then, sizeof(cancel_then), 0, false),
					 "unexpected data at stream offset 16 after CancelRequest");
	ck_assert_str_eq(decode_error(WIRE_BACKEND, bad_answer, 1, 0, true),
					 "answer to SSL/GSSENC request at stream offset 0: expected 'N', 'S', 'G' or 'E', got 'Y'");
	ck_assert_str_eq(decode_error(WIRE_BACKEND, hex_type, sizeof(hex_type), 0, false),
					 "message type 0x01 at stream offset 0: length 0 is below the minimum 4");
	/* garbage instead of a startup packet ("GET / HTTP/1.1") */
	ck_assert_str_eq(decode_error(WIRE_FRONTEND, (const uint8_t *) "GET / HTTP/1.1\r\n", 16, 0, false),
					 "startup packet at stream offset 0: length 1195725856 outside 8..10000");
}
END_TEST

START_TEST(test_special_requests)
{
	WireBuf		b;
	Log			l;
	WireDecoder d;
	WireMessage m;
	size_t		used;
	uint32_t	pid,
				key;

	wire_buf_init(&b);
	wire_put_gssenc_request(&b);
	wire_put_ssl_request(&b);
	{
		const char *k[] = {"user"};
		const char *v[] = {"u"};

		wire_put_startup(&b, WIRE_PROTOCOL_3_0, k, v, 1);
	}
	l = decode_stream(WIRE_FRONTEND, b.data, b.len, 1, 0, false, 0);
	ck_assert(!l.failed);
	ck_assert_int_eq(l.nmsgs, 3);
	free(l.text);

	wire_buf_reset(&b);
	wire_put_cancel_request(&b, 77, 99);
	wire_decoder_init(&d, WIRE_FRONTEND, 0, 0);
	ck_assert_int_eq(wire_decoder_next(&d, b.data, b.len, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_int_eq(m.kind, WIRE_MSG_CANCEL_REQUEST);
	ck_assert_uint_eq(m.code, WIRE_CANCEL_REQUEST_CODE);
	ck_assert(wire_parse_cancel(m.body, m.body_len, &pid, &key, NULL));
	ck_assert_uint_eq(pid, 77);
	ck_assert_uint_eq(key, 99);
	ck_assert(!wire_parse_cancel(m.body, 4, &pid, &key, NULL));
	ck_assert_str_eq(wire_message_name(WIRE_FRONTEND, m.kind, 0), "CancelRequest");
	wire_decoder_free(&d);

	/* protocol 3.2 (PostgreSQL 18): a CancelRequest with a 32-byte key */
	{
		uint8_t		cancel32[12 + 32] = {0, 0, 0, 44, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0, 77};
		const uint8_t *k;
		size_t		klen;

		for (int i = 0; i < 32; i++)
			cancel32[12 + i] = (uint8_t) (0xA0 + i);
		wire_decoder_init(&d, WIRE_FRONTEND, 0, 0);
		ck_assert_int_eq(wire_decoder_next(&d, cancel32, sizeof(cancel32), &used, &m, NULL), WIRE_GOT_MESSAGE);
		ck_assert_int_eq(m.kind, WIRE_MSG_CANCEL_REQUEST);
		ck_assert(wire_parse_backend_key(m.body, m.body_len, &pid, &k, &klen, NULL));
		ck_assert_uint_eq(pid, 77);
		ck_assert_uint_eq(klen, 32);
		ck_assert_uint_eq(k[31], 0xA0 + 31);
		ck_assert(!wire_parse_cancel(m.body, m.body_len, &pid, &key, NULL));	/* not a 3.0 key */
		wire_decoder_free(&d);
	}

	/* an empty startup packet (length 8) has an empty body */
	wire_buf_reset(&b);
	wire_put_startup(&b, WIRE_PROTOCOL_3_0, NULL, NULL, 0);
	ck_assert_uint_eq(b.len, 9);
	wire_decoder_init(&d, WIRE_FRONTEND, 0, 0);
	ck_assert_int_eq(wire_decoder_next(&d, b.data, 8, &used, &m, NULL), WIRE_NEED_MORE);
	ck_assert_int_eq(wire_decoder_next(&d, b.data + 8, 1, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_uint_eq(m.body_len, 1);
	wire_decoder_free(&d);

	/* backend: 'E' answering an SSLRequest starts a typed ErrorResponse */
	wire_buf_reset(&b);
	wire_put_error(&b, "FATAL", "08P01", "unsupported frontend protocol", NULL);
	wire_put_u8(&b, 'S');
	wire_decoder_init(&d, WIRE_BACKEND, 0, 0);
	wire_decoder_expect_answer(&d);
	ck_assert_int_eq(wire_decoder_next(&d, b.data, b.len, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_int_eq(m.kind, WIRE_MSG_TYPED);
	ck_assert_int_eq(m.type, 'E');
	ck_assert_str_eq(wire_error_field(m.body, m.body_len, 'C', NULL), "08P01");
	/* an answer expected after a message in progress */
	wire_decoder_expect_answer(&d);
	ck_assert_int_eq(wire_decoder_next(&d, b.data + used, b.len - used, &used, &m, NULL), WIRE_GOT_MESSAGE);
	ck_assert_int_eq(m.kind, WIRE_MSG_ANSWER);
	ck_assert_int_eq(m.type, 'S');
	ck_assert_uint_eq(m.size, 1);
	ck_assert_str_eq(wire_message_name(WIRE_BACKEND, m.kind, 'S'), "SSL/GSS accepted");
	wire_decoder_free(&d);
	wire_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------ parsers */

START_TEST(test_parse_startup)
{
	WireStartup s;
	WalsimError err;
	const uint8_t ok[] = "user\0bob\0database\0db\0";	/* + implicit final NUL */
	const uint8_t noval[] = "user\0bob\0database";
	const uint8_t trailing[] = "user\0bob\0\0zz";
	const uint8_t unterminated[] = {'u', 's'};

	ck_assert(wire_parse_startup(WIRE_PROTOCOL_3_0, ok, sizeof(ok), &s, &err));
	ck_assert_int_eq(s.nparams, 2);
	ck_assert_str_eq(s.keys[1], "database");
	ck_assert_str_eq(s.values[1], "db");
	ck_assert(!wire_parse_startup(2 << 16, ok, sizeof(ok), &s, &err));
	ck_assert_str_eq(err.message, "StartupMessage: unsupported protocol version 2.0 (only 3.x)");
	ck_assert(!wire_parse_startup(WIRE_PROTOCOL_3_0, noval, sizeof(noval), &s, &err));
	ck_assert_str_eq(err.message, "StartupMessage: value of parameter \"database\" at body offset 18 is missing or not terminated");
	ck_assert(!wire_parse_startup(WIRE_PROTOCOL_3_0, trailing, sizeof(trailing), &s, &err));
	ck_assert_str_eq(err.message, "StartupMessage: 3 bytes after the terminating NUL at body offset 9");
	ck_assert(!wire_parse_startup(WIRE_PROTOCOL_3_0, unterminated, 2, &s, &err));
	ck_assert_str_eq(err.message, "StartupMessage: parameter name at body offset 0 is not terminated");
	{
		/*
		 * 200 parameters: all accepted (PostgreSQL bounds only the packet's
		 * length; issue 16 item 8), the ones past the index found too
		 */
		WireBuf		b;
		size_t		pos = 0;
		const char *k,
				   *v;
		int			n = 0;

		wire_buf_init(&b);
		for (int i = 0; i < 200; i++)
		{
			char		key[16];

			snprintf(key, sizeof(key), "k%d", i);
			wire_put_cstring(&b, key);
			wire_put_cstring(&b, i == 150 ? "the user" : "v");
		}
		wire_put_u8(&b, 0);
		ck_assert(wire_parse_startup(WIRE_PROTOCOL_3_0, b.data, b.len, &s, &err));
		ck_assert_int_eq(s.nparams, WIRE_MAX_STARTUP_PARAMS);
		ck_assert_int_eq(s.ntotal, 200);
		ck_assert_str_eq(wire_startup_get(&s, "k150"), "the user");
		ck_assert_str_eq(wire_startup_get(&s, "k3"), "v");
		ck_assert_ptr_null(wire_startup_get(&s, "k200"));
		while (wire_startup_next(&s, &pos, &k, &v))
			n++;
		ck_assert_int_eq(n, 200);
		wire_buf_free(&b);
	}
}
END_TEST

START_TEST(test_parse_misc)
{
	const char *sql;
	const char *mech;
	const uint8_t *data;
	int32_t		dlen;
	WalsimError err;
	bool		bad;

	ck_assert(wire_parse_query((const uint8_t *) "SELECT 1", 9, &sql, &err));
	ck_assert_str_eq(sql, "SELECT 1");
	ck_assert(!wire_parse_query((const uint8_t *) "SELECT 1", 8, &sql, &err));
	ck_assert_str_eq(err.message, "string message of 8 bytes is not NUL-terminated");
	ck_assert(!wire_parse_query((const uint8_t *) "A\0B", 4, &sql, &err));
	ck_assert_str_eq(err.message, "string message has an embedded NUL at offset 1");
	ck_assert(!wire_parse_query((const uint8_t *) "", 0, &sql, &err));

	ck_assert(wire_parse_sasl_initial((const uint8_t *) "SCRAM-SHA-256\0\0\0\0\3abc", 21, &mech, &data, &dlen, &err));
	ck_assert_str_eq(mech, "SCRAM-SHA-256");
	ck_assert_int_eq(dlen, 3);
	ck_assert_mem_eq(data, "abc", 3);
	ck_assert(wire_parse_sasl_initial((const uint8_t *) "M\0\xff\xff\xff\xff", 6, &mech, &data, &dlen, &err));
	ck_assert_int_eq(dlen, -1);
	ck_assert_ptr_null(data);
	ck_assert(!wire_parse_sasl_initial((const uint8_t *) "M\0\xff\xff\xff\xffZ", 7, &mech, &data, &dlen, &err));
	ck_assert_str_eq(err.message, "SASLInitialResponse: 1 bytes after a -1 data length");
	ck_assert(!wire_parse_sasl_initial((const uint8_t *) "M\0\0\0\0\5abc", 9, &mech, &data, &dlen, &err));
	ck_assert_str_eq(err.message, "SASLInitialResponse: data length 5 but 3 bytes follow");
	ck_assert(!wire_parse_sasl_initial((const uint8_t *) "M\0\0\0", 4, &mech, &data, &dlen, &err));
	ck_assert_str_eq(err.message, "SASLInitialResponse: data length missing at offset 2");
	ck_assert(!wire_parse_sasl_initial((const uint8_t *) "M", 1, &mech, &data, &dlen, &err));
	ck_assert_str_eq(err.message, "SASLInitialResponse: mechanism name is not terminated");

	ck_assert_str_eq(wire_error_field((const uint8_t *) "SERROR\0C42P01\0Mno\0\0", 19, 'M', &bad), "no");
	ck_assert(!bad);
	ck_assert_ptr_null(wire_error_field((const uint8_t *) "SERROR\0\0", 8, 'M', &bad));
	ck_assert(!bad);
	ck_assert_ptr_null(wire_error_field((const uint8_t *) "SERROR\0", 7, 'S', &bad));
	ck_assert(bad);
	ck_assert_ptr_null(wire_error_field((const uint8_t *) "SERR", 4, 'S', &bad));
	ck_assert(bad);
	ck_assert_ptr_null(wire_error_field((const uint8_t *) "\0x", 2, 'S', &bad));
	ck_assert(bad);
}
END_TEST

START_TEST(test_reader)
{
	const uint8_t data[] = {1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 'a', 0, 9};
	WireReader	r;
	uint8_t		u8;
	uint16_t	u16;
	uint32_t	u32;
	uint64_t	u64;
	const char *s;
	const uint8_t *p;

	wire_reader_init(&r, data, sizeof(data));
	ck_assert(wire_get_u8(&r, &u8) && u8 == 1);
	ck_assert(wire_get_u16(&r, &u16) && u16 == 2);
	ck_assert(wire_get_u32(&r, &u32) && u32 == 3);
	ck_assert(wire_get_u64(&r, &u64) && u64 == 4);
	ck_assert(wire_get_cstring(&r, &s));
	ck_assert_str_eq(s, "a");
	ck_assert_uint_eq(wire_reader_left(&r), 1);
	ck_assert(!wire_get_u16(&r, &u16));
	ck_assert(!wire_get_u32(&r, &u32));
	ck_assert(!wire_get_u64(&r, &u64));
	ck_assert(!wire_get_bytes(&r, 2, &p));
	ck_assert(!wire_get_cstring(&r, &s));
	ck_assert(wire_get_bytes(&r, 1, &p) && *p == 9);
	ck_assert(!wire_get_u8(&r, &u8));
}
END_TEST

/*
 * Found by tests/fuzz/fuzz_wire_frontend: a StartupMessage of length 8 has an
 * empty body, which the decoder reports with a NULL body pointer; the body
 * readers must not do pointer arithmetic on it or hand it to memchr (UBSan,
 * "applying zero offset to null pointer", under make asan).
 */
START_TEST(test_empty_body_null_pointer)
{
	const uint8_t startup[] = {0, 0, 0, 8, 0, 3, 0, 0};
	WireDecoder d;
	WireMessage msg;
	WalsimError err;
	WireStartup st;
	WireReader	r;
	const char *s;
	const uint8_t *p = (const uint8_t *) "x";
	size_t		used;

	wire_decoder_init(&d, WIRE_FRONTEND, WIRE_DEFAULT_MAX_LENGTH, WIRE_DEFAULT_CAPTURE);
	ck_assert_int_eq(wire_decoder_next(&d, startup, sizeof(startup), &used, &msg, &err),
					 WIRE_GOT_MESSAGE);
	ck_assert_int_eq(msg.kind, WIRE_MSG_STARTUP);
	ck_assert_uint_eq(msg.body_len, 0);
	ck_assert(!wire_parse_startup(msg.code, msg.body, msg.body_len, &st, &err));
	ck_assert_msg(strstr(err.message, "not terminated") != NULL, "%s", err.message);
	wire_decoder_free(&d);

	wire_reader_init(&r, NULL, 0);
	ck_assert(!wire_get_cstring(&r, &s));
	ck_assert(wire_get_bytes(&r, 0, &p) && p == NULL);
	ck_assert(!wire_get_bytes(&r, 1, &p));
}
END_TEST

/* ------------------------------------------------------------ encoders */

START_TEST(test_encoders_exact)
{
	WireBuf		b;

	wire_buf_init(&b);
	wire_put_auth_ok(&b);
	ck_assert_uint_eq(b.len, 9);
	ck_assert_mem_eq(b.data, "R\0\0\0\x08\0\0\0\0", 9);
	wire_buf_reset(&b);
	/* observed from a PG15 walsender: W 00000007 00 0000 */
	wire_put_copy_both_response(&b, 0, NULL, 0);
	ck_assert_mem_eq(b.data, "W\0\0\0\x07\0\0\0", 8);
	wire_buf_reset(&b);
	{
		const int16_t fmts[] = {1, 0};

		wire_put_copy_both_response(&b, 1, fmts, 2);
		ck_assert_mem_eq(b.data, "W\0\0\0\x0b\x01\0\x02\0\x01\0\0", 12);
	}
	wire_buf_reset(&b);
	wire_put_ready_for_query(&b, 'I');
	ck_assert_mem_eq(b.data, "Z\0\0\0\x05I", 6);
	wire_buf_reset(&b);
	wire_put_command_complete(&b, "COPY 0");
	ck_assert_mem_eq(b.data, "C\0\0\0\x0b" "COPY 0\0", 12);
	wire_buf_reset(&b);
	wire_put_ssl_request(&b);
	ck_assert_mem_eq(b.data, "\0\0\0\x08\x04\xd2\x16\x2f", 8);
	wire_buf_reset(&b);
	wire_put_backend_key_data(&b, 1, 2);
	ck_assert_mem_eq(b.data, "K\0\0\0\x0c\0\0\0\x01\0\0\0\x02", 13);
	wire_buf_reset(&b);
	{
		const char *vals[] = {"ab", NULL, "xyz"};
		const int32_t lens[] = {1, 0, 3};

		wire_put_data_row(&b, vals, lens, 3);
		ck_assert_mem_eq(b.data, "D\0\0\0\x16\0\x03\0\0\0\x01" "a\xff\xff\xff\xff\0\0\0\x03xyz", 23);
	}
	wire_buf_reset(&b);
	{
		WireField	f = {"x", 1, 2, 20, 8, -1, 0};

		wire_put_row_description(&b, &f, 1);
		ck_assert_uint_eq(b.len, 1 + 4 + 2 + 2 + 18);
		ck_assert_mem_eq(b.data + 9, "\0\0\0\x01\0\x02\0\0\0\x14\0\x08\xff\xff\xff\xff\0\0", 18);
	}
	wire_buf_reset(&b);
	{
		const char *opts[] = {"_pq_.x"};

		/* the whole version, as PostgreSQL sends it (196608 = 3.0) */
		wire_put_negotiate_protocol_version(&b, WIRE_PROTOCOL_3_0, opts, 1);
		ck_assert_mem_eq(b.data, "v\0\0\0\x13\0\x03\0\0\0\0\0\x01_pq_.x\0", 20);
	}
	wire_buf_reset(&b);
	{
		/* protocol 3.2: BackendKeyData with a 32-byte key, parsed back */
		uint8_t		key[32];
		uint32_t	pid;
		const uint8_t *got;
		size_t		got_len;
		WalsimError err;

		for (int i = 0; i < 32; i++)
			key[i] = (uint8_t) i;
		wire_put_backend_key(&b, 4242, key, sizeof(key));
		ck_assert_uint_eq(b.len, 1 + 4 + 4 + 32);
		ck_assert_mem_eq(b.data, "K\0\0\0\x28\0\0\x10\x92", 9);
		ck_assert(wire_parse_backend_key(b.data + 5, b.len - 5, &pid, &got, &got_len, &err));
		ck_assert_uint_eq(pid, 4242);
		ck_assert_uint_eq(got_len, 32);
		ck_assert_mem_eq(got, key, 32);
		ck_assert(!wire_parse_backend_key(b.data + 5, 7, &pid, &got, &got_len, &err));
		ck_assert_str_eq(err.message, "backend key: body of 7 bytes, expected 8 to 260");
	}
	wire_buf_reset(&b);
	wire_put_error(&b, "ERROR", "0A000", "no", NULL);
	ck_assert_uint_eq(b.len, 5 + 26);
	ck_assert_mem_eq(b.data + 5, "SERROR\0VERROR\0C0A000\0Mno\0\0", 26);
	wire_buf_reset(&b);
	wire_put_parameter_status(&b, "a", "b");
	ck_assert_mem_eq(b.data, "S\0\0\0\x08" "a\0b\0", 9);
	wire_buf_reset(&b);
	wire_put_gssenc_request(&b);
	ck_assert_mem_eq(b.data, "\0\0\0\x08\x04\xd2\x16\x30", 8);
	ck_assert_str_eq(wire_message_name(WIRE_FRONTEND, WIRE_MSG_GSSENC_REQUEST, 0), "GSSENCRequest");

	/* consume keeps the tail */
	wire_buf_consume(&b, 5);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_mem_eq(b.data, "\xd2\x16\x30", 3);
	wire_buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	wire_buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_names)
{
	const char	fe[] = "QdcfXpPBEDSHCFz";
	const char	be[] = "RSKZTDCENWHGdcvIA123ntsVz";

	for (size_t i = 0; i < sizeof(fe) - 1; i++)
		ck_assert_ptr_nonnull(wire_message_name(WIRE_FRONTEND, WIRE_MSG_TYPED, fe[i]));
	for (size_t i = 0; i < sizeof(be) - 1; i++)
		ck_assert_ptr_nonnull(wire_message_name(WIRE_BACKEND, WIRE_MSG_TYPED, be[i]));
	ck_assert_str_eq(wire_message_name(WIRE_FRONTEND, WIRE_MSG_TYPED, 'z'), "unknown");
	ck_assert_str_eq(wire_message_name(WIRE_BACKEND, WIRE_MSG_TYPED, 'W'), "CopyBothResponse");
	ck_assert_str_eq(wire_message_name(WIRE_BACKEND, WIRE_MSG_ANSWER, 'N'), "SSL/GSS refused");
	ck_assert_str_eq(wire_message_name(WIRE_FRONTEND, WIRE_MSG_STARTUP, 0), "StartupMessage");
	ck_assert_str_eq(wire_message_name(WIRE_FRONTEND, WIRE_MSG_SSL_REQUEST, 0), "SSLRequest");
}
END_TEST

/* ------------------------------------------------------------ captures */

/*
 * A real capture: both directions decode completely without error, a byte
 * at a time equals all at once, and every CopyData of the replication
 * stream decodes as a replication message of its direction.
 */
static void
check_capture(const char *base)
{
	char		name[256];
	size_t		felen,
				belen;
	uint8_t    *fe,
			   *be;
	Log			l;
	bool		ssl;

	snprintf(name, sizeof(name), "streams/%s.fe", base);
	fe = unit_load_data(name, &felen);
	snprintf(name, sizeof(name), "streams/%s.be", base);
	be = unit_load_data(name, &belen);
	ck_assert_uint_gt(felen, 8);
	ck_assert_uint_gt(belen, 8);
	ssl = wire_be32(fe + 4) == WIRE_SSL_REQUEST_CODE;

	l = decode_stream(WIRE_FRONTEND, fe, felen, 0, 0, false, 0);
	ck_assert_msg(!l.failed, "%s.fe: %s", base, l.error);
	ck_assert_int_gt(l.nmsgs, 3);
	free(l.text);
	l = decode_stream(WIRE_BACKEND, be, belen, 0, 0, ssl, 0);
	ck_assert_msg(!l.failed, "%s.be: %s", base, l.error);
	ck_assert_int_gt(l.nmsgs, 10);
	free(l.text);

	assert_same_in_pieces(WIRE_FRONTEND, fe, felen, 0, false);
	assert_same_in_pieces(WIRE_BACKEND, be, belen, 0, ssl);
	assert_same_in_pieces(WIRE_BACKEND, be, belen, 64, ssl);

	/* replication payloads, whole */
	for (int dir = 0; dir < 2; dir++)
	{
		WireDecoder d;
		const uint8_t *data = dir == 0 ? fe : be;
		size_t		len = dir == 0 ? felen : belen;
		size_t		pos = 0,
					used;
		bool		copying = false;
		int			nrepl = 0;

		wire_decoder_init(&d, dir == 0 ? WIRE_FRONTEND : WIRE_BACKEND, 0, 256 * 1024);
		if (dir == 1 && ssl)
			wire_decoder_expect_answer(&d);
		for (;;)
		{
			WireMessage m;
			ReplMessage rm;
			WalsimError err;

			if (wire_decoder_next(&d, data + pos, len - pos, &used, &m, &err) != WIRE_GOT_MESSAGE)
				break;
			pos += used;
			if (m.type == 'W')
				copying = true;
			if (dir == 0 && m.kind == WIRE_MSG_TYPED && m.type == 'Q')
				copying = true;	/* client side: CopyData follows START_REPLICATION */
			if (copying && m.type == 'd')
			{
				ck_assert_msg(repl_decode(m.body, m.body_len,
										  dir == 0 ? REPL_FROM_CLIENT : REPL_FROM_SERVER,
										  &rm, &err), "%s: %s", base, err.message);
				nrepl++;
			}
		}
		ck_assert_uint_eq(pos, len);
		ck_assert_int_gt(nrepl, 0);
		wire_decoder_free(&d);
	}
	free(fe);
	free(be);
}

START_TEST(test_capture_standby)
{
	check_capture("standby");
}
END_TEST

START_TEST(test_capture_receivewal)
{
	check_capture("receivewal");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("wire");
	TCase	   *tc = tcase_create("core");
	TCase	   *cap = tcase_create("captures");

	tcase_add_test(tc, test_frontend_pieces);
	tcase_add_test(tc, test_backend_pieces);
	tcase_add_test(tc, test_frontend_sequence);
	tcase_add_test(tc, test_zero_copy_and_capture);
	tcase_add_test(tc, test_truncated_at_each_byte);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_special_requests);
	tcase_add_test(tc, test_parse_startup);
	tcase_add_test(tc, test_parse_misc);
	tcase_add_test(tc, test_reader);
	tcase_add_test(tc, test_empty_body_null_pointer);
	tcase_add_test(tc, test_encoders_exact);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	tcase_set_timeout(cap, 120);
	tcase_add_test(cap, test_capture_standby);
	tcase_add_test(cap, test_capture_receivewal);
	suite_add_tcase(s, cap);
	return unit_run_suite(s);
}
