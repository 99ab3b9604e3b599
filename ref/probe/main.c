/*
 * walsim-probe — a raw PostgreSQL replication-protocol client for
 * conformance checks.
 *
 * It connects to a server, runs a script of steps (script.h) and prints
 * every message it sends and receives as one JSON object per line, with the
 * time since start, so that the checks (tools/walsim/conform) decide from
 * the transcript.  Unlike libpq it does exactly what the script says:
 * malformed messages, CopyDone at odd moments, silence.
 *
 *   walsim-probe --host 127.0.0.1 --port 5432 --user replicator \
 *                [--passfile FILE] [--timeout-ms N] [SCRIPT|-]
 *
 * The password comes from --passfile (.pgpass format) or PGPASSWORD.
 * Exit status: 0 the script ran to its end (whatever the server did),
 * 1 connection or I/O failure, 2 invalid arguments or script.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "auth.h"
#include "script.h"
#include "walsim/json.h"
#include "walsim/lsn.h"
#include "walsim/parse.h"
#include "walsim/pgtime.h"
#include "walsim/replmsg.h"
#include "walsim/textfile.h"
#include "walsim/wire.h"

#define PROBE_CAPTURE		(2u * 1024u * 1024u)
#define PROBE_HEAD_BYTES	64
#define MAX_TIMEOUT_MS		3600000
#define PROBE_SCRIPT_MAX	(64u * 1024u * 1024u)

typedef struct ProbeOptions
{
	const char *host;
	const char *port;
	const char *user;
	const char *database;
	const char *passfile;
	const char *script_path;
	int			timeout_ms;		/* of the authentication exchange */
} ProbeOptions;

typedef struct Probe
{
	const ProbeOptions *opt;
	int			fd;
	bool		closed;			/* the server closed (or we did) */
	WireDecoder dec;
	struct timespec t0;
	uint64_t	received_end;	/* end of the last XLogData */
	bool		autoreply;		/* answer keepalives that request a reply */
	uint8_t		buf[256 * 1024];	/* input read but not yet decoded: */
	size_t		pend_off;		/* [pend_off, pend_len) is pending */
	size_t		pend_len;
	ScramClient scram;
	char	   *password;
	JsonBuf		json;			/* the transcript, streamed to stdout */
	char		json_buf[8192];
} Probe;

/* What a read loop stops at. */
typedef enum ReadGoal
{
	GOAL_NONE,					/* read until the deadline */
	GOAL_TYPES,					/* a message of one of step->wait_for */
	GOAL_LSN,					/* received_end >= step->lsn[0] */
	GOAL_AUTH					/* authentication done: Z, E or close */
} ReadGoal;

/* ------------------------------------------------------------ JSON output */

static double
elapsed(const Probe *p)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - p->t0.tv_sec) + (now.tv_nsec - p->t0.tv_nsec) / 1e9;
}

/*
 * Text from the wire or the script as a JSON string of raw bytes (bytes
 * 0x7F and above as \u00XX, i.e. Latin-1): the checks compare bytes, and
 * nothing here is known to be UTF-8.
 */
static void
put_text(Probe *p, const char *key, const char *s)
{
	if (s == NULL)
		json_null(&p->json, key);
	else
		json_bytes(&p->json, key, (const uint8_t *) s, strlen(s));
}

/* One byte as a one-character string (message types, status letters). */
static void
put_char(Probe *p, const char *key, char c)
{
	json_bytes(&p->json, key, (const uint8_t *) &c, 1);
}

static void
line_start(Probe *p, const char *dir)
{
	p->json.first = true;		/* a new top-level object */
	json_object_begin(&p->json, NULL);
	json_fixed(&p->json, "t", elapsed(p), 6);
	json_str(&p->json, "dir", dir);
}

static void
line_end(Probe *p)
{
	json_object_end(&p->json);
	json_raw(&p->json, "\n");
	json_flush(&p->json);
	fflush(stdout);
}

static void
emit_event(Probe *p, const char *event, const char *detail)
{
	line_start(p, "event");
	put_text(p, "event", event);
	if (detail)
		put_text(p, "detail", detail);
	line_end(p);
}

/* ------------------------------------------------------------ sending */

