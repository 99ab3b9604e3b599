/*
 * main.c — walsim-receiver: receive WAL from a PostgreSQL server (13 to 18)
 * like pg_receivewal and verify every record on arrival; or, with
 * --base-backup, take a base backup (basebackup.c).
 *
 * The outer loop is pg_receivewal's main()/StreamLog(): connect, check the
 * server, find where to start, stream until something ends the stream, and
 * reconnect after a pause unless --no-loop is given or a stop was asked for.
 * See docs/receiver.md for the user's view.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "basebackup.h"
#include "receiver.h"

#define EXIT_STREAM_FAILED 1
#define EXIT_BAD_USAGE 2

static volatile sig_atomic_t stop_requested = 0;
static int	stop_pipe[2] = {-1, -1};

#define STOP_GRACE_S 5

/*
 * A stop was requested STOP_GRACE_S ago and the receiver is still running:
 * it is blocked in a libpq call on a server that does not answer (a
 * replication command after the connection was made).  Nothing is lost by
 * leaving now: every segment write is followed by its own fsync.
 */
static void
stop_deadline_handler(int signo)
{
	static const char msg[] = "walsim-receiver: error: still blocked " "5" " s after the stop request (server not answering); exiting\n";
	ssize_t		ignored;

	(void) signo;
	ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void) ignored;
	_exit(EXIT_STREAM_FAILED);
}

/*
 * SIGINT/SIGTERM: ask the stream to stop cleanly (CopyDone, close files).
 * The pipe wakes up a select() or poll() that is already waiting (the
 * stream, the pause between connections, a connection attempt); a blocked
 * libpq call gets STOP_GRACE_S before the process leaves anyway.  A second
 * signal gets the default action.
 */
static void
stop_handler(int signo)
{
	int			saved = errno;
	ssize_t		ignored;

	if (!stop_requested)
		alarm(STOP_GRACE_S);
	stop_requested = 1;
	ignored = write(stop_pipe[1], "x", 1);
	(void) ignored;
	signal(signo, SIG_DFL);
	errno = saved;
}

