/*
 * conn.c — replication commands over libpq (conn.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walsim/lsn.h"
#include "walsim/parse.h"
#include "walsim/segment.h"
#include "conn.h"

#define CLIENT_MAJOR 18

const char *
rcv_conn_message(PGconn *conn, char *buf, size_t len)
{
	size_t		n;

	snprintf(buf, len, "%s", conn ? PQerrorMessage(conn) : "no connection");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

static bool
result_error(PGconn *conn, PGresult *res, const char *command, WalsimError *err)
{
	char		msg[WALSIM_ERROR_MAX];

	walsim_error_set(err, "could not send replication command \"%s\": %s",
					 command, rcv_conn_message(conn, msg, sizeof(msg)));
	PQclear(res);
	return false;
}

/* Run a command that must return rows; *res is set on success. */
static bool
exec_tuples(PGconn *conn, const char *command, PGresult **res, WalsimError *err)
{
	*res = PQexec(conn, command);
	if (PQresultStatus(*res) != PGRES_TUPLES_OK)
		return result_error(conn, *res, command, err);
	return true;
}

/* connect_timeout of the connection string (libpq's meaning: seconds, 2 at least), or -1. */
static int
connstr_timeout_ms(const PQconninfoOption *opts)
{
	for (const PQconninfoOption *o = opts; o && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && o->val[0])
		{
			int			s = atoi(o->val);

			return s <= 0 ? -1 : (s < 2 ? 2 : s) * 1000;
		}
	return -1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Drive a non-blocking connection attempt to its end: PQconnectdbParams
 * would block in libpq's own poll() (which retries after a signal), so a
 * server that accepts and never answers held the receiver, deaf to SIGTERM.
 * Here every wait is a poll() on the socket and on stop_fd, with a deadline.
 */
static bool
connect_wait(PGconn *conn, int stop_fd, volatile sig_atomic_t *stop, int timeout_ms,
			 WalsimError *err)
{
	int64_t		deadline = now_ms() + timeout_ms;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	for (;;)
	{
		struct pollfd pfd[2];
		int64_t		left;
		int			rc;

		if (st == PGRES_POLLING_OK)
			return true;
		if (st == PGRES_POLLING_FAILED)
		{
			char		msg[WALSIM_ERROR_MAX];

			return walsim_error_set(err, "could not connect: %s", rcv_conn_message(conn, msg, sizeof(msg)));
		}
		if (stop != NULL && *stop)
			return walsim_error_set(err, "connection attempt interrupted by a stop request");
		left = deadline - now_ms();
		if (left <= 0)
			return walsim_error_set(err, "could not connect: timed out after %d s (--connect-timeout)",
									timeout_ms / 1000);
		pfd[0] = (struct pollfd) {.fd = PQsocket(conn),
		.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		pfd[1] = (struct pollfd) {.fd = stop_fd, .events = POLLIN};
		rc = poll(pfd, stop_fd >= 0 ? 2 : 1, (int) left);
		if (rc < 0 && errno != EINTR)
			return walsim_error_set(err, "could not connect: poll: %s", strerror(errno));
		if (rc > 0 && pfd[0].revents)
			st = PQconnectPoll(conn);
	}
}

PGconn *
rcv_connect(const ReceiverOptions *opt, int stop_fd, volatile sig_atomic_t *stop, WalsimError *err)
{
	const char *keywords[64];
	const char *values[64];
	int			n = 0;
	PQconninfoOption *conn_opts = NULL;
	PGconn	   *conn;
	int			timeout_ms;

	/*
	 * As GetConnection(): every option of the connection string except
	 * dbname, then our own replication settings, then -h/-p/-U.
	 */
	if (opt->connstr != NULL)
	{
		char	   *errmsg = NULL;

		conn_opts = PQconninfoParse(opt->connstr, &errmsg);
		if (conn_opts == NULL)
		{
			walsim_error_set(err, "invalid connection string: %s",
							 errmsg ? errmsg : "out of memory");
			PQfreemem(errmsg);
			return NULL;
		}
		for (PQconninfoOption *o = conn_opts; o->keyword != NULL && n < 48; o++)
		{
			if (o->val != NULL && o->val[0] != '\0' && strcmp(o->keyword, "dbname") != 0)
			{
				keywords[n] = o->keyword;
				values[n] = o->val;
				n++;
			}
		}
	}
	keywords[n] = "dbname";
	values[n++] = "replication";
	keywords[n] = "replication";
	values[n++] = "true";
	keywords[n] = "fallback_application_name";
	values[n++] = "walsim-receiver";
	if (opt->host)
	{
		keywords[n] = "host";
		values[n++] = opt->host;
	}
	if (opt->port)
	{
		keywords[n] = "port";
		values[n++] = opt->port;
	}
	if (opt->user)
	{
		keywords[n] = "user";
		values[n++] = opt->user;
	}
	keywords[n] = NULL;
	values[n] = NULL;

	timeout_ms = connstr_timeout_ms(conn_opts);
	if (timeout_ms < 0)
		timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_S * 1000;
	conn = PQconnectStartParams(keywords, values, 0);
	PQconninfoFree(conn_opts);
	if (conn == NULL)
	{
		walsim_error_set(err, "could not connect: out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD || !connect_wait(conn, stop_fd, stop, timeout_ms, err))
	{
		char		msg[WALSIM_ERROR_MAX];

		if (PQstatus(conn) == CONNECTION_BAD && !(stop && *stop))
			walsim_error_set(err, "could not connect: %s", rcv_conn_message(conn, msg, sizeof(msg)));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

bool
rcv_check_server(PGconn *conn, mode_t *file_mode, WalsimError *err)
{
	const char *idt = PQparameterStatus(conn, "integer_datetimes");
	PGresult   *res;
	unsigned int mode;
	char		extra;

	if (idt == NULL)
		return walsim_error_set(err, "could not determine server setting for integer_datetimes");
	if (strcmp(idt, "on") != 0)
		return walsim_error_set(err, "integer_datetimes compile flag does not match server (server has \"%s\")", idt);

	*file_mode = 0600;
	if (PQserverVersion(conn) < 110000)
		return true;
	if (!exec_tuples(conn, "SHOW data_directory_mode", &res, err))
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) < 1)
	{
		walsim_error_set(err, "could not fetch group access flag: got %d rows and %d fields, expected 1 row and 1 field",
						 PQntuples(res), PQnfields(res));
		PQclear(res);
		return false;
	}
	if (sscanf(PQgetvalue(res, 0, 0), "%o%c", &mode, &extra) != 1)
	{
		walsim_error_set(err, "group access flag could not be parsed: \"%s\"", PQgetvalue(res, 0, 0));
		PQclear(res);
		return false;
	}
	PQclear(res);
	/* the server's files are 0600, or 0640 when the group may read them */
	*file_mode = (mode & 0040) ? 0640 : 0600;
	return true;
}

bool
rcv_check_version(PGconn *conn, WalsimError *err)
{
	int			version = PQserverVersion(conn);

	if (version < 90300 || version / 10000 > CLIENT_MAJOR)
	{
		const char *text = PQparameterStatus(conn, "server_version");

		return walsim_error_set(err,
								"incompatible server version %s; client does not support streaming from server versions %s",
								text ? text : "unknown",
								version < 90300 ? "older than 9.3" : "newer than 18");
	}
	return true;
}

bool
rcv_identify_system(PGconn *conn, SystemIdentity *id, WalsimError *err)
{
	PGresult   *res;
	WalsimError lsn_err;

	if (!exec_tuples(conn, "IDENTIFY_SYSTEM", &res, err))
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) < 3)
	{
		walsim_error_set(err, "could not identify system: got %d rows and %d fields, expected %d rows and %d or more fields",
						 PQntuples(res), PQnfields(res), 1, 3);
		PQclear(res);
		return false;
	}
	if (PQgetisnull(res, 0, 0) ||
		strlen(PQgetvalue(res, 0, 0)) >= SYSID_TEXT_MAX ||
		!parse_u64("system identifier", PQgetvalue(res, 0, 0), 0, UINT64_MAX, &id->sysid_value, NULL))
	{
		walsim_error_set(err, "could not identify system: invalid system identifier \"%s\"",
						 PQgetvalue(res, 0, 0));
		PQclear(res);
		return false;
	}
	snprintf(id->sysid, sizeof(id->sysid), "%s", PQgetvalue(res, 0, 0));
	if (PQgetisnull(res, 0, 1) || !parse_u32("timeline", PQgetvalue(res, 0, 1), 1, UINT32_MAX, &id->tli, NULL))
	{
		walsim_error_set(err, "could not identify system: invalid timeline \"%s\"", PQgetvalue(res, 0, 1));
		PQclear(res);
		return false;
	}
	if (PQgetisnull(res, 0, 2) || !lsn_parse(PQgetvalue(res, 0, 2), &id->xlogpos, &lsn_err))
	{
		walsim_error_set(err, "could not identify system: could not parse write-ahead log location \"%s\"",
						 PQgetvalue(res, 0, 2));
		PQclear(res);
		return false;
	}
	id->dbname_null = PQnfields(res) < 4 || PQgetisnull(res, 0, 3);
	PQclear(res);
	return true;
}

bool
rcv_show_segment_size(PGconn *conn, uint32_t *segsize, WalsimError *err)
{
	PGresult   *res;
	bool		ok;

	if (!exec_tuples(conn, "SHOW wal_segment_size", &res, err))
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) < 1)
	{
		walsim_error_set(err, "could not fetch WAL segment size: got %d rows and %d fields, expected 1 row and 1 or more fields",
						 PQntuples(res), PQnfields(res));
		PQclear(res);
		return false;
	}
	ok = wal_segment_size_parse(PQgetvalue(res, 0, 0), segsize, err);
	PQclear(res);
	if (!ok)
		walsim_error_prefix(err, "WAL segment size could not be parsed: ");
	return ok;
}

