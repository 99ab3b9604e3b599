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
#include "walsim/lsn.h"
#include "walsim/pgtime.h"
#include "walsim/replmsg.h"
#include "walsim/wire.h"

#define PROBE_CAPTURE		(2u * 1024u * 1024u)
#define PROBE_HEAD_BYTES	64

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

/* A JSON string of raw bytes: bytes >= 0x80 as \u00XX, i.e. Latin-1. */
static void
json_bytes_to(FILE *out, const uint8_t *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++)
	{
		uint8_t		c = s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
json_bytes(const uint8_t *s, size_t n)
{
	json_bytes_to(stdout, s, n);
}

static void
json_str(const char *s)
{
	if (s == NULL)
		fputs("null", stdout);
	else
		json_bytes((const uint8_t *) s, strlen(s));
}

static void
json_hex(const uint8_t *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++)
		printf("%02x", s[i]);
	putchar('"');
}

static void
line_start(const Probe *p, const char *dir)
{
	printf("{\"t\":%.6f,\"dir\":\"%s\"", elapsed(p), dir);
}

static void
line_end(void)
{
	fputs("}\n", stdout);
	fflush(stdout);
}

static void
emit_event(const Probe *p, const char *event, const char *detail)
{
	line_start(p, "event");
	fputs(",\"event\":", stdout);
	json_str(event);
	if (detail)
	{
		fputs(",\"detail\":", stdout);
		json_str(detail);
	}
	line_end();
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

/* Send b and log it as an outgoing message of `type` with extra JSON. */
static void
send_logged(Probe *p, WireBuf *b, const char *type, const char *extra_json)
{
	if (p->closed)
	{
		/* the transcript must not claim a message the server never saw */
		emit_event(p, "not_sent", type);
		wire_buf_reset(b);
		return;
	}
	line_start(p, "out");
	fputs(",\"type\":", stdout);
	json_str(type);
	printf(",\"size\":%zu%s", b->len, extra_json ? extra_json : "");
	line_end();
	send_all(p, b->data, b->len);
	wire_buf_reset(b);
}

/* ------------------------------------------------------------ receiving */

static void
emit_error_fields(const uint8_t *body, size_t len)
{
	static const char codes[] = "SVCMDHPW";

	for (const char *c = codes; *c; c++)
	{
		const char *v = wire_error_field(body, len, *c, NULL);

		if (v)
		{
			printf(",\"%c\":", *c);
			json_str(v);
		}
	}
}

static void
emit_copydata(Probe *p, const uint8_t *body, size_t len)
{
	if (len >= REPL_XLOGDATA_HEADER && body[0] == 'w')
	{
		uint8_t		digest[SHA256_DIGEST_LENGTH];
		size_t		n = len - REPL_XLOGDATA_HEADER;
		const uint8_t *wal = body + REPL_XLOGDATA_HEADER;

		SHA256(wal, n, digest);
		printf(",\"type\":\"w\",\"size\":%zu,\"start\":%llu,\"wal_end\":%llu,"
			   "\"send_time\":%lld,\"now\":%lld,\"len\":%zu,\"sha256\":",
			   len, (unsigned long long) wire_be64(body + 1),
			   (unsigned long long) wire_be64(body + 9),
			   (long long) (int64_t) wire_be64(body + 17), (long long) pg_timestamp_now(), n);
		json_hex(digest, sizeof(digest));
		fputs(",\"head\":", stdout);
		json_hex(wal, n < PROBE_HEAD_BYTES ? n : PROBE_HEAD_BYTES);
		p->received_end = wire_be64(body + 1) + n;
		return;
	}
	if (len >= REPL_KEEPALIVE_LEN && body[0] == 'k')
	{
		/* decoded by hand: a keepalive of the wrong length must show, not vanish */
		printf(",\"type\":\"k\",\"size\":%zu,\"wal_end\":%llu,\"send_time\":%lld,"
			   "\"now\":%lld,\"reply\":%d", len,
			   (unsigned long long) wire_be64(body + 1),
			   (long long) (int64_t) wire_be64(body + 9), (long long) pg_timestamp_now(),
			   body[17]);
		return;
	}
	printf(",\"type\":\"d\",\"size\":%zu,\"subtype\":", len);
	json_bytes(body, len > 0 ? 1 : 0);
	fputs(",\"hex\":", stdout);
	json_hex(body, len < PROBE_HEAD_BYTES ? len : PROBE_HEAD_BYTES);
}

static void
emit_row_description(const uint8_t *body, size_t len)
{
	WireReader	r;
	uint16_t	n = 0;

	wire_reader_init(&r, body, len);
	wire_get_u16(&r, &n);
	fputs(",\"fields\":[", stdout);
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
		printf("%s{\"name\":", i ? "," : "");
		json_str(name);
		printf(",\"table\":%u,\"attnum\":%u,\"type\":%u,\"typlen\":%d,\"typmod\":%d,"
			   "\"format\":%d}", table, attnum, type, (int16_t) typlen, (int32_t) typmod,
			   (int16_t) format);
	}
	fputs("]", stdout);
}