static bool
send_all(Probe *p, const uint8_t *data, size_t len)
{
	while (len > 0 && !p->closed)
	{
		ssize_t		n = send(p->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			emit_event(p, "send_failed", strerror(errno));
			return false;
		}
		data += n;
		len -= (size_t) n;
	}
	return !p->closed;
}

/*
 * Log b as an outgoing message of `type`; the caller may add fields to
 * p->json, then calls send_end().  False (nothing to add) when the
 * connection is closed: the transcript must not claim a message the server
 * never saw.
 */
static bool
send_begin(Probe *p, WireBuf *b, const char *type)
{
	if (p->closed)
	{
		emit_event(p, "not_sent", type);
		wire_buf_reset(b);
		return false;
	}
	line_start(p, "out");
	put_text(p, "type", type);
	json_u64(&p->json, "size", b->len);
	return true;
}

static void
send_end(Probe *p, WireBuf *b)
{
	line_end(p);
	send_all(p, b->data, b->len);
	wire_buf_reset(b);
}

/* Send b and log it as an outgoing message of `type`. */
static void
send_logged(Probe *p, WireBuf *b, const char *type)
{
	if (send_begin(p, b, type))
		send_end(p, b);
}

/* An authentication answer: "auth" says which. */
static void
send_auth(Probe *p, WireBuf *b, const char *auth)
{
	if (!send_begin(p, b, "p"))
		return;
	json_str(&p->json, "auth", auth);
	send_end(p, b);
}

/* ------------------------------------------------------------ receiving */

static void
emit_error_fields(Probe *p, const uint8_t *body, size_t len)
{
	static const char codes[] = "SVCMDHPW";

	for (const char *c = codes; *c; c++)
	{
		const char *v = wire_error_field(body, len, *c, NULL);
		char		key[2] = {*c, '\0'};

		if (v)
			put_text(p, key, v);
	}
}

static void
emit_copydata(Probe *p, const uint8_t *body, size_t len)
{
	JsonBuf    *j = &p->json;

	if (len >= REPL_XLOGDATA_HEADER && body[0] == 'w')
	{
		uint8_t		digest[SHA256_DIGEST_LENGTH];
		size_t		n = len - REPL_XLOGDATA_HEADER;
		const uint8_t *wal = body + REPL_XLOGDATA_HEADER;

		SHA256(wal, n, digest);
		json_str(j, "type", "w");
		json_u64(j, "size", len);
		json_u64(j, "start", wire_be64(body + 1));
		json_u64(j, "wal_end", wire_be64(body + 9));
		json_i64(j, "send_time", (int64_t) wire_be64(body + 17));
		json_i64(j, "now", pg_timestamp_now());
		json_u64(j, "len", n);
		json_hex(j, "sha256", digest, sizeof(digest));
		json_hex(j, "head", wal, n < PROBE_HEAD_BYTES ? n : PROBE_HEAD_BYTES);
		p->received_end = wire_be64(body + 1) + n;
		return;
	}
	if (len >= REPL_KEEPALIVE_LEN && body[0] == 'k')
	{
		/* decoded by hand: a keepalive of the wrong length must show, not vanish */
		json_str(j, "type", "k");
		json_u64(j, "size", len);
		json_u64(j, "wal_end", wire_be64(body + 1));
		json_i64(j, "send_time", (int64_t) wire_be64(body + 9));
		json_i64(j, "now", pg_timestamp_now());
		json_u64(j, "reply", body[17]);
		return;
	}
	json_str(j, "type", "d");
	json_u64(j, "size", len);
	json_bytes(j, "subtype", body, len > 0 ? 1 : 0);
	json_hex(j, "hex", body, len < PROBE_HEAD_BYTES ? len : PROBE_HEAD_BYTES);
}

