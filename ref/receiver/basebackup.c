/*
 * basebackup.c — walsim-receiver --base-backup (basebackup.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "walsim/waldir.h"
#include "walsim/walpage.h"
#include "basebackup.h"
#include "tarx.h"

#define MIN_MAJOR 13
#define MAX_MAJOR 18
#define BACKUP_LABEL_DEFAULT "walsim-receiver base backup"

/* What the server said about the backup. */
typedef struct BackupState
{
	int			major;
	uint64_t	start;
	uint32_t	start_tli;
	uint64_t	end;
	uint32_t	end_tli;
	int			manifest_fd;	/* backup_manifest being written, -1 if none */
	uint64_t	manifest_bytes;
	TarExtract	tar;
	bool		in_archive;		/* 15+: between 'n' and the next 'n'/'m'/end */
	int			archives;
} BackupState;

bool
basebackup_command(int major, const char *label, bool fast, char *buf, size_t size)
{
	int			n;

	if (major < MIN_MAJOR || major > MAX_MAJOR || strchr(label, '\'') != NULL ||
		strchr(label, '\\') != NULL)
		return false;
	if (major >= 15)
		n = snprintf(buf, size, "BASE_BACKUP (LABEL '%s', CHECKPOINT '%s', WAL true, WAIT false, "
					 "MANIFEST 'yes')", label, fast ? "fast" : "spread");
	else
		n = snprintf(buf, size, "BASE_BACKUP LABEL '%s'%s WAL NOWAIT MANIFEST 'yes'",
					 label, fast ? " FAST" : "");
	return n > 0 && (size_t) n < size;
}

/* Append key='value' (libpq quoting: backslash before ' and \). */
static bool
append_conninfo_item(char *buf, size_t size, size_t *len, const char *key, const char *value)
{
	int			n = snprintf(buf + *len, size - *len, "%s%s='", *len > 0 ? " " : "", key);

	if (n < 0 || (size_t) n >= size - *len)
		return false;
	*len += (size_t) n;
	for (const char *c = value; *c != '\0'; c++)
	{
		if (*len + 3 >= size)
			return false;
		if (*c == '\'' || *c == '\\')
			buf[(*len)++] = '\\';
		buf[(*len)++] = *c;
	}
	if (*len + 2 >= size)
		return false;
	buf[(*len)++] = '\'';
	buf[*len] = '\0';
	return true;
}

