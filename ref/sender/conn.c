/*
 * conn.c — one client connection of walsim-sender: startup, authentication
 * and the replication command loop (PostgreSQL's postmaster startup packet
 * handling, auth.c and exec_replication_command, reduced to what a physical
 * walsender does).  Streaming itself is in stream.c.
 *
 * Each connection runs in its own process, so this code is a plain
 * sequential conversation: read a message (with a deadline), answer it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "command.h"
#include "conn.h"
#include "scram.h"
#include "slots.h"

#define AUTH_TIMEOUT_MS		60000	/* authentication_timeout */
#define SERVER_VERSION		"15.0 (walsim-sender)"
#define SERVER_VERSION_NUM	"150000"

/* OIDs of the column types the replication commands return */
#define OID_INT8	20
#define OID_INT4	23
#define OID_TEXT	25

int64_t
conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------- I/O */

/*
 * Write what the socket takes now; false when the peer is gone.  Sent bytes
 * are only marked (out_sent) and dropped from the buffer once it is empty or
 * mostly sent: moving the rest to the front after every partial send would
 * copy a streaming buffer over and over.
 */
bool
conn_try_write(Conn *c)
{
	while (conn_pending(c) > 0)
	{
		ssize_t		n = send(c->fd, c->out.data + c->out_sent, conn_pending(c),
							 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
		{
			c->out_sent += (size_t) n;
			if (c->out_sent == c->out.len || c->out_sent >= c->out.len / 2)
			{
				wire_buf_consume(&c->out, c->out_sent);
				c->out_sent = 0;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		c->gone = true;
		return false;
	}
	return true;
}

/* Write everything, waiting at most timeout_ms; false on error or timeout. */
bool
conn_flush(Conn *c, int timeout_ms)
{
	int64_t		deadline = conn_now_ms() + timeout_ms;

	while (conn_pending(c) > 0)
	{
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
		int64_t		left;

		if (!conn_try_write(c))
			return false;
		if (conn_pending(c) == 0)
			break;
		left = deadline - conn_now_ms();
		if (left <= 0)
			return false;
		if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
			return false;
	}
	return true;
}

/*
 * Next client message, waiting at most timeout_ms (-1: forever).  Pending
 * output is written while waiting.  Returns IO_OK, IO_TIMEOUT, IO_STOP (a
 * stop was requested), or IO_GONE (EOF, error, or a malformed stream, to
 * which a FATAL has been sent).
 */
int
conn_next(Conn *c, WireMessage *m, int timeout_ms)
{
	int64_t		deadline = timeout_ms < 0 ? INT64_MAX : conn_now_ms() + timeout_ms;
	bool		polled = false;

	for (;;)
	{
		size_t		consumed = 0;
		WalsimError err;
		WireStatus	st;
		struct pollfd pfd;
		ssize_t		n;
		int64_t		left;

		if (c->gone)
			return IO_GONE;
		st = wire_decoder_next(&c->dec, c->in + c->in_start, c->in_end - c->in_start,
							   &consumed, m, &err);
		c->in_start += consumed;
		if (st == WIRE_GOT_MESSAGE)
		{
			c->last_recv_ms = conn_now_ms();
			return IO_OK;
		}
		if (st == WIRE_FAILED)
		{
			conn_fatal(c, "08P01", err.message, NULL);
			return IO_GONE;
		}
		c->in_start = c->in_end = 0;	/* everything was consumed */

		if (*c->stop && !c->stopping)
			return IO_STOP;
		left = deadline - conn_now_ms();
		/* even with no time left, look at the socket once */
		if (left <= 0 && polled)
			return IO_TIMEOUT;
		if (left < 0)
			left = 0;
		polled = true;
		pfd.fd = c->fd;
		pfd.events = POLLIN | (conn_pending(c) > 0 ? POLLOUT : 0);
		pfd.revents = 0;
		if (poll(&pfd, 1, left > 1000000 ? 1000000 : (int) left) < 0)
		{
			if (errno == EINTR)
				continue;
			c->gone = true;
			return IO_GONE;
		}
		if ((pfd.revents & POLLOUT) && !conn_try_write(c))
			return IO_GONE;
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(c->fd, c->in, CONN_IN_SIZE, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
		{
			c->gone = true;
			if (wire_decoder_in_message(&c->dec))
				events_emit(&c->cfg->events, "error", "peer", c->peer,
							"message", "connection closed in the middle of a message", NULL);
			return IO_GONE;
		}
		c->in_end = (size_t) n;
	}
}

/* ErrorResponse ERROR (the session goes on; the caller sends ReadyForQuery). */
void
conn_error(Conn *c, const char *sqlstate, const char *message, const char *detail)
{
	wire_put_error(&c->out, "ERROR", sqlstate, message, detail);
	events_emit(&c->cfg->events, "error", "peer", c->peer, "severity", "ERROR",
				"sqlstate", sqlstate, "message", message, NULL);
}

/* ErrorResponse FATAL, then the connection ends. */
void
conn_fatal(Conn *c, const char *sqlstate, const char *message, const char *hint)
{
	wire_put_error(&c->out, "FATAL", sqlstate, message, hint);
	events_emit(&c->cfg->events, "error", "peer", c->peer, "severity", "FATAL",
				"sqlstate", sqlstate, "message", message, NULL);
	conn_flush(c, 1000);
	c->gone = true;
}

/* ------------------------------------------------------------- startup */

/* PostgreSQL's parse_bool: unique prefixes of true/false/yes/no, on/off, 1/0. */
static bool
parse_pg_bool(const char *v, bool *result)
{
	size_t		len = strlen(v);

	if (len == 0)
		return false;
	if (strncasecmp(v, "true", len) == 0 || strncasecmp(v, "yes", len) == 0 ||
		(len >= 2 && strncasecmp(v, "on", len) == 0 && len <= 2) || strcmp(v, "1") == 0)
	{
		*result = true;
		return true;
	}
	if (strncasecmp(v, "false", len) == 0 || strncasecmp(v, "no", len) == 0 ||
		(len >= 2 && strncasecmp(v, "off", len) == 0) || strcmp(v, "0") == 0)
	{
		*result = false;
		return true;
	}
	return false;
}

/* Read the startup packet, answering SSL/GSS requests with 'N'. */
static bool
read_startup(Conn *c, WireStartup *su)
{
	WireMessage m;
	WalsimError err;
	const char *unknown[WIRE_MAX_STARTUP_PARAMS];
	int			nunknown = 0;

	for (;;)
	{
		if (conn_next(c, &m, AUTH_TIMEOUT_MS) != IO_OK)
			return false;		/* PostgreSQL closes silently too */
		if (m.kind == WIRE_MSG_SSL_REQUEST || m.kind == WIRE_MSG_GSSENC_REQUEST)
		{
			/* no TLS, no GSSAPI: 'N', then a normal startup packet follows */
			wire_put_u8(&c->out, 'N');
			if (!conn_flush(c, AUTH_TIMEOUT_MS))
				return false;
			continue;
		}
		if (m.kind == WIRE_MSG_CANCEL_REQUEST)
			return false;		/* nothing runs long enough to be cancelled */
		if (m.kind == WIRE_MSG_STARTUP)
			break;
		conn_fatal(c, "08P01", "invalid startup packet", NULL);
		return false;
	}
	if (WIRE_PROTOCOL_MAJOR(m.code) != 3)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
				 WIRE_PROTOCOL_MAJOR(m.code), WIRE_PROTOCOL_MINOR(m.code));
		conn_fatal(c, "0A000", msg, NULL);
		return false;
	}
	/* the body must outlive this message: keep a copy */
	if (m.body_len > sizeof(c->startup_body))
	{
		conn_fatal(c, "08P01", "invalid length of startup packet", NULL);
		return false;
	}
	memcpy(c->startup_body, m.body, m.body_len);
	if (!wire_parse_startup(m.code, c->startup_body, m.body_len, su, &err))
	{
		char		msg[WALSIM_ERROR_MAX + 40];

		snprintf(msg, sizeof(msg), "invalid startup packet layout: %s", err.message);
		conn_fatal(c, "08P01", msg, NULL);
		return false;
	}
	/* protocol options (_pq_.*) and minor versions we do not speak are negotiated down */
	for (int i = 0; i < su->nparams; i++)
		if (strncmp(su->keys[i], "_pq_.", 5) == 0)
			unknown[nunknown++] = su->keys[i];
	if (WIRE_PROTOCOL_MINOR(m.code) > 0 || nunknown > 0)
		wire_put_negotiate_protocol_version(&c->out, 0, unknown, nunknown);
	return true;
}

/* Expect a PasswordMessage-family ('p') message; its body or NULL. */
static bool
read_password_message(Conn *c, WireMessage *m)
{
	if (!conn_flush(c, AUTH_TIMEOUT_MS))
		return false;
	if (conn_next(c, m, AUTH_TIMEOUT_MS) != IO_OK)
		return false;
	if (m->kind != WIRE_MSG_TYPED || m->type != 'p')
	{
		char		msg[80];

		snprintf(msg, sizeof(msg), "expected password response, got message type %d", m->type);
		conn_fatal(c, "08P01", msg, NULL);
		return false;
	}
	return true;
}

static void
auth_failed(Conn *c, const char *why)
{
	char		msg[200];

	snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", c->user);
	events_emit(&c->cfg->events, "auth_failed", "peer", c->peer, "user", c->user,
				"method", auth_method_name(c->cfg->auth.method), "reason", why, NULL);
	conn_fatal(c, "28P01", msg, NULL);
}

static bool
auth_scram(Conn *c, const char *password)
{
	static const char *const mechs[] = {"SCRAM-SHA-256"};
	ScramServer *s = malloc(sizeof(ScramServer));
	WireMessage m;
	WalsimError err;
	char		reply[SCRAM_MSG_MAX];
	const char *mech;
	const uint8_t *data;
	int32_t		data_len;
	bool		ok = false;
	char		dummy[40];

	if (s == NULL)
		return false;
	/*
	 * An unknown role gets a random password, so the exchange runs to the
	 * end and fails like a wrong password (PostgreSQL's mock authentication).
	 */
	if (password == NULL)
	{
		uint8_t		r[16];

		RAND_bytes(r, sizeof(r));
		scram_b64_encode(r, sizeof(r), dummy, sizeof(dummy));
		password = dummy;
	}
	if (!scram_server_init(s, password, NULL, 0, 4096, NULL, &err))
		goto out;
	wire_put_auth_sasl(&c->out, mechs, 1);
	if (!read_password_message(c, &m))
		goto out;
	if (!wire_parse_sasl_initial(m.body, m.body_len, &mech, &data, &data_len, &err))
	{
		conn_fatal(c, "08P01", err.message, NULL);
		goto out;
	}
	if (strcmp(mech, "SCRAM-SHA-256") != 0)
	{
		conn_fatal(c, "08P01", "client selected an invalid SASL authentication mechanism", NULL);
		goto out;
	}
	if (data_len < 0 || !scram_server_first(s, (const char *) data, (size_t) data_len, reply, sizeof(reply), &err))
	{
		conn_fatal(c, "08P01", data_len < 0 ? "SASLInitialResponse without data" : err.message, NULL);
		goto out;
	}
	wire_put_auth_sasl_continue(&c->out, reply, strlen(reply));
	if (!read_password_message(c, &m))
		goto out;
	if (!scram_server_final(s, (const char *) m.body, m.body_len, reply, sizeof(reply), &err))
	{
		if (strstr(err.message, "wrong password") != NULL)
			auth_failed(c, err.message);
		else
			conn_fatal(c, "08P01", err.message, NULL);
		goto out;
	}
	wire_put_auth_sasl_final(&c->out, reply, strlen(reply));
	ok = true;
out:
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	return ok;
}

static bool
authenticate(Conn *c)
{
	const char *password = auth_lookup(&c->cfg->auth, c->user);
	WireMessage m;
	WalsimError err;
	const char *given;

	switch (c->cfg->auth.method)
	{
		case AUTH_TRUST:
			break;
		case AUTH_PASSWORD:
			wire_put_auth_cleartext(&c->out);
			if (!read_password_message(c, &m))
				return false;
			if (!wire_parse_query(m.body, m.body_len, &given, &err))
			{
				conn_fatal(c, "08P01", err.message, NULL);
				return false;
			}
			if (password == NULL || strcmp(given, password) != 0)
			{
				auth_failed(c, password ? "wrong password" : "unknown role");
				return false;
			}
			break;
		case AUTH_MD5:
			{
				uint8_t		salt[4];
				char		expected[36];

				RAND_bytes(salt, sizeof(salt));
				wire_put_auth_md5(&c->out, salt);
				if (!read_password_message(c, &m))
					return false;
				if (!wire_parse_query(m.body, m.body_len, &given, &err))
				{
					conn_fatal(c, "08P01", err.message, NULL);
					return false;
				}
				if (password != NULL)
					auth_md5_response(password, c->user, salt, expected);
				if (password == NULL || strcmp(given, expected) != 0)
				{
					auth_failed(c, password ? "wrong password" : "unknown role");
					return false;
				}
				break;
			}
		case AUTH_SCRAM:
			if (!auth_scram(c, password))
				return false;
			if (password == NULL)
				return false;
			break;
	}
	wire_put_auth_ok(&c->out);
	events_emit(&c->cfg->events, "auth_ok", "peer", c->peer, "user", c->user,
				"method", auth_method_name(c->cfg->auth.method),
				"application_name", c->appname, NULL);
	return true;
}

static void
send_session_parameters(Conn *c)
{
	uint32_t	key;

	wire_put_parameter_status(&c->out, "application_name", c->appname);
	wire_put_parameter_status(&c->out, "client_encoding", "UTF8");
	wire_put_parameter_status(&c->out, "DateStyle", "ISO, MDY");
	wire_put_parameter_status(&c->out, "default_transaction_read_only", "off");
	wire_put_parameter_status(&c->out, "in_hot_standby", "off");
	wire_put_parameter_status(&c->out, "integer_datetimes", "on");
	wire_put_parameter_status(&c->out, "IntervalStyle", "postgres");
	wire_put_parameter_status(&c->out, "is_superuser", "on");
	wire_put_parameter_status(&c->out, "server_encoding", "UTF8");
	wire_put_parameter_status(&c->out, "server_version", SERVER_VERSION);
	wire_put_parameter_status(&c->out, "session_authorization", c->user);
	wire_put_parameter_status(&c->out, "standard_conforming_strings", "on");
	wire_put_parameter_status(&c->out, "TimeZone", "UTC");
	RAND_bytes((unsigned char *) &key, sizeof(key));
	wire_put_backend_key_data(&c->out, (uint32_t) getpid(), key);
	wire_put_ready_for_query(&c->out, 'I');
}

/* Startup packet through the first ReadyForQuery; false: connection over. */
static bool
establish(Conn *c)
{
	WireStartup su;
	const char *user;
	const char *repl;
	const char *app;
	bool		is_repl = false;

	if (!read_startup(c, &su))
		return false;
	if (c->over_limit > 0)
	{
		char		msg[120];

		snprintf(msg, sizeof(msg), "number of requested standby connections exceeds max_wal_senders (currently %d)",
				 c->over_limit);
		conn_fatal(c, "53300", msg, NULL);
		return false;
	}
	user = wire_startup_get(&su, "user");
	if (user == NULL || user[0] == '\0')
	{
		conn_fatal(c, "28000", "no PostgreSQL user name specified in startup packet", NULL);
		return false;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	app = wire_startup_get(&su, "application_name");
	snprintf(c->appname, sizeof(c->appname), "%s", app ? app : "");
	repl = wire_startup_get(&su, "replication");
	if (repl != NULL && strcasecmp(repl, "database") == 0)
	{
		conn_fatal(c, "0A000", "logical replication (replication=database) is not supported by walsim-sender", NULL);
		return false;
	}
	if (repl != NULL && !parse_pg_bool(repl, &is_repl))
	{
		char		msg[200];

		snprintf(msg, sizeof(msg), "invalid value for parameter \"replication\": \"%.100s\"", repl);
		conn_fatal(c, "22023", msg, "Valid values are: \"false\", 0, \"true\", 1, \"database\".");
		return false;
	}
	if (!is_repl)
	{
		conn_fatal(c, "0A000", "walsim-sender accepts only physical replication connections (replication=true)", NULL);
		return false;
	}
	events_emit(&c->cfg->events, "connection", "peer", c->peer, "user", c->user,
				"application_name", c->appname, NULL);
	if (!authenticate(c))
		return false;
	send_session_parameters(c);
	return conn_flush(c, AUTH_TIMEOUT_MS);
}

/* ------------------------------------------------------------- commands */

static const WireField text_field = {.type_oid = OID_TEXT, .typlen = -1, .typmod = -1};

static WireField
field(const char *name, uint32_t type)
{
	WireField	f = text_field;

	f.name = name;
	f.type_oid = type;
	f.typlen = type == OID_TEXT ? -1 : type == OID_INT4 ? 4 : 8;
	return f;
}

/* The end of WAL as this connection may see it (take-back misbehaviour). */
uint64_t
conn_visible_end(Conn *c)
{
	uint64_t	end = c->src->end;

	if ((c->cfg->misbehave & MIS_TAKE_BACK) && c->number >= 2)
	{
		uint64_t	back = lsn_align_down(end, c->src->seg_size);

		if (back == end && back >= c->src->seg_size)
			back -= c->src->seg_size;
		if (back > c->src->oldest_lsn)
			end = back;
	}
	return end;
}

/* Look for new WAL (follow mode) before answering about the end of WAL. */
bool
conn_refresh(Conn *c)
{
	WalsimError err;

	if (!c->cfg->follow)
		return true;
	if (!walsource_refresh(c->src, NULL, &err))
	{
		conn_error(c, "58030", err.message, NULL);
		return false;
	}
	return true;
}

static void
cmd_identify_system(Conn *c)
{
	WireField	f[4] = {field("systemid", OID_TEXT), field("timeline", OID_INT4),
	field("xlogpos", OID_TEXT), field("dbname", OID_TEXT)};
	char		sysid[32],
				tli[16],
				pos[LSN_TEXT_MAX];
	const char *vals[4] = {sysid, tli, pos, NULL};
	uint64_t	id = c->cfg->sysid_override_set ? c->cfg->sysid_override : c->src->sysid;
	uint32_t	timeline;

	/* first look for new WAL: a new timeline changes the answer */
	if (!conn_refresh(c))
		return;
	timeline = c->src->tli;
	if (c->cfg->misbehave & MIS_WRONG_SYSID)
		id += 1;
	if (c->cfg->misbehave & MIS_LOWER_TIMELINE)
		timeline -= 1;
	snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long) id);
	snprintf(tli, sizeof(tli), "%u", timeline);
	lsn_format(conn_visible_end(c), pos);
	wire_put_row_description(&c->out, f, 4);
	wire_put_data_row(&c->out, vals, NULL, 4);
	wire_put_command_complete(&c->out, "IDENTIFY_SYSTEM");
}

static void
cmd_show(Conn *c, const char *name)
{
	char		value[64];
	const char *vals[1] = {value};
	WireField	f = field(name, OID_TEXT);

	if (strcmp(name, "wal_segment_size") == 0)
		wal_segment_size_format(c->src->seg_size, value);
	else if (strcmp(name, "data_directory_mode") == 0)
		strcpy(value, "0700");
	else if (strcmp(name, "server_version_num") == 0)
		strcpy(value, SERVER_VERSION_NUM);
	else if (strcmp(name, "server_version") == 0)
		strcpy(value, SERVER_VERSION);
	else if (strcmp(name, "wal_block_size") == 0)
		strcpy(value, "8192");
	else if (strcmp(name, "integer_datetimes") == 0)
		strcpy(value, "on");
	else if (strcmp(name, "server_encoding") == 0 || strcmp(name, "client_encoding") == 0)
		strcpy(value, "UTF8");
	else if (strcmp(name, "wal_sender_timeout") == 0)
	{
		int			ms = c->cfg->wal_sender_timeout_ms;

		/* GUC_UNIT_MS shown in the largest unit that divides it, as PostgreSQL */
		if (ms != 0 && ms % 60000 == 0)
			snprintf(value, sizeof(value), "%dmin", ms / 60000);
		else if (ms != 0 && ms % 1000 == 0)
			snprintf(value, sizeof(value), "%ds", ms / 1000);
		else
			snprintf(value, sizeof(value), "%dms", ms);
	}
	else
	{
		char		msg[REPL_NAME_MAX + 64];

		snprintf(msg, sizeof(msg), "unrecognized configuration parameter \"%s\"", name);
		conn_error(c, "42704", msg, NULL);
		return;
	}
	wire_put_row_description(&c->out, &f, 1);
	wire_put_data_row(&c->out, vals, NULL, 1);
	wire_put_command_complete(&c->out, "SHOW");
}

static void
cmd_timeline_history(Conn *c, uint32_t tli)
{
	/* PostgreSQL builds this RowDescription by hand: typmod 0, not -1 */
	WireField	f[2] = {field("filename", OID_TEXT), field("content", OID_TEXT)};
	char		name[WAL_FILE_NAME_MAX];
	char	   *content = NULL;
	size_t		len = 0;
	WalsimError err;
	const char *vals[2];
	int32_t		lens[2];

	f[0].typmod = 0;
	f[1].typmod = 0;
	/* the RowDescription goes out before the file is opened, as in PG15 */
	wire_put_row_description(&c->out, f, 2);
	if (!walsource_history_file(c->src, tli, &content, &len, &err))
	{
		conn_error(c, "58P01", err.message, NULL);
		return;
	}
	wal_history_name(name, (c->cfg->misbehave & MIS_WRONG_HISTORY_NAME) ? tli + 1 : tli);
	vals[0] = name;
	vals[1] = content;
	lens[0] = (int32_t) strlen(name);
	lens[1] = (int32_t) len;
	wire_put_data_row(&c->out, vals, lens, 2);
	wire_put_command_complete(&c->out, "TIMELINE_HISTORY");
	free(content);
}

/* Report a slot operation's failure with PostgreSQL's SQLSTATE and text. */
void
conn_slot_error(Conn *c, SlotResult r, const char *name, pid_t active, const WalsimError *err)
{
	char		msg[WALSIM_ERROR_MAX + 80];

	switch (r)
	{
		case SLOT_OK:
			return;
		case SLOT_NOT_FOUND:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" does not exist", name);
			conn_error(c, "42704", msg, NULL);
			return;
		case SLOT_EXISTS:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" already exists", name);
			conn_error(c, "42710", msg, NULL);
			return;
		case SLOT_ACTIVE:
			snprintf(msg, sizeof(msg), "replication slot \"%s\" is active for PID %d", name, (int) active);
			conn_error(c, "55006", msg, NULL);
			return;
		case SLOT_IO_ERROR:
			snprintf(msg, sizeof(msg), "replication slot state: %s", err->message);
			conn_error(c, "58000", msg, NULL);
			return;
	}
}