/* A slot name goes into a command inside double quotes: keep it to what PostgreSQL allows. */
static bool
check_slot_name(const char *slot, WalsimError *err)
{
	size_t		len = strlen(slot);

	if (len == 0 || len >= 64)
		return walsim_error_set(err, "replication slot name \"%s\" must have 1 to 63 characters", slot);
	for (const char *p = slot; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return walsim_error_set(err, "replication slot name \"%s\" contains invalid character '%c' (only lower case letters, numbers and the underscore)",
									slot, *p);
	return true;
}

bool
rcv_read_slot(PGconn *conn, const char *slot, bool *has_lsn, uint64_t *restart_lsn,
			  uint32_t *restart_tli, WalsimError *err)
{
	char		command[128];
	PGresult   *res;
	WalsimError lsn_err;

	if (!check_slot_name(slot, err))
		return false;
	snprintf(command, sizeof(command), "READ_REPLICATION_SLOT %s", slot);
	if (!exec_tuples(conn, command, &res, err))
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) != 3)
	{
		walsim_error_set(err, "could not read replication slot \"%s\": got %d rows and %d fields, expected %d rows and %d fields",
						 slot, PQntuples(res), PQnfields(res), 1, 3);
		PQclear(res);
		return false;
	}
	if (PQgetisnull(res, 0, 0))
	{
		walsim_error_set(err, "replication slot \"%s\" does not exist", slot);
		PQclear(res);
		return false;
	}
	*has_lsn = !PQgetisnull(res, 0, 1);
	if (*has_lsn)
	{
		if (!lsn_parse(PQgetvalue(res, 0, 1), restart_lsn, &lsn_err) ||
			!parse_u32("restart_tli", PQgetvalue(res, 0, 2), 1, UINT32_MAX, restart_tli, NULL))
		{
			walsim_error_set(err, "could not parse restart_lsn \"%s\" / restart_tli \"%s\" for replication slot \"%s\"",
							 PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), slot);
			PQclear(res);
			return false;
		}
	}
	PQclear(res);
	return true;
}