static void
emit_row_description(Probe *p, const uint8_t *body, size_t len)
{
	JsonBuf    *j = &p->json;
	WireReader	r;
	uint16_t	n = 0;

	wire_reader_init(&r, body, len);
	wire_get_u16(&r, &n);
	json_array_begin(j, "fields");
	for (int i = 0; i < n; i++)
	{
		const char *name;
		uint32_t	table = 0, type = 0, typmod = 0;
		uint16_t	attnum = 0, typlen = 0, format = 0;

		if (!wire_get_cstring(&r, &name) || !wire_get_u32(&r, &table) ||
			!wire_get_u16(&r, &attnum) || !wire_get_u32(&r, &type) ||
			!wire_get_u16(&r, &typlen) || !wire_get_u32(&r, &typmod) ||
			!wire_get_u16(&r, &format))
			break;
		json_object_begin(j, NULL);
		put_text(p, "name", name);
		json_u64(j, "table", table);
		json_u64(j, "attnum", attnum);
		json_u64(j, "type", type);
		json_i64(j, "typlen", (int16_t) typlen);
		json_i64(j, "typmod", (int32_t) typmod);
		json_i64(j, "format", (int16_t) format);
		json_object_end(j);
	}
	json_array_end(j);
}

static void
emit_data_row(Probe *p, const uint8_t *body, size_t len)
{
	WireReader	r;
	uint16_t	n = 0;

	wire_reader_init(&r, body, len);
	wire_get_u16(&r, &n);
	json_array_begin(&p->json, "values");
	for (int i = 0; i < n; i++)
	{
		uint32_t	vlen;
		const uint8_t *v;

		if (!wire_get_u32(&r, &vlen))
			break;
		if (vlen == UINT32_MAX)
			json_null(&p->json, NULL);
		else if (wire_get_bytes(&r, vlen, &v))
			json_bytes(&p->json, NULL, v, vlen);
		else
			break;
	}
	json_array_end(&p->json);
}

/* The fields of a typed message's body, by type. */
static void
emit_body(Probe *p, char type, const uint8_t *b, size_t n)
{
	JsonBuf    *j = &p->json;
	WireReader	r;
	const char *name = NULL,
			   *value = NULL;

	switch (type)
	{
		case 'R':
			if (n >= 4)
				json_u64(j, "code", wire_be32(b));
			break;
		case 'S':
			wire_reader_init(&r, b, n);
			if (wire_get_cstring(&r, &name) && wire_get_cstring(&r, &value))
			{
				put_text(p, "name", name);
				put_text(p, "value", value);
			}
			break;
		case 'K':
			if (n >= 8)
			{
				/* protocol 3.2 (PostgreSQL 18): keys of 4 to 256 bytes */
				json_u64(j, "pid", wire_be32(b));
				json_u64(j, "key", wire_be32(b + 4));
				json_u64(j, "key_len", n - 4);
			}
			break;
		case 'v':
			if (n >= 8)
			{
				/* NegotiateProtocolVersion: the version the server speaks, then the unknown options */
				char		version[32];

				snprintf(version, sizeof(version), "%u.%u", WIRE_PROTOCOL_MAJOR(wire_be32(b)),
						 WIRE_PROTOCOL_MINOR(wire_be32(b)));
				json_str(j, "protocol", version);
				json_u64(j, "unknown_options", wire_be32(b + 4));
			}
			break;
		case 'Z':
			if (n >= 1)
				put_char(p, "status", (char) b[0]);
			break;
		case 'E':
		case 'N':
			emit_error_fields(p, b, n);
			break;
		case 'T':
			emit_row_description(p, b, n);
			break;
		case 'D':
			emit_data_row(p, b, n);
			break;
		case 'C':
			json_bytes(j, "tag", b, n > 0 && b[n - 1] == '\0' ? n - 1 : n);
			break;
		default:
			json_hex(j, "hex", b, n < PROBE_HEAD_BYTES ? n : PROBE_HEAD_BYTES);
			break;
	}
}

static void
emit_message(Probe *p, const WireMessage *m)
{
	line_start(p, "in");
	if (m->kind == WIRE_MSG_ANSWER)
	{
		json_str(&p->json, "type", "answer");
		put_char(p, "byte", m->type);
	}
	else if (m->type == 'd')
		emit_copydata(p, m->body, m->body_avail);
	else
	{
		put_char(p, "type", m->type);
		json_u64(&p->json, "size", m->body_len);
		emit_body(p, m->type, m->body, m->body_avail);
	}
	line_end(p);
}