static bool
setup_signals(WalsimError *err)
{
	struct sigaction sa;

	if (pipe2(stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return walsim_error_set(err, "could not create pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: select() must return */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = stop_deadline_handler;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return true;
}

/* Sleep ms milliseconds unless a stop is requested first. */
static void
interruptible_sleep(int ms)
{
	fd_set		fds;
	struct timeval tv;

	if (stop_requested)
		return;
	FD_ZERO(&fds);
	FD_SET(stop_pipe[0], &fds);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	(void) select(stop_pipe[0] + 1, &fds, NULL, NULL, &tv);
}

/* First connection: the checks pg_receivewal's main() makes once. */
static bool
first_connection(Receiver *r, WalsimError *err)
{
	r->conn = rcv_connect(r->opt, r->stop_fd, r->stop_requested, err);
	if (r->conn == NULL)
		return false;
	if (!rcv_check_server(r->conn, &r->file_mode, err) ||
		!rcv_identify_system(r->conn, &r->identity, err))
		return false;
	r->have_identity = true;
	r->server_major = PQserverVersion(r->conn) / 10000;
	if (!r->identity.dbname_null)
		return walsim_error_set(err, "replication connection is unexpectedly database specific");
	return true;
}

/* Where to start: --start, the directory, the slot, or the server's position. */
static bool
find_start(Receiver *r, bool first, const SystemIdentity *id, uint64_t *startpos,
		   uint32_t *tli, WalsimError *err)
{
	StreamStart found;

	if (first && r->opt->have_start)
	{
		*startpos = r->opt->start;
		*tli = id->tli;
	}
	else
	{
		if (!walfiles_find_start(r->dirfd, r->segsize, &found, err))
			return false;
		if (found.found)
		{
			*startpos = wal_segno_to_lsn(found.segno, 0, r->segsize);
			*tli = found.tli;
		}
		else if (r->opt->slot != NULL && r->server_major >= 15)
		{
			bool		has_lsn = false;

			if (!rcv_read_slot(r->conn, r->opt->slot, &has_lsn, startpos, tli, err))
				return false;
			if (!has_lsn)
			{
				*startpos = id->xlogpos;
				*tli = id->tli;
			}
		}
		else
		{
			*startpos = id->xlogpos;
			*tli = id->tli;
		}
	}
	*startpos -= wal_segment_offset(*startpos, r->segsize);
	return true;
}

/* StreamLog(): one connection's worth of streaming. */
static StreamResult
stream_log(Receiver *r, bool first, WalsimError *err)
{
	SystemIdentity id;
	uint64_t	startpos;
	uint32_t	tli;
	char		text[LSN_TEXT_MAX];
	StreamResult result;
	EventLine	ev;

	if (r->conn == NULL)
	{
		r->conn = rcv_connect(r->opt, r->stop_fd, r->stop_requested, err);
		if (r->conn == NULL)
			return STREAM_RETRY;
	}
	if (!rcv_check_version(r->conn, err))
		return STREAM_FATAL;
	if (!rcv_identify_system(r->conn, &id, err))
		return STREAM_RETRY;
	if (strcmp(id.sysid, r->identity.sysid) != 0)
	{
		walsim_error_set(err, "system identifier of the server changed: was %s, now %s",
						 r->identity.sysid, id.sysid);
		return STREAM_FATAL;
	}
	if (!find_start(r, first, &id, &startpos, &tli, err))
		return STREAM_RETRY;

	lsn_format(startpos, text);
	if (r->opt->verbose)
		receiver_log("starting log streaming at %s (timeline %" PRIu32 ")", text, tli);
	if (events_begin(&r->events, &ev, "connected"))
	{
		json_str(&ev.j, "systemid", r->identity.sysid);
		json_u64(&ev.j, "timeline", tli);
		json_lsn(&ev.j, "start", startpos);
		json_i64(&ev.j, "server_version", PQserverVersion(r->conn));
		json_str(&ev.j, "slot", r->opt->slot);
		json_bool(&ev.j, "verify", r->opt->verify);
		events_end(&r->events, &ev);
	}

	result = stream_timelines(r, startpos, tli, err);
	PQfinish(r->conn);
	r->conn = NULL;
	return result;
}

static int
slot_action(Receiver *r)
{
	WalsimError err;
	bool		ok;

	if (r->opt->drop_slot)
		ok = rcv_drop_slot(r->conn, r->opt->slot, &err);
	else
		ok = rcv_create_slot(r->conn, r->opt->slot, r->opt->if_not_exists, &err);
	if (!ok)
	{
		receiver_log("error: %s", err.message);
		return EXIT_STREAM_FAILED;
	}
	if (r->opt->verbose)
		receiver_log("%s replication slot \"%s\"", r->opt->drop_slot ? "dropped" : "created", r->opt->slot);
	return EXIT_SUCCESS;
}

static void
stopped_event(Receiver *r, const char *reason)
{
	EventLine	ev;

	if (events_begin(&r->events, &ev, "stopped"))
	{
		json_lsn(&ev.j, "lsn", r->blockpos);
		json_str(&ev.j, "reason", reason);
		events_end(&r->events, &ev);
	}
}

static int
run(Receiver *r)
{
	WalsimError err;
	bool		first = true;
	EventLine	ev;

	if (!first_connection(r, &err))
	{
		if (stop_requested)
		{
			stopped_event(r, "signal");
			return EXIT_SUCCESS;
		}
		receiver_log("error: %s", err.message);
		return EXIT_STREAM_FAILED;
	}
	if (r->opt->base_backup)
	{
		if (!basebackup_run(r, &err))
		{
			receiver_log("error: %s", err.message);
			return EXIT_STREAM_FAILED;
		}
		return EXIT_SUCCESS;
	}
	if (r->opt->create_slot || r->opt->drop_slot)
		return slot_action(r);
	if (!rcv_show_segment_size(r->conn, &r->segsize, &err))
	{
		receiver_log("error: %s", err.message);
		return EXIT_STREAM_FAILED;
	}

	for (;;)
	{
		StreamResult result = stream_log(r, first, &err);

		first = false;
		if (result == STREAM_DONE || (stop_requested && result != STREAM_FATAL &&
									  result != STREAM_VERIFY_FAILED))
		{
			if (r->opt->verbose)
				receiver_log("stopped");
			stopped_event(r, stop_requested ? "signal" : "endpos");
			return EXIT_SUCCESS;
		}
		receiver_log("error: %s", err.message);
		if (events_begin(&r->events, &ev, "disconnected"))
		{
			json_str(&ev.j, "reason", err.message);
			events_end(&r->events, &ev);
		}
		if (result == STREAM_FATAL)
			return EXIT_STREAM_FAILED;
		if (result == STREAM_VERIFY_FAILED && r->opt->verify_action == VERIFY_ACTION_STOP)
			return EXIT_STREAM_FAILED;
		if (r->opt->no_loop)
		{
			receiver_log("error: disconnected");
			return EXIT_STREAM_FAILED;
		}
		if (r->opt->verbose || result == STREAM_VERIFY_FAILED)
			receiver_log("disconnected; waiting %d seconds to try again%s",
						 r->opt->reconnect_ms / 1000,
						 result == STREAM_VERIFY_FAILED ? " (re-streaming the segment)" : "");
		interruptible_sleep(r->opt->reconnect_ms);
		if (stop_requested)
		{
			stopped_event(r, "signal");
			return EXIT_SUCCESS;
		}
	}
}

int
main(int argc, char **argv)
{
	ReceiverOptions opt;
	Receiver	r;
	WalsimError err;
	int			rc;

	switch (receiver_options_parse(argc, argv, &opt, &err))
	{
		case OPTIONS_EXIT_OK:
			return EXIT_SUCCESS;
		case OPTIONS_ERROR:
			receiver_log("error: %s", err.message);
			fprintf(stderr, "Try \"walsim-receiver --help\" for more information.\n");
			return EXIT_BAD_USAGE;
		case OPTIONS_OK:
			break;
	}
	memset(&r, 0, sizeof(r));
	r.opt = &opt;
	r.dirfd = -1;
	r.seg.fd = -1;
	r.stop_requested = &stop_requested;
	if (!setup_signals(&err))
	{
		receiver_log("error: %s", err.message);
		return EXIT_STREAM_FAILED;
	}
	r.stop_fd = stop_pipe[0];
	if (opt.directory != NULL && !opt.base_backup)
	{
		r.dirfd = open(opt.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r.dirfd < 0)
		{
			receiver_log("error: could not access directory \"%s\": %s", opt.directory, strerror(errno));
			return EXIT_STREAM_FAILED;
		}
	}
	if (!events_open(&r.events, opt.json_events, &err))
	{
		receiver_log("error: %s", err.message);
		return EXIT_BAD_USAGE;
	}

	rc = run(&r);

	if (r.conn != NULL)
		PQfinish(r.conn);
	events_close(&r.events);
	if (r.dirfd >= 0)
		close(r.dirfd);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	return rc;
}