static void
cmd_read_slot(Conn *c, const char *name)
{
	WireField	f[3] = {field("slot_type", OID_TEXT), field("restart_lsn", OID_TEXT),
	field("restart_tli", OID_INT8)};
	SlotInfo	s;
	WalsimError err;
	SlotResult	r = slots_get(c->cfg->slots_file, name, &s, &err);
	char		lsn[LSN_TEXT_MAX];
	char		tli[16];
	const char *vals[3] = {NULL, NULL, NULL};

	if (r == SLOT_OK)
	{
		vals[0] = "physical";
		if (s.restart_lsn != 0)
		{
			lsn_format(s.restart_lsn, lsn);
			snprintf(tli, sizeof(tli), "%u", timeline_of_lsn(&c->src->history, s.restart_lsn));
			vals[1] = lsn;
			vals[2] = tli;
		}
	}
	else if (r != SLOT_NOT_FOUND)
	{
		conn_slot_error(c, r, name, 0, &err);
		return;
	}
	/* an unknown slot is one row of NULLs, not an error */
	wire_put_row_description(&c->out, f, 3);
	wire_put_data_row(&c->out, vals, NULL, 3);
	wire_put_command_complete(&c->out, "READ_REPLICATION_SLOT");
}

static void
cmd_create_slot(Conn *c, const ReplCommand *cmd)
{
	WireField	f[4] = {field("slot_name", OID_TEXT), field("consistent_point", OID_TEXT),
	field("snapshot_name", OID_TEXT), field("output_plugin", OID_TEXT)};
	const char *vals[4] = {cmd->name, "0/0", NULL, NULL};
	WalsimError err;
	SlotResult	r;

	if (cmd->logical)
	{
		conn_error(c, "0A000", "logical replication slots are not supported by walsim-sender", NULL);
		return;
	}
	if (cmd->temporary)
	{
		conn_error(c, "0A000", "temporary replication slots are not supported by walsim-sender", NULL);
		return;
	}
	if (cmd->reserve_wal && !conn_refresh(c))
		return;
	/* RESERVE_WAL keeps WAL from the current end; a file server removes nothing anyway */
	r = slots_create(c->cfg->slots_file, cmd->name, cmd->reserve_wal ? c->src->end : 0, &err);
	if (r != SLOT_OK)
	{
		conn_slot_error(c, r, cmd->name, 0, &err);
		return;
	}
	wire_put_row_description(&c->out, f, 4);
	wire_put_data_row(&c->out, vals, NULL, 4);
	wire_put_command_complete(&c->out, "CREATE_REPLICATION_SLOT");
}

