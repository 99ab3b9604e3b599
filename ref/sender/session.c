/*
 * session.c — the start of a walsim-sender connection: the startup packet,
 * authentication and the session parameters, through the first
 * ReadyForQuery (PostgreSQL's postmaster startup packet handling and
 * auth.c, reduced to what a physical walsender needs).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "walsim/parse.h"
#include "scram.h"
#include "session.h"

/*
 * Everything before the first ReadyForQuery happens within the connection's
 * authentication deadline (--authentication-timeout from connect), however
 * slowly the client trickles its bytes: what is left of it.
 */
static int
auth_left(const Conn *c)
{
	int64_t		left = c->auth_deadline_ms - conn_now_ms();

	return left > 0 ? (int) left : 0;
}

/* Read the startup packet, answering SSL/GSS requests with 'N'. */
static bool
read_startup(Conn *c, WireStartup *su)
{
	WireMessage m;
	WalsimError err;
	const char *unknown[WIRE_MAX_STARTUP_PARAMS];
	int			nunknown = 0;
	int			latest = SENDER_PROTOCOL_MINOR(c->src->version->major);

	for (;;)
	{
		if (conn_next(c, &m, auth_left(c)) != IO_OK)
			return false;		/* PostgreSQL closes silently too */
		if (m.kind == WIRE_MSG_SSL_REQUEST || m.kind == WIRE_MSG_GSSENC_REQUEST)
		{
			/* no TLS, no GSSAPI: 'N', then a normal startup packet follows */
			wire_put_u8(&c->out, 'N');
			if (!conn_flush(c, auth_left(c)))
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

		snprintf(msg, sizeof(msg), "unsupported frontend protocol %u.%u: server supports 3.0 to 3.%d",
				 WIRE_PROTOCOL_MAJOR(m.code), WIRE_PROTOCOL_MINOR(m.code), latest);
		conn_fatal(c, "0A000", msg, NULL);
		return false;
	}
	/* as the postmaster: the version asked for, at most the newest one spoken */
	c->protocol = (3u << 16) | (WIRE_PROTOCOL_MINOR(m.code) < (uint32_t) latest ?
								WIRE_PROTOCOL_MINOR(m.code) : (uint32_t) latest);
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
	/*
	 * Protocol options (_pq_.*) and minor versions we do not speak are
	 * negotiated down; every other parameter is accepted and ignored, however
	 * many (the packet's length is the only bound, as in PostgreSQL).
	 */
	{
		size_t		pos = 0;
		const char *key,
				   *value;

		while (wire_startup_next(su, &pos, &key, &value))
			if (strncmp(key, "_pq_.", 5) == 0 && nunknown < WIRE_MAX_STARTUP_PARAMS)
				unknown[nunknown++] = key;
	}
	if (WIRE_PROTOCOL_MINOR(m.code) > (uint32_t) latest || nunknown > 0)
		wire_put_negotiate_protocol_version(&c->out, c->protocol, unknown, nunknown);
	return true;
}

/* Expect a PasswordMessage-family ('p') message; its body or NULL. */
static bool
read_password_message(Conn *c, WireMessage *m)
{
	if (!conn_flush(c, auth_left(c)))
		return false;
	if (conn_next(c, m, auth_left(c)) != IO_OK)
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

/* auth_ok or auth_failed: user, method, and one more field */
static void
auth_event(Conn *c, const char *event, const char *key, const char *value)
{
	EventLine	ev;

	if (!conn_event_begin(c, &ev, event))
		return;
	json_str(&ev.j, "user", c->user);
	json_str(&ev.j, "method", auth_method_name(c->cfg->auth.method));
	json_str(&ev.j, key, value);
	conn_event_end(c, &ev);
}

static void
auth_failed(Conn *c, const char *why)
{
	char		msg[200];

	snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", c->user);
	auth_event(c, "auth_failed", "reason", why);
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
	auth_event(c, "auth_ok", "application_name", c->appname);
	return true;
}

static void
send_session_parameters(Conn *c)
{
	uint8_t		key[32];
	char		version[64];

	wire_put_parameter_status(&c->out, "application_name", c->appname);
	wire_put_parameter_status(&c->out, "client_encoding", "UTF8");
	wire_put_parameter_status(&c->out, "DateStyle", "ISO, MDY");
	wire_put_parameter_status(&c->out, "default_transaction_read_only", "off");
	wire_put_parameter_status(&c->out, "in_hot_standby", "off");
	wire_put_parameter_status(&c->out, "integer_datetimes", "on");
	wire_put_parameter_status(&c->out, "IntervalStyle", "postgres");
	wire_put_parameter_status(&c->out, "is_superuser", "on");
	wire_put_parameter_status(&c->out, "server_encoding", "UTF8");
	snprintf(version, sizeof(version), SENDER_SERVER_VERSION_FMT, c->src->version->major);
	wire_put_parameter_status(&c->out, "server_version", version);
	wire_put_parameter_status(&c->out, "session_authorization", c->user);
	wire_put_parameter_status(&c->out, "standard_conforming_strings", "on");
	wire_put_parameter_status(&c->out, "TimeZone", "UTC");
	RAND_bytes(key, sizeof(key));
	wire_put_backend_key(&c->out, (uint32_t) getpid(), key, SENDER_CANCEL_KEY_LEN(c->protocol));
	wire_put_ready_for_query(&c->out, 'I');
}

/*
 * An authenticated connection takes one of the --max-connections places
 * (SenderShared); false when they are all taken.  The flag is set before the
 * count: a process killed between the two can at worst make the listener
 * free a place it never counted (one connection too many for a while, the
 * count never below 0), never keep a place taken for good.
 */
static bool
take_place(Conn *c)
{
	SenderShared *sh = c->cfg->shared;
	int			cur;

	if (sh == NULL)
		return true;
	atomic_store(&sh->authed[c->place], 1);
	cur = atomic_load(&sh->authenticated);
	do
	{
		if (cur >= c->cfg->max_connections)
		{
			atomic_store(&sh->authed[c->place], 0);
			return false;
		}
	} while (!atomic_compare_exchange_weak(&sh->authenticated, &cur, cur + 1));
	return true;
}

bool
session_establish(Conn *c)
{
	WireStartup su;
	const char *user;
	const char *repl;
	const char *app;
	bool		is_repl = false;
	EventLine	ev;

	if (!read_startup(c, &su))
	{
		if (auth_left(c) == 0)
			conn_event(c, "authentication_timeout");
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
	if (conn_event_begin(c, &ev, "connection"))
	{
		json_str(&ev.j, "user", c->user);
		json_str(&ev.j, "application_name", c->appname);
		conn_event_end(c, &ev);
	}
	if (!authenticate(c))
	{
		if (auth_left(c) == 0)
			conn_event(c, "authentication_timeout");
		return false;
	}
	if (!take_place(c))
	{
		char		msg[120];

		snprintf(msg, sizeof(msg), "number of requested standby connections exceeds max_wal_senders (currently %d)",
				 c->cfg->max_connections);
		conn_fatal(c, "53300", msg, NULL);
		return false;
	}
	send_session_parameters(c);
	return conn_flush(c, auth_left(c));
}