/* Answer an authentication request; false ends the exchange. */
static bool
answer_auth(Probe *p, const WireMessage *m)
{
	WireBuf		out;
	uint32_t	code;
	WalsimError err;

	if (m->body_avail < 4)
		return false;
	code = wire_be32(m->body);
	if (code == WIRE_AUTH_OK)
		return true;
	if (p->password == NULL && code != WIRE_AUTH_SASL_FINAL)
	{
		emit_event(p, "error", "the server asks for a password: give --passfile or PGPASSWORD");
		return false;
	}
	wire_buf_init(&out);
	switch (code)
	{
		case WIRE_AUTH_CLEARTEXT:
			wire_put_password(&out, p->password);
			send_auth(p, &out, "password");
			break;
		case WIRE_AUTH_MD5:
			{
				char		resp[36];

				if (m->body_avail < 8)
					break;
				probe_md5_response(p->opt->user, p->password, m->body + 4, resp);
				wire_put_password(&out, resp);
				send_auth(p, &out, "md5");
				break;
			}
		case WIRE_AUTH_SASL:
			{
				char	   *first = probe_scram_first(&p->scram);

				wire_begin(&out, 'p');
				wire_put_cstring(&out, "SCRAM-SHA-256");
				wire_put_u32(&out, (uint32_t) strlen(first));
				wire_put_bytes(&out, first, strlen(first));
				wire_end(&out);
				free(first);
				send_auth(p, &out, "scram-first");
				break;
			}
		case WIRE_AUTH_SASL_CONTINUE:
			{
				char	   *final = probe_scram_final(&p->scram, p->password,
													  (const char *) m->body + 4,
													  m->body_avail - 4, &err);

				if (final == NULL)
				{
					emit_event(p, "error", err.message);
					wire_buf_free(&out);
					return false;
				}
				wire_begin(&out, 'p');
				wire_put_bytes(&out, final, strlen(final));
				wire_end(&out);
				free(final);
				send_auth(p, &out, "scram-final");
				break;
			}
		case WIRE_AUTH_SASL_FINAL:
			if (!probe_scram_verify(&p->scram, (const char *) m->body + 4,
									m->body_avail - 4, &err))
				emit_event(p, "error", err.message);
			break;
		default:
			emit_event(p, "error", "unsupported authentication request");
			wire_buf_free(&out);
			return false;
	}
	wire_buf_free(&out);
	return true;
}

/* With autoreply on, a keepalive asking for a reply gets r(received x3). */
static void
maybe_autoreply(Probe *p, const WireMessage *m)
{
	ReplStatus	st = {0};
	WireBuf		b;

	if (!p->autoreply || m->kind != WIRE_MSG_TYPED || m->type != 'd' ||
		m->body_avail < REPL_KEEPALIVE_LEN || m->body[0] != 'k' || m->body[17] != 1)
		return;
	st.write = st.flush = st.apply = p->received_end;
	st.send_time = pg_timestamp_now();
	wire_buf_init(&b);
	repl_put_status(&b, &st);
	if (send_begin(p, &b, "r"))
	{
		json_bool(&p->json, "auto", true);
		send_end(p, &b);
	}
	wire_buf_free(&b);
}

static bool
goal_reached(Probe *p, const ProbeStep *step, ReadGoal goal, const WireMessage *m)
{
	char		t = m->type;

	if (m->kind == WIRE_MSG_TYPED && t == 'd' && m->body_avail > 0)
		t = (char) m->body[0];	/* CopyData: its subtype */
	switch (goal)
	{
		case GOAL_TYPES:
			for (int i = 0; i < step->nwait; i++)
				if (step->wait_for[i] == t)
					return true;
			return false;
		case GOAL_LSN:
			return p->received_end >= step->lsn[0];
		case GOAL_AUTH:
			if (m->kind == WIRE_MSG_TYPED && m->type == 'R' && !answer_auth(p, m))
				return true;
			return m->type == 'Z' || m->type == 'E';
		default:
			return false;
	}
}


/*
 * Decode and print the buffered input until the goal is reached (true) or
 * the buffer is used up (false).  What follows the message that reached
 * the goal stays buffered for the next step, so a message that arrived in
 * the same read as the awaited one still counts for the step awaiting it.
 */