static void
emit_data_row(const uint8_t *body, size_t len)
{
	WireReader	r;
	uint16_t	n = 0;

	wire_reader_init(&r, body, len);
	wire_get_u16(&r, &n);
	fputs(",\"values\":[", stdout);
	for (int i = 0; i < n; i++)
	{
		uint32_t	vlen;
		const uint8_t *v;

		if (!wire_get_u32(&r, &vlen))
			break;
		fputs(i ? "," : "", stdout);
		if (vlen == UINT32_MAX)
			fputs("null", stdout);
		else if (wire_get_bytes(&r, vlen, &v))
			json_bytes(v, vlen);
		else
			break;
	}
	fputs("]", stdout);
}

static void
emit_message(Probe *p, const WireMessage *m)
{
	const uint8_t *b = m->body;
	size_t		n = m->body_avail;

	line_start(p, "in");
	if (m->kind == WIRE_MSG_ANSWER)
	{
		printf(",\"type\":\"answer\",\"byte\":\"%c\"", m->type);
		line_end();
		return;
	}
	if (m->type == 'd')
	{
		emit_copydata(p, b, n);
		line_end();
		return;
	}
	printf(",\"type\":\"%c\",\"size\":%u", m->type, m->body_len);
	switch (m->type)
	{
		case 'R':
			if (n >= 4)
				printf(",\"code\":%u", wire_be32(b));
			break;
		case 'S':
			{
				WireReader	r;
				const char *name = NULL, *value = NULL;

				wire_reader_init(&r, b, n);
				if (wire_get_cstring(&r, &name) && wire_get_cstring(&r, &value))
				{
					fputs(",\"name\":", stdout);
					json_str(name);
					fputs(",\"value\":", stdout);
					json_str(value);
				}
				break;
			}
		case 'K':
			if (n >= 8)
				printf(",\"pid\":%u,\"key\":%u", wire_be32(b), wire_be32(b + 4));
			break;
		case 'Z':
			if (n >= 1)
				printf(",\"status\":\"%c\"", b[0]);
			break;
		case 'E':
		case 'N':
			emit_error_fields(b, n);
			break;
		case 'T':
			emit_row_description(b, n);
			break;
		case 'D':
			emit_data_row(b, n);
			break;
		case 'C':
			fputs(",\"tag\":", stdout);
			json_bytes(b, n > 0 && b[n - 1] == '\0' ? n - 1 : n);
			break;
		default:
			fputs(",\"hex\":", stdout);
			json_hex(b, n < PROBE_HEAD_BYTES ? n : PROBE_HEAD_BYTES);
			break;
	}
	line_end();
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
			send_logged(p, &out, "p", ",\"auth\":\"password\"");
			break;
		case WIRE_AUTH_MD5:
			{
				char		resp[36];

				if (m->body_avail < 8)
					break;
				probe_md5_response(p->opt->user, p->password, m->body + 4, resp);
				wire_put_password(&out, resp);
				send_logged(p, &out, "p", ",\"auth\":\"md5\"");
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
				send_logged(p, &out, "p", ",\"auth\":\"scram-first\"");
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
				send_logged(p, &out, "p", ",\"auth\":\"scram-final\"");
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
	send_logged(p, &b, "r", ",\"auto\":true");
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

static void
put_lsn_field(char *buf, size_t len, const char *name, uint64_t v)
{
	char		text[LSN_TEXT_MAX];

	snprintf(buf + strlen(buf), len - strlen(buf), ",\"%s\":\"%s\"", name, lsn_format(v, text));
}

static bool
run_step(Probe *p, const ProbeStep *s)
{
	WireBuf		b;
	char		extra[512] = "";

	wire_buf_init(&b);
	switch (s->kind)
	{
		case STEP_STARTUP:
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
				wire_put_startup(&b, WIRE_PROTOCOL_3_0, keys, values, n);
				send_logged(p, &b, "startup", NULL);
				wire_buf_free(&b);
				return read_until(p, s, GOAL_AUTH, p->opt->timeout_ms);
			}
		case STEP_SSL:
		case STEP_GSSENC:
			{
				/* the answer is one byte: 'N', 'S' (TLS) or 'G' (GSS) */
				ProbeStep	w = {.nwait = 3,.wait_for = {'N', 'S', 'G'}};

				if (s->kind == STEP_SSL)
					wire_put_ssl_request(&b);
				else
					wire_put_gssenc_request(&b);
				send_logged(p, &b, s->kind == STEP_SSL ? "ssl_request" : "gssenc_request", NULL);
				wire_buf_free(&b);
				wire_decoder_expect_answer(&p->dec);
				return read_until(p, &w, GOAL_TYPES, p->opt->timeout_ms);
			}
		case STEP_QUERY:
			wire_put_query(&b, s->text);
			{
				char	   *sql_json = NULL;
				size_t		len = 0;
				FILE	   *mem = open_memstream(&sql_json, &len);

				if (mem == NULL)
					abort();
				fputs(",\"sql\":", mem);
				json_bytes_to(mem, (const uint8_t *) s->text, strlen(s->text));
				fclose(mem);
				send_logged(p, &b, "Q", sql_json);
				free(sql_json);
			}
			break;
		case STEP_STATUS:
			{
				ReplStatus	st = {0};

				st.write = s->lsn[0] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[0];
				st.flush = s->lsn[1] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[1];
				st.apply = s->lsn[2] == PROBE_LSN_RECEIVED ? p->received_end : s->lsn[2];
				st.send_time = pg_timestamp_now();
				st.reply_requested = s->reply;
				repl_put_status(&b, &st);
				put_lsn_field(extra, sizeof(extra), "write", st.write);
				put_lsn_field(extra, sizeof(extra), "flush", st.flush);
				put_lsn_field(extra, sizeof(extra), "apply", st.apply);
				snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
						 ",\"reply\":%d", s->reply ? 1 : 0);
				send_logged(p, &b, "r", extra);
				break;
			}
		case STEP_FEEDBACK:
			{
				ReplFeedback f = {.send_time = pg_timestamp_now(), .xmin = s->xid[0],
					.xmin_epoch = s->xid[1], .catalog_xmin = s->xid[2],
				.catalog_xmin_epoch = s->xid[3]};

				repl_put_feedback(&b, &f);
				send_logged(p, &b, "h", NULL);
				break;
			}
		case STEP_COPYDATA:
			wire_put_copy_data(&b, s->bytes, s->nbytes);
			send_logged(p, &b, "d", NULL);
			break;
		case STEP_COPYDONE:
			wire_put_copy_done(&b);
			send_logged(p, &b, "c", NULL);
			break;
		case STEP_TERMINATE:
			wire_put_terminate(&b);
			send_logged(p, &b, "X", NULL);
			break;
		case STEP_MSG:
			wire_begin(&b, s->msg_type);
			wire_put_bytes(&b, s->bytes, s->nbytes);
			wire_end(&b);
			snprintf(extra, sizeof(extra), ",\"msg\":\"%c\"", s->msg_type);
			send_logged(p, &b, "msg", extra);
			break;
		case STEP_RAW:
			wire_put_bytes(&b, s->bytes, s->nbytes);
			send_logged(p, &b, "raw", NULL);
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

static char *
read_all(FILE *f)
{
	char	   *text = NULL;
	size_t		len = 0, cap = 0;
	int			c;

	while ((c = fgetc(f)) != EOF)
	{
		if (len + 2 > cap)
		{
			cap = cap ? cap * 2 : 4096;
			text = realloc(text, cap);
			if (text == NULL)
				abort();
		}
		text[len++] = (char) c;
	}
	if (text == NULL && (text = malloc(1)) == NULL)
		abort();
	text[len] = '\0';
	return text;
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
				{
					char	   *end;
					long		v = strtol(optarg, &end, 10);

					if (*end != '\0' || v <= 0 || v > 3600000)
					{
						fprintf(stderr, "walsim-probe: --timeout-ms \"%s\" is not a number of "
								"milliseconds from 1 to 3600000\n", optarg);
						return false;
					}
					opt->timeout_ms = (int) v;
					break;
				}
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
	text = read_all(f);
	if (f != stdin)
		fclose(f);
	if (!probe_parse_script(text, &script, &err))
	{
		fprintf(stderr, "walsim-probe: script \"%s\": %s\n", opt.script_path, err.message);
		free(text);
		return 2;
	}
	free(text);

	p.opt = &opt;
	clock_gettime(CLOCK_MONOTONIC, &p.t0);
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