bool
rcv_create_slot(PGconn *conn, const char *slot, bool if_not_exists, WalsimError *err)
{
	char		command[160];
	PGresult   *res;

	if (!check_slot_name(slot, err))
		return false;
	snprintf(command, sizeof(command), "CREATE_REPLICATION_SLOT \"%s\" PHYSICAL", slot);
	res = PQexec(conn, command);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* 42710: duplicate_object */
		if (if_not_exists && state != NULL && strcmp(state, "42710") == 0)
		{
			PQclear(res);
			return true;
		}
		return result_error(conn, res, command, err);
	}
	PQclear(res);
	return true;
}

bool
rcv_drop_slot(PGconn *conn, const char *slot, WalsimError *err)
{
	char		command[160];
	PGresult   *res;

	if (!check_slot_name(slot, err))
		return false;
	snprintf(command, sizeof(command), "DROP_REPLICATION_SLOT \"%s\"", slot);
	res = PQexec(conn, command);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(conn, res, command, err);
	PQclear(res);
	return true;
}

bool
rcv_timeline_history(PGconn *conn, uint32_t tli, char **content, size_t *len,
					 WalsimError *err)
{
	char		command[64];
	char		expected[WAL_FILE_NAME_MAX];
	PGresult   *res;
	int			n;

	snprintf(command, sizeof(command), "TIMELINE_HISTORY %" PRIu32, tli);
	if (!exec_tuples(conn, command, &res, err))
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) != 2)
	{
		walsim_error_set(err, "unexpected response to TIMELINE_HISTORY command: got %d rows and %d fields, expected %d rows and %d fields",
						 PQntuples(res), PQnfields(res), 1, 2);
		PQclear(res);
		return false;
	}
	wal_history_name(expected, tli);
	if (strcmp(PQgetvalue(res, 0, 0), expected) != 0)
	{
		walsim_error_set(err, "server reported unexpected history file name for timeline %" PRIu32 ": \"%s\"",
						 tli, PQgetvalue(res, 0, 0));
		PQclear(res);
		return false;
	}
	n = PQgetlength(res, 0, 1);
	*content = malloc((size_t) n + 1);
	if (*content == NULL)
	{
		PQclear(res);
		return walsim_error_set(err, "out of memory for the history of timeline %" PRIu32, tli);
	}
	memcpy(*content, PQgetvalue(res, 0, 1), (size_t) n);
	(*content)[n] = '\0';
	*len = (size_t) n;
	PQclear(res);
	return true;
}