static bool
drain_pending(Probe *p, const ProbeStep *step, ReadGoal goal)
{
	while (p->pend_off < p->pend_len && !p->closed)
	{
		WireMessage m;
		WalsimError err;
		size_t		used = 0;
		WireStatus	st = wire_decoder_next(&p->dec, p->buf + p->pend_off,
										   p->pend_len - p->pend_off, &used, &m, &err);

		p->pend_off += used;
		if (st == WIRE_FAILED)
		{
			emit_event(p, "protocol_error", err.message);
			p->closed = true;
			return false;
		}
		if (st == WIRE_NEED_MORE)
			break;
		emit_message(p, &m);
		maybe_autoreply(p, &m);
		if (goal_reached(p, step, goal, &m))
			return true;
	}
	return false;
}

/*
 * Read and print messages until the goal is reached, the server closes,
 * or ms pass.  Returns false on a failure of the connection itself.
 */
static bool
read_until(Probe *p, const ProbeStep *step, ReadGoal goal, int ms)
{
	double		deadline = elapsed(p) + ms / 1000.0;

	if (goal == GOAL_LSN && p->received_end >= step->lsn[0])
		return true;
	if (drain_pending(p, step, goal))
		return true;
	while (!p->closed)
	{
		double		left = deadline - elapsed(p);
		struct pollfd pfd = {.fd = p->fd,.events = POLLIN};
		ssize_t		n;
		int			rc;

		if (left <= 0)
			break;
		rc = poll(&pfd, 1, (int) (left * 1000) + 1);
		if (rc <= 0)
			continue;			/* EINTR or the deadline: the loop decides */
		n = recv(p->fd, p->buf, sizeof(p->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			p->closed = true;
			emit_event(p, "close", n < 0 ? strerror(errno) : "EOF");
			return n == 0 || errno == ECONNRESET;
		}
		p->pend_off = 0;
		p->pend_len = (size_t) n;
		if (drain_pending(p, step, goal))
			return true;
	}
	if (goal != GOAL_NONE && !p->closed)
		emit_event(p, "timeout", NULL);
	return true;
}

/* ------------------------------------------------------------ steps */

/* The startup packet: the script's parameters, then user, database, replication. */
static void
put_startup(Probe *p, const ProbeStep *s, WireBuf *b)
{
	const char *keys[PROBE_MAX_PARAMS + 3];
	const char *values[PROBE_MAX_PARAMS + 3];
	int			n = 0;
	bool		has_user = false, has_repl = false, has_db = false;

	for (int i = 0; i < s->nparams; i++)
	{
		has_user |= strcmp(s->keys[i], "user") == 0;
		has_repl |= strcmp(s->keys[i], "replication") == 0;
		has_db |= strcmp(s->keys[i], "database") == 0;
		keys[n] = s->keys[i];
		values[n++] = s->values[i];
	}
	if (!has_user)
	{
		keys[n] = "user";
		values[n++] = p->opt->user;
	}
	if (!has_db)
	{
		keys[n] = "database";
		values[n++] = p->opt->database;
	}
	if (!has_repl)
	{
		keys[n] = "replication";
		values[n++] = "true";
	}
	wire_put_startup(b, s->protocol ? s->protocol : WIRE_PROTOCOL_3_0, keys, values, n);
}

/* A standby status update ('r'); "received" positions are the stream's end. */
static void
send_status(Probe *p, const ProbeStep *s, WireBuf *b)
{
	ReplStatus	st = {0};

	st.write = s->lsn[0] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[0];
	st.flush = s->lsn[1] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[1];
	st.apply = s->lsn[2] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[2];
	st.send_time = pg_timestamp_now();
	st.reply_requested = s->reply;
	repl_put_status(b, &st);
	if (send_begin(p, b, "r"))
	{
		json_lsn(&p->json, "write", st.write);
		json_lsn(&p->json, "flush", st.flush);
		json_lsn(&p->json, "apply", st.apply);
		json_u64(&p->json, "reply", s->reply ? 1 : 0);
		send_end(p, b);
	}
}

static bool
run_step(Probe *p, const ProbeStep *s)
{
	WireBuf		b;

	wire_buf_init(&b);
	switch (s->kind)
	{
		case STEP_STARTUP:
			put_startup(p, s, &b);
			send_logged(p, &b, "startup");
			wire_buf_free(&b);
			return read_until(p, s, GOAL_AUTH, p->opt->timeout_ms);
		case STEP_SSL:
		case STEP_GSSENC:
			{
				/* the answer is one byte: 'N', 'S' (TLS) or 'G' (GSS) */
				ProbeStep	w = {.nwait = 3,.wait_for = {'N', 'S', 'G'}};

				if (s->kind == STEP_SSL)
					wire_put_ssl_request(&b);
				else
					wire_put_gssenc_request(&b);
				send_logged(p, &b, s->kind == STEP_SSL ? "ssl_request" : "gssenc_request");
				wire_buf_free(&b);
				wire_decoder_expect_answer(&p->dec);
				return read_until(p, &w, GOAL_TYPES, p->opt->timeout_ms);
			}
		case STEP_QUERY:
			wire_put_query(&b, s->text);
			if (send_begin(p, &b, "Q"))
			{
				put_text(p, "sql", s->text);
				send_end(p, &b);
			}
			break;
		case STEP_STATUS:
			send_status(p, s, &b);
			break;
		case STEP_FEEDBACK:
			{
				ReplFeedback f = {.send_time = pg_timestamp_now(), .xmin = s->xid[0],
					.xmin_epoch = s->xid[1], .catalog_xmin = s->xid[2],
				.catalog_xmin_epoch = s->xid[3]};

				repl_put_feedback(&b, &f);
				send_logged(p, &b, "h");
				break;
			}
		case STEP_COPYDATA:
			wire_put_copy_data(&b, s->bytes, s->nbytes);
			send_logged(p, &b, "d");
			break;
		case STEP_COPYDONE:
			wire_put_copy_done(&b);
			send_logged(p, &b, "c");
			break;
		case STEP_TERMINATE:
			wire_put_terminate(&b);
			send_logged(p, &b, "X");
			break;
		case STEP_MSG:
			wire_begin(&b, s->msg_type);
			wire_put_bytes(&b, s->bytes, s->nbytes);
			wire_end(&b);
			if (send_begin(p, &b, "msg"))
			{
				put_char(p, "msg", s->msg_type);
				send_end(p, &b);
			}
			break;
		case STEP_RAW:
			wire_put_bytes(&b, s->bytes, s->nbytes);
			send_logged(p, &b, "raw");
			break;
		case STEP_WAIT:
			wire_buf_free(&b);
			return read_until(p, s, GOAL_TYPES, s->ms);
		case STEP_READ:
			wire_buf_free(&b);
			return read_until(p, s, GOAL_NONE, s->ms);
		case STEP_STREAM:
			wire_buf_free(&b);
			return read_until(p, s, GOAL_LSN, s->ms);
		case STEP_SLEEP:
			{
				struct timespec ts = {.tv_sec = s->ms / 1000,.tv_nsec = (s->ms % 1000) * 1000000L};

				while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
					;
				break;
			}
		case STEP_AUTOREPLY:
			p->autoreply = s->reply;
			break;
		case STEP_CLOSE:
			if (!p->closed)
			{
				shutdown(p->fd, SHUT_RDWR);
				p->closed = true;
				emit_event(p, "closed_by_probe", NULL);
			}
			break;
	}
	wire_buf_free(&b);
	return true;
}

/* ------------------------------------------------------------ setup */

static int
connect_to(const ProbeOptions *opt, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,.ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	int			rc = getaddrinfo(opt->host, opt->port, &hints, &res);
	int			fd = -1;

	if (rc != 0)
	{
		snprintf(why, whylen, "%s:%s: %s", opt->host, opt->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(why, whylen, "%s:%s: %s", opt->host, opt->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: walsim-probe --host H --port P --user U [--passfile FILE]\n"
			"                    [--database D] [--timeout-ms N] [SCRIPT|-]\n"
			"Runs the steps of SCRIPT (default: standard input) against a PostgreSQL\n"
			"replication server and prints every message as a JSON line.\n"
			"Steps: startup, ssl, gssenc, query, status, feedback, copydata, copydone,\n"
			"terminate, msg, raw, wait, read, stream, sleep, close (docs/conformance.md).\n");
}

static bool
parse_options(int argc, char **argv, ProbeOptions *opt)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"user", required_argument, NULL, 'U'},
		{"database", required_argument, NULL, 'd'},
		{"passfile", required_argument, NULL, 'P'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	WalsimError err;

	*opt = (ProbeOptions) {.host = "127.0.0.1",.port = "5432",.database = "replication",
	.timeout_ms = 10000};
	opt->user = getenv("PGUSER");
	while ((c = getopt_long(argc, argv, "h:p:U:d:P:t:", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'h':
				opt->host = optarg;
				break;
			case 'p':
				opt->port = optarg;
				break;
			case 'U':
				opt->user = optarg;
				break;
			case 'd':
				opt->database = optarg;
				break;
			case 'P':
				opt->passfile = optarg;
				break;
			case 't':
				if (!parse_i32("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS, &opt->timeout_ms, &err))
				{
					fprintf(stderr, "walsim-probe: %s\n", err.message);
					return false;
				}
				break;
			case '?':
				usage(optopt ? stderr : stdout);
				return false;
			default:
				return false;
		}
	}
	if (opt->user == NULL)
	{
		fprintf(stderr, "walsim-probe: --user is required\n");
		return false;
	}
	if (optind < argc - 1)
	{
		fprintf(stderr, "walsim-probe: one script at most, got \"%s\" too\n", argv[optind + 1]);
		return false;
	}
	opt->script_path = optind < argc ? argv[optind] : "-";
	return true;
}

int
main(int argc, char **argv)
{
	ProbeOptions opt;
	ProbeScript script;
	Probe		p = {0};
	WalsimError err;
	char		why[256] = "connection failed";
	char	   *text;
	size_t		len;
	bool		ok;
	FILE	   *f;
	int			status = 0;

	if (!parse_options(argc, argv, &opt))
		return 2;
	f = strcmp(opt.script_path, "-") == 0 ? stdin : fopen(opt.script_path, "r");
	if (f == NULL)
	{
		fprintf(stderr, "walsim-probe: script \"%s\": %s\n", opt.script_path, strerror(errno));
		return 2;
	}
	ok = textfile_read(f, opt.script_path, PROBE_SCRIPT_MAX, &text, &len, &err);
	if (f != stdin)
		fclose(f);
	if (!ok || !probe_parse_script(text, &script, &err))
	{
		fprintf(stderr, "walsim-probe: script \"%s\": %s\n", opt.script_path, err.message);
		if (ok)
			free(text);
		return 2;
	}
	free(text);

	p.opt = &opt;
	clock_gettime(CLOCK_MONOTONIC, &p.t0);
	json_init_stream(&p.json, p.json_buf, sizeof(p.json_buf), stdout);
	if (opt.passfile)
	{
		bool		found;

		if (!probe_passfile_lookup(opt.passfile, opt.host, opt.port, opt.database,
								   opt.user, &p.password, &found, &err))
		{
			fprintf(stderr, "walsim-probe: %s\n", err.message);
			probe_script_free(&script);
			return 2;
		}
	}
	if (p.password == NULL && getenv("PGPASSWORD"))
		p.password = strdup(getenv("PGPASSWORD"));

	p.fd = connect_to(&opt, why, sizeof(why));
	if (p.fd < 0)
	{
		emit_event(&p, "connect_failed", why);
		status = 1;
	}
	else
	{
		emit_event(&p, "connected", NULL);
		wire_decoder_init(&p.dec, WIRE_BACKEND, 0, PROBE_CAPTURE);
		for (int i = 0; i < script.nsteps; i++)
		{
			if (!run_step(&p, &script.steps[i]))
			{
				status = 1;
				break;
			}
		}
		if (!p.closed)
			shutdown(p.fd, SHUT_WR);
		close(p.fd);
		wire_decoder_free(&p.dec);
		emit_event(&p, "done", NULL);
	}
	probe_scram_free(&p.scram);
	free(p.password);
	probe_script_free(&script);
	return status;
}