static void
cmd_drop_slot(Conn *c, const ReplCommand *cmd)
{
	WalsimError err;
	pid_t		active = 0;
	SlotResult	r = slots_drop(c->cfg->slots_file, cmd->name, &active, &err);

	if (r != SLOT_OK)
	{
		conn_slot_error(c, r, cmd->name, active, &err);
		return;
	}
	wire_put_command_complete(&c->out, "DROP_REPLICATION_SLOT");
}

static void
execute(Conn *c, const char *sql)
{
	ReplCommand cmd;
	const char *sqlstate;
	WalsimError err;

	if (!repl_command_parse(sql, &cmd, &sqlstate, &err))
	{
		conn_error(c, sqlstate, err.message, NULL);
		return;
	}
	events_emit(&c->cfg->events, "command", "peer", c->peer,
				"command", repl_command_name(cmd.kind), "text", sql, NULL);
	switch (cmd.kind)
	{
		case REPL_SQL:
			conn_error(c, "0A000", "cannot execute SQL commands in WAL sender for physical replication", NULL);
			break;
		case REPL_IDENTIFY_SYSTEM:
			cmd_identify_system(c);
			break;
		case REPL_SHOW:
			cmd_show(c, cmd.name);
			break;
		case REPL_TIMELINE_HISTORY:
			cmd_timeline_history(c, cmd.tli);
			break;
		case REPL_READ_REPLICATION_SLOT:
			cmd_read_slot(c, cmd.name);
			break;
		case REPL_CREATE_REPLICATION_SLOT:
			cmd_create_slot(c, &cmd);
			break;
		case REPL_DROP_REPLICATION_SLOT:
			cmd_drop_slot(c, &cmd);
			break;
		case REPL_START_REPLICATION:
			stream_start(c, &cmd);
			break;
		case REPL_BASE_BACKUP:
			conn_error(c, "0A000", "BASE_BACKUP is not supported by walsim-sender", NULL);
			break;
	}
}

