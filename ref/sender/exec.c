/*
 * exec.c — the replication command loop of a walsim-sender connection
 * after authentication (PostgreSQL's exec_replication_command for a
 * physical walsender): simple queries are parsed (command.h) and answered;
 * START_REPLICATION hands over to stream.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "command.h"
#include "exec.h"
#include "stream.h"
#include "view.h"

/* OIDs of the column types the replication commands return */
#define OID_BYTEA	17
#define OID_INT8	20
#define OID_INT4	23
#define OID_TEXT	25

/*
 * What the replication commands of the WAL's major answer differently
 * (observed on 13.23, 14.23, 15.20, 16.14, 17.10, 18.4; docs/conformance.md):
 * IDENTIFY_SYSTEM's timeline is int8 from 16 (walsender.c IdentifySystem,
 * int4 before); TIMELINE_HISTORY's content is bytea in 13 and text from 14
 * (walsender.c SendTimeLineHistory); READ_REPLICATION_SLOT exists from 15.
 */
#define MAJOR(c)				((c)->src->version->major)
#define TIMELINE_OID(c)			(MAJOR(c) >= 16 ? OID_INT8 : OID_INT4)
#define HISTORY_CONTENT_OID(c)	(MAJOR(c) >= 14 ? OID_TEXT : OID_BYTEA)

static const WireField text_field = {.type_oid = OID_TEXT, .typlen = -1, .typmod = -1};

static WireField
field(const char *name, uint32_t type)
{
	WireField	f = text_field;

	f.name = name;
	f.type_oid = type;
	f.typlen = (type == OID_TEXT || type == OID_BYTEA) ? -1 : type == OID_INT4 ? 4 : 8;
	return f;
}

static void
cmd_identify_system(Conn *c)
{
	WireField	f[4] = {field("systemid", OID_TEXT), field("timeline", TIMELINE_OID(c)),
	field("xlogpos", OID_TEXT), field("dbname", OID_TEXT)};
	char		sysid[32],
				tli[16],
				pos[LSN_TEXT_MAX];
	const char *vals[4] = {sysid, tli, pos, NULL};
	uint64_t	id = c->cfg->sysid_override_set ? c->cfg->sysid_override : c->src->sysid;
	uint32_t	timeline;

	/* first look for new WAL: a new timeline changes the answer */
	if (!view_refresh(c))
		return;
	timeline = c->src->tli;
	if (c->cfg->misbehave & MIS_WRONG_SYSID)
		id += 1;
	if (c->cfg->misbehave & MIS_LOWER_TIMELINE)
		timeline -= 1;
	snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long) id);
	snprintf(tli, sizeof(tli), "%u", timeline);
	lsn_format(view_end(c), pos);
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
		snprintf(value, sizeof(value), SENDER_SERVER_VERSION_NUM_FMT, c->src->version->major);
	else if (strcmp(name, "server_version") == 0)
		snprintf(value, sizeof(value), SENDER_SERVER_VERSION_FMT, c->src->version->major);
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
	WireField	f[2] = {field("filename", OID_TEXT), field("content", HISTORY_CONTENT_OID(c))};
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
	if (cmd->reserve_wal && !view_refresh(c))
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
	EventLine	ev;

	if (!repl_command_parse(sql, &cmd, &sqlstate, &err))
	{
		conn_error(c, sqlstate, err.message, NULL);
		return;
	}
	if (conn_event_begin(c, &ev, "command"))
	{
		json_str(&ev.j, "command", repl_command_name(cmd.kind));
		json_str(&ev.j, "text", sql);
		conn_event_end(c, &ev);
	}
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
			if (MAJOR(c) < 15)
			{
				/* not in 13/14's replication grammar: it falls through to SQL */
				conn_error(c, "0A000", "cannot execute SQL commands in WAL sender for physical replication", NULL);
				break;
			}
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

void
exec_command_loop(Conn *c)
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