bool
basebackup_conninfo(PGconn *conn, char *buf, size_t size)
{
	PQconninfoOption *opts = PQconninfo(conn);
	size_t		len = 0;
	bool		ok = true;

	if (opts == NULL || size == 0)
		return false;
	buf[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword != NULL && ok; o++)
	{
		/*
		 * What GenerateRecoveryConfig() leaves out, plus the password (use a
		 * passfile) and options left at libpq's compiled-in default: the
		 * standby's libpq may be older than ours and refuse options it does
		 * not know (sslsni is 14+), so only what was asked for is written.
		 */
		if (o->val == NULL || o->val[0] == '\0' ||
			(o->compiled != NULL && strcmp(o->val, o->compiled) == 0) ||
			strcmp(o->keyword, "dbname") == 0 || strcmp(o->keyword, "replication") == 0 ||
			strcmp(o->keyword, "fallback_application_name") == 0 ||
			strcmp(o->keyword, "password") == 0 || strchr(o->dispchar, 'D') != NULL)
			continue;
		ok = append_conninfo_item(buf, size, &len, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return ok;
}

/* The server's message, for errors. */
static const char *
server_message(PGconn *conn, char *buf, size_t len)
{
	return rcv_conn_message(conn, buf, len);
}

/* A result set of one row: (LSN text, timeline). */
static bool
read_position(PGconn *conn, const char *what, uint64_t *lsn, uint32_t *tli, WalsimError *err)
{
	PGresult   *res = PQgetResult(conn);
	WalsimError lsn_err;
	char		msg[WALSIM_ERROR_MAX];
	bool		ok = false;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		walsim_error_set(err, "could not get the %s position of the backup: %s", what,
						 server_message(conn, msg, sizeof(msg)));
	else if (PQntuples(res) != 1 || PQnfields(res) < 2)
		walsim_error_set(err, "%s position of the backup: got %d rows and %d fields, expected 1 row and 2 fields",
						 what, PQntuples(res), PQnfields(res));
	else if (!lsn_parse(PQgetvalue(res, 0, 0), lsn, &lsn_err))
		walsim_error_set(err, "%s position of the backup: %s", what, lsn_err.message);
	else
	{
		*tli = (uint32_t) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
		ok = *tli > 0 || walsim_error_set(err, "%s position of the backup: invalid timeline \"%s\"",
										  what, PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return ok;
}

/* The tablespace list: only the data directory (a row with NULL spcoid) is supported. */
static bool
read_tablespaces(PGconn *conn, int *count, WalsimError *err)
{
	PGresult   *res = PQgetResult(conn);
	char		msg[WALSIM_ERROR_MAX];
	bool		ok = true;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		walsim_error_set(err, "could not get the backup's tablespace list: %s",
						 server_message(conn, msg, sizeof(msg)));
		PQclear(res);
		return false;
	}
	*count = PQntuples(res);
	for (int i = 0; i < PQntuples(res) && ok; i++)
		if (!PQgetisnull(res, i, 0))
			ok = walsim_error_set(err, "the server has a tablespace %s at %s: walsim-receiver backs up "
								  "the data directory only", PQgetvalue(res, i, 0),
								  PQnfields(res) > 1 ? PQgetvalue(res, i, 1) : "?");
	PQclear(res);
	return ok;
}

static bool
write_all(int fd, const char *what, const void *data, size_t len, WalsimError *err)
{
	const char *p = data;

	while (len > 0)
	{
		ssize_t		w = write(fd, p, len);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return walsim_error_set(err, "could not write %s: %s", what, strerror(errno));
		}
		p += w;
		len -= (size_t) w;
	}
	return true;
}

static bool
open_manifest(Receiver *r, BackupState *b, WalsimError *err)
{
	b->manifest_fd = openat(r->dirfd, "backup_manifest", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
							r->file_mode);
	if (b->manifest_fd < 0)
		return walsim_error_set(err, "could not create file \"backup_manifest\": %s", strerror(errno));
	return true;
}

static bool
close_manifest(Receiver *r, BackupState *b, WalsimError *err)
{
	int			fd = b->manifest_fd;

	b->manifest_fd = -1;
	if (fd < 0)
		return true;
	if (r->opt->do_sync && fsync(fd) != 0)
	{
		close(fd);
		return walsim_error_set(err, "could not fsync \"backup_manifest\": %s", strerror(errno));
	}
	close(fd);
	return true;
}

/* 13/14: one COPY OUT stream of raw bytes (an archive or the manifest). */
static bool
receive_raw_copy(Receiver *r, BackupState *b, bool manifest, WalsimError *err)
{
	PGresult   *res = PQgetResult(r->conn);
	char		msg[WALSIM_ERROR_MAX];
	char	   *buf;
	int			n;

	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		walsim_error_set(err, "could not get the %s COPY stream: %s", manifest ? "manifest" : "archive",
						 server_message(r->conn, msg, sizeof(msg)));
		PQclear(res);
		return false;
	}
	PQclear(res);
	if (manifest && !open_manifest(r, b, err))
		return false;
	if (!manifest)
	{
		tarx_init(&b->tar, r->dirfd, r->file_mode, r->opt->do_sync);
		b->archives++;
	}
	while ((n = PQgetCopyData(r->conn, &buf, 0)) > 0)
	{
		bool		ok;

		if (manifest)
		{
			ok = write_all(b->manifest_fd, "backup_manifest", buf, (size_t) n, err);
			b->manifest_bytes += (uint64_t) n;
		}
		else
			ok = tarx_feed(&b->tar, (const uint8_t *) buf, (size_t) n, err);
		PQfreemem(buf);
		if (!ok)
			return false;
	}
	if (n == -2)
		return walsim_error_set(err, "could not read COPY data: %s", server_message(r->conn, msg, sizeof(msg)));
	return manifest ? close_manifest(r, b, err) : tarx_finish(&b->tar, err);
}

/* 15+: the one COPY OUT stream of typed messages. */
static bool
receive_typed_copy(Receiver *r, BackupState *b, WalsimError *err)
{
	PGresult   *res = PQgetResult(r->conn);
	char		msg[WALSIM_ERROR_MAX];
	char	   *buf;
	int			n;
	bool		in_manifest = false;

	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		walsim_error_set(err, "could not get the backup's COPY stream: %s",
						 server_message(r->conn, msg, sizeof(msg)));
		PQclear(res);
		return false;
	}
	PQclear(res);
	while ((n = PQgetCopyData(r->conn, &buf, 0)) > 0)
	{
		const uint8_t *p = (const uint8_t *) buf + 1;
		size_t		len = (size_t) n - 1;
		bool		ok = true;

		switch (buf[0])
		{
			case 'n':
				{
					/* archive name and tablespace path, two NUL-terminated strings */
					const char *name = (const char *) p;
					size_t		nl = strnlen(name, len);

					if (in_manifest || nl == len)
						ok = walsim_error_set(err, "malformed 'n' (new archive) message");
					else if (b->in_archive && !tarx_finish(&b->tar, err))
						ok = false;
					else if (strcmp(name, "base.tar") != 0)
						ok = walsim_error_set(err, "archive \"%s\" is not the data directory's (base.tar): "
											  "walsim-receiver backs up the data directory only", name);
					else
					{
						tarx_init(&b->tar, r->dirfd, r->file_mode, r->opt->do_sync);
						b->in_archive = true;
						b->archives++;
					}
					break;
				}
			case 'd':
				if (in_manifest)
				{
					ok = write_all(b->manifest_fd, "backup_manifest", p, len, err);
					b->manifest_bytes += len;
				}
				else if (!b->in_archive)
					ok = walsim_error_set(err, "archive data ('d') before any archive ('n')");
				else
					ok = tarx_feed(&b->tar, p, len, err);
				break;
			case 'p':
				if (len != 8)
					ok = walsim_error_set(err, "progress message ('p') of %zu bytes, expected 8", len);
				break;
			case 'm':
				if (in_manifest)
					ok = walsim_error_set(err, "a second manifest ('m') message");
				else if (b->in_archive && !tarx_finish(&b->tar, err))
					ok = false;
				else
				{
					b->in_archive = false;
					in_manifest = true;
					ok = open_manifest(r, b, err);
				}
				break;
			default:
				ok = walsim_error_set(err, "unknown CopyData message type '%c' in the backup stream",
									  buf[0] >= 32 && buf[0] < 127 ? buf[0] : '?');
		}
		PQfreemem(buf);
		if (!ok)
			return false;
	}
	if (n == -2)
		return walsim_error_set(err, "could not read COPY data: %s", server_message(r->conn, msg, sizeof(msg)));
	if (b->in_archive)
	{
		b->in_archive = false;
		if (!tarx_finish(&b->tar, err))
			return false;
	}
	return close_manifest(r, b, err);
}