/* The command loop after authentication. */
static void
command_loop(Conn *c)
{
	bool		ignore_till_sync = false;

	for (;;)
	{
		WireMessage m;
		const char *sql;
		WalsimError err;
		int			r;

		if (!conn_flush(c, 60000))
			return;
		r = conn_next(c, &m, -1);
		if (r == IO_STOP)
		{
			conn_fatal(c, "57P01", "terminating connection due to administrator command", NULL);
			return;
		}
		if (r != IO_OK)
			return;
		if (m.type == 'X')
			return;
		if (ignore_till_sync && m.type != 'S')
			continue;
		switch (m.type)
		{
			case 'Q':
				if (!wire_parse_query(m.body, m.body_len, &sql, &err))
				{
					conn_fatal(c, "08P01", err.message, NULL);
					return;
				}
				execute(c, sql);
				if (c->gone)
					return;
				wire_put_ready_for_query(&c->out, 'I');
				break;
			case 'P':
			case 'B':
			case 'E':
			case 'D':
			case 'C':
			case 'H':
				/* as PostgreSQL: error, then skip to Sync */
				conn_error(c, "08P01", "extended query protocol not supported in a replication connection", NULL);
				ignore_till_sync = true;
				break;
			case 'F':
				conn_error(c, "08P01", "fastpath function calls not supported in a replication connection", NULL);
				wire_put_ready_for_query(&c->out, 'I');
				break;
			case 'S':
				ignore_till_sync = false;
				wire_put_ready_for_query(&c->out, 'I');
				break;
			case 'd':
			case 'c':
			case 'f':
				/* copy messages outside COPY are ignored, per protocol */
				break;
			default:
				{
					char		msg[64];

					snprintf(msg, sizeof(msg), "invalid frontend message type %d", (unsigned char) m.type);
					conn_fatal(c, "08P01", msg, NULL);
					return;
				}
		}
	}
}

void
conn_serve(const SenderConfig *cfg, WalSource *src, int fd, const char *peer,
		   uint64_t conn_number, int over_limit, volatile sig_atomic_t *stop)
{
	Conn	   *c = calloc(1, sizeof(Conn));

	if (c == NULL)
	{
		close(fd);
		return;
	}
	c->cfg = cfg;
	c->src = src;
	c->fd = fd;
	c->number = conn_number;
	c->stop = stop;
	c->over_limit = over_limit;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	/* bounded memory: no client message may exceed 1 MB */
	wire_decoder_init(&c->dec, WIRE_FRONTEND, CONN_MAX_MESSAGE, CONN_MAX_MESSAGE);
	wire_buf_init(&c->out);
	c->last_recv_ms = conn_now_ms();
	if (establish(c))
		command_loop(c);
	events_emit(&cfg->events, "disconnect", "peer", c->peer, "user", c->user, NULL);
	wire_decoder_free(&c->dec);
	wire_buf_free(&c->out);
	close(fd);
	free(c);
}