/* Whatever results remain must be successes. */
static bool
drain_results(PGconn *conn, WalsimError *err)
{
	PGresult   *res;
	char		msg[WALSIM_ERROR_MAX];
	bool		ok = true;

	while ((res = PQgetResult(conn)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (ok && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			ok = walsim_error_set(err, "final receive failed: %s", server_message(conn, msg, sizeof(msg)));
		PQclear(res);
	}
	return ok;
}

/* The directory -D: created 0700 if absent; must be empty. */
static bool
open_target(Receiver *r, WalsimError *err)
{
	const char *dir = r->opt->directory;
	DIR		   *d;
	struct dirent *e;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return walsim_error_set(err, "could not create directory \"%s\": %s", dir, strerror(errno));
	r->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return walsim_error_set(err, "could not access directory \"%s\": %s", dir, strerror(errno));
	d = opendir(dir);
	if (d == NULL)
		return walsim_error_set(err, "could not open directory \"%s\": %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
		{
			closedir(d);
			return walsim_error_set(err, "directory \"%s\" exists but is not empty", dir);
		}
	closedir(d);
	if (fchmod(r->dirfd, (r->file_mode & 0040) ? 0750 : 0700) != 0)
		return walsim_error_set(err, "could not set permissions of \"%s\": %s", dir, strerror(errno));
	return true;
}

/* The backup's WAL must be valid from its start to its end (read with the verifier). */
static bool
check_backup_wal(Receiver *r, const BackupState *b, WalsimError *err)
{
	const WalVersionInfo *v = wal_version_by_major(b->major);
	char		waldir[4096];
	WalDirConfig cfg;
	WalDirResult res;
	char		end[LSN_TEXT_MAX],
				got[LSN_TEXT_MAX];

	if (v == NULL)
		return walsim_error_set(err, "no WAL page format known for PostgreSQL %d", b->major);
	snprintf(waldir, sizeof(waldir), "%s/pg_wal", r->opt->directory);
	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = waldir;
	cfg.tli = b->start_tli;
	cfg.start_lsn = b->start - b->start % WAL_BLCKSZ;
	cfg.seg_size = r->segsize;
	cfg.magic = v->page_magic;
	if (!waldir_find_end(&cfg, &res, err))
		return false;
	if (res.valid_end < b->end)
		return walsim_error_set(err, "the backup's WAL ends at %s (%s), before the backup's end %s",
								lsn_format(res.valid_end, got), res.message, lsn_format(b->end, end));
	return true;
}

static bool
write_text_file(Receiver *r, const char *name, const char *text, int flags, WalsimError *err)
{
	int			fd = openat(r->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | flags, r->file_mode);
	bool		ok;

	if (fd < 0)
		return walsim_error_set(err, "could not open \"%s\": %s", name, strerror(errno));
	ok = write_all(fd, name, text, strlen(text), err);
	if (ok && r->opt->do_sync && fsync(fd) != 0)
		ok = walsim_error_set(err, "could not fsync \"%s\": %s", name, strerror(errno));
	close(fd);
	return ok;
}

/* postgresql.conf quoting: ' doubled, \ doubled. */
static bool
conf_quote(const char *in, char *out, size_t size)
{
	size_t		n = 0;

	if (size < 3)
		return false;
	out[n++] = '\'';
	for (const char *c = in; *c != '\0'; c++)
	{
		if (n + 4 >= size)
			return false;
		if (*c == '\'' || *c == '\\')
			out[n++] = *c;
		out[n++] = *c;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return true;
}

/* -R: standby.signal, and primary_conninfo (+ primary_slot_name) in postgresql.auto.conf. */
static bool
write_recovery_conf(Receiver *r, WalsimError *err)
{
	char		conninfo[4096],
				quoted[8300],
				slot[300],
				text[9000];
	int			n;

	if (!basebackup_conninfo(r->conn, conninfo, sizeof(conninfo)) ||
		!conf_quote(conninfo, quoted, sizeof(quoted)))
		return walsim_error_set(err, "primary_conninfo too long");
	n = snprintf(text, sizeof(text), "# Recovery settings written by walsim-receiver --base-backup -R\n"
				 "primary_conninfo = %s\n", quoted);
	if (r->opt->slot != NULL)
	{
		if (!conf_quote(r->opt->slot, slot, sizeof(slot)))
			return walsim_error_set(err, "slot name too long");
		n += snprintf(text + n, sizeof(text) - (size_t) n, "primary_slot_name = %s\n", slot);
	}
	if (n < 0 || (size_t) n >= sizeof(text))
		return walsim_error_set(err, "recovery settings too long");
	return write_text_file(r, "postgresql.auto.conf", text, O_APPEND, err) &&
		write_text_file(r, "standby.signal", "", O_TRUNC, err);
}

/* fsync the directory tree (files were synced as they were written). */
static bool
sync_dirs(const char *path, WalsimError *err)
{
	DIR		   *d = opendir(path);
	struct dirent *e;
	bool		ok = true;

	if (d == NULL)
		return walsim_error_set(err, "could not open directory \"%s\": %s", path, strerror(errno));
	while (ok && (e = readdir(d)) != NULL)
	{
		char		sub[4096];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			ok = sync_dirs(sub, err);
	}
	if (ok && fsync(dirfd(d)) != 0)
		ok = walsim_error_set(err, "could not fsync directory \"%s\": %s", path, strerror(errno));
	closedir(d);
	return ok;
}

static void
backup_event(Receiver *r, const char *event, const BackupState *b, bool done)
{
	EventLine	ev;

	if (!events_begin(&r->events, &ev, event))
		return;
	json_i64(&ev.j, "server_version", PQserverVersion(r->conn));
	json_lsn(&ev.j, "start", b->start);
	json_u64(&ev.j, "timeline", b->start_tli);
	if (done)
	{
		json_lsn(&ev.j, "end", b->end);
		json_u64(&ev.j, "files", b->tar.files);
		json_u64(&ev.j, "bytes", b->tar.bytes);
		json_u64(&ev.j, "manifest_bytes", b->manifest_bytes);
	}
	events_end(&r->events, &ev);
}

bool
basebackup_run(Receiver *r, WalsimError *err)
{
	BackupState b;
	char		command[512];
	char		msg[WALSIM_ERROR_MAX];
	char		start[LSN_TEXT_MAX],
				end[LSN_TEXT_MAX];
	int			ntablespaces = 0;
	bool		ok;

	memset(&b, 0, sizeof(b));
	b.manifest_fd = -1;
	b.tar.fd = -1;
	b.major = r->server_major;
	if (!basebackup_command(b.major, r->opt->label ? r->opt->label : BACKUP_LABEL_DEFAULT,
							r->opt->fast_checkpoint, command, sizeof(command)))
		return walsim_error_set(err, "cannot take a base backup of a PostgreSQL %d server "
								"(supported: %d to %d; a label without quotes or backslashes)",
								b.major, MIN_MAJOR, MAX_MAJOR);
	if (!rcv_show_segment_size(r->conn, &r->segsize, err) || !open_target(r, err))
		return false;
	if (r->opt->verbose)
		receiver_log("initiating base backup: %s", command);
	if (!PQsendQuery(r->conn, command))
		return walsim_error_set(err, "could not send replication command \"BASE_BACKUP\": %s",
								server_message(r->conn, msg, sizeof(msg)));
	if (!read_position(r->conn, "start", &b.start, &b.start_tli, err) ||
		!read_tablespaces(r->conn, &ntablespaces, err))
		return false;
	if (r->opt->verbose)
		receiver_log("checkpoint completed; write-ahead log start point: %s on timeline %u",
					 lsn_format(b.start, start), b.start_tli);
	backup_event(r, "base_backup_started", &b, false);
	if (b.major >= 15)
		ok = receive_typed_copy(r, &b, err);
	else
	{
		ok = true;
		for (int i = 0; i < ntablespaces && ok; i++)
			ok = receive_raw_copy(r, &b, false, err);
		ok = ok && receive_raw_copy(r, &b, true, err);
	}
	if (!ok)
	{
		tarx_abort(&b.tar);
		if (b.manifest_fd >= 0)
			close(b.manifest_fd);
		return false;
	}
	if (b.archives != 1)
		return walsim_error_set(err, "the server sent %d archives, expected the data directory's only", b.archives);
	if (!read_position(r->conn, "end", &b.end, &b.end_tli, err) || !drain_results(r->conn, err))
		return false;
	if (r->opt->verbose)
		receiver_log("write-ahead log end point: %s; %" PRIu64 " files, %" PRIu64 " bytes",
					 lsn_format(b.end, end), b.tar.files, b.tar.bytes);
	if (r->opt->verify && !check_backup_wal(r, &b, err))
		return false;
	if (r->opt->write_recovery_conf && !write_recovery_conf(r, err))
		return false;
	if (r->opt->do_sync && !sync_dirs(r->opt->directory, err))
		return false;
	backup_event(r, "base_backup_done", &b, true);
	if (r->opt->verbose)
		receiver_log("base backup completed");
	return true;
}
