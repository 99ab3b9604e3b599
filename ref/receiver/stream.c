/*
 * stream.c — the COPY BOTH phase of walsim-receiver: receive XLogData,
 * write it into segment files, verify it, acknowledge it.
 *
 * The structure is that of receivelog.c (ReceiveXlogStream,
 * HandleCopyStream, ProcessXLogDataMsg, ProcessKeepaliveMsg,
 * HandleEndOfCopyStream), with two additions:
 *
 *  - every byte is fed to a StreamVerifier, and the write and flush
 *    positions we report never pass the end of the last verified record;
 *  - a segment that is complete but whose last record is not verified yet
 *    (it continues in the next segment) stays NAME.partial until it is, so a
 *    verification failure can always be repaired by streaming again from the
 *    start of the oldest unverified segment.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "walsim/parse.h"
#include "walsim/replmsg.h"
#include "walsim/segment.h"
#include "receiver.h"

void
receiver_log(const char *fmt,...)
{
	va_list		ap;

	fputs("walsim-receiver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool
receiver_should_stop(const Receiver *r, uint64_t pos)
{
	if (*r->stop_requested)
		return true;
	/* pg_receivewal stops once a position beyond --endpos has been received */
	return r->opt->endpos != 0 && r->opt->endpos < pos;
}

/* ------------------------------------------------------------ feedback */

/*
 * sendFeedback(): an 'r' of exactly 34 bytes.  write is what we received
 * and wrote, flush what is fsynced (only with a slot or --synchronous, else
 * 0, as pg_receivewal), apply always 0.  Both are capped at the end of the
 * last verified record.
 */
static bool
send_feedback(Receiver *r, PgTimestamp now, WalsimError *err)
{
	ReplStatus	st;
	uint8_t		buf[REPL_STATUS_LEN];
	uint64_t	safe = verifier_safe_end(&r->verifier, r->blockpos);
	char		msg[WALSIM_ERROR_MAX];
	EventLine	ev;

	st.write = safe;
	st.flush = 0;
	if (r->report_flush)
	{
		st.flush = r->flushed < safe ? r->flushed : safe;
		/* never move backwards within a stream */
		if (st.flush < r->reported_flush)
			st.flush = r->reported_flush;
	}
	st.apply = 0;
	st.send_time = now;
	st.reply_requested = false;
	repl_encode_status(buf, &st);
	if (PQputCopyData(r->conn, (const char *) buf, sizeof(buf)) <= 0 || PQflush(r->conn) != 0)
		return walsim_error_set(err, "could not send feedback packet: %s",
								rcv_conn_message(r->conn, msg, sizeof(msg)));
	r->reported_flush = st.flush;
	r->reported_write = st.write;
	r->last_status = now;
	if (r->opt->verbose > 1)
	{
		char		w[LSN_TEXT_MAX],
					f[LSN_TEXT_MAX];

		lsn_format(st.write, w);
		lsn_format(st.flush, f);
		receiver_log("sent status: write %s flush %s", w, f);
	}
	if (events_begin(&r->events, &ev, "feedback"))
	{
		json_lsn(&ev.j, "write", st.write);
		json_lsn(&ev.j, "flush", st.flush);
		json_lsn(&ev.j, "apply", st.apply);
		events_end(&r->events, &ev);
	}
	return true;
}

/* ------------------------------------------------------------- segments */

static uint64_t
segment_end_lsn(const Receiver *r, uint64_t segno)
{
	return (segno + 1) * (uint64_t) r->segsize;
}

static bool
rename_segment(Receiver *r, uint64_t segno, WalsimError *err)
{
	char		name[WAL_FILE_NAME_MAX];
	EventLine	ev;

	if (!segment_complete(r->dirfd, r->tli, segno, r->segsize, r->opt->do_sync, err))
		return false;
	wal_segment_name(name, r->tli, segno, r->segsize);
	if (r->opt->verbose)
		receiver_log("finished segment %s (timeline %" PRIu32 ")", name, r->tli);
	if (events_begin(&r->events, &ev, "segment_complete"))
	{
		json_str(&ev.j, "file", name);
		json_u64(&ev.j, "timeline", r->tli);
		json_lsn(&ev.j, "end", segment_end_lsn(r, segno));
		events_end(&r->events, &ev);
	}
	return true;
}

/* Rename the pending segments whose every record has now been verified. */
static bool
promote_pending(Receiver *r, WalsimError *err)
{
	uint64_t	safe;

	if (!r->have_pending)
		return true;
	safe = verifier_safe_end(&r->verifier, r->blockpos);
	while (r->have_pending && segment_end_lsn(r, r->pending_first) <= safe)
	{
		if (!rename_segment(r, r->pending_first, err))
			return false;
		r->pending_first++;
		if (r->pending_first >= r->pending_end)
			r->have_pending = false;
	}
	return true;
}

/*
 * close_walfile(): fsync and close the open segment.  A complete one is
 * renamed when verified (else it waits in the pending range), an
 * incomplete one keeps its .partial name.  Either way what is closed is
 * on disk, so it counts as flushed.
 */
static bool
close_segment(Receiver *r, WalsimError *err)
{
	uint64_t	segno = r->seg.segno;
	bool		complete;

	if (r->seg.fd < 0)
		return true;
	complete = r->blockpos == segment_end_lsn(r, segno);
	if (!segment_close(&r->seg, r->opt->do_sync, err))
		return false;
	r->flushed = r->blockpos;
	if (!complete)
	{
		if (r->opt->verbose)
			receiver_log("not renaming \"%s.partial\", segment is not complete", r->seg.name);
		return true;
	}
	if (!r->have_pending && verifier_safe_end(&r->verifier, r->blockpos) >= r->blockpos)
		return rename_segment(r, segno, err);
	if (!r->have_pending)
	{
		r->have_pending = true;
		r->pending_first = segno;
	}
	r->pending_end = segno + 1;
	return true;
}

/*
 * After a verification failure: overwrite everything received after the
 * last good record with zeros, in the open file and in pending ones, so no
 * file holds bytes that failed verification.
 */
static bool
scrub_unverified(Receiver *r, WalsimError *err)
{
	uint64_t	from = r->verifier.valid_end;
	uint64_t	to = r->blockpos;

	for (uint64_t segno = wal_segno_of(from, r->segsize);
		 from < to; segno++)
	{
		uint64_t	seg_start = segno * (uint64_t) r->segsize;
		uint64_t	seg_stop = seg_start + r->segsize;
		uint32_t	off_from = (uint32_t) (from - seg_start);
		uint32_t	off_to = (uint32_t) ((to < seg_stop ? to : seg_stop) - seg_start);
		bool		ok;

		if (r->seg.fd >= 0 && r->seg.segno == segno)
			ok = segment_zero_range(&r->seg, off_from, off_to, r->opt->do_sync, err);
		else
			ok = segment_zero_closed(r->dirfd, r->tli, segno, r->segsize,
									 off_from, off_to, r->opt->do_sync, err);
		if (!ok)
			return false;
		from = seg_stop;
	}
	return true;
}

static void
report_verify_failure(Receiver *r, WalsimError *err)
{
	const StreamVerifier *v = &r->verifier;
	char		bad[LSN_TEXT_MAX],
				good[LSN_TEXT_MAX];
	const char *action = r->opt->verify_action == VERIFY_ACTION_STOP ? "stop" : "restream";
	EventLine	ev;

	lsn_format(v->fail_lsn, bad);
	lsn_format(v->valid_end, good);
	walsim_error_set(err, "WAL verification failed at %s on timeline %" PRIu32 ": %s (%s); valid WAL ends at %s",
					 bad, r->tli, v->message, walreader_status_name(v->status), good);
	if (events_begin(&r->events, &ev, "verify_failed"))
	{
		json_lsn(&ev.j, "lsn", v->fail_lsn);
		json_lsn(&ev.j, "valid_end", v->valid_end);
		json_u64(&ev.j, "timeline", r->tli);
		json_str(&ev.j, "reason", walreader_status_name(v->status));
		json_str(&ev.j, "message", v->message);
		json_str(&ev.j, "action", action);
		events_end(&r->events, &ev);
	}
}

/* ------------------------------------------------------------- messages */

typedef enum MsgResult
{
	MSG_OK,
	MSG_ERROR,
	MSG_VERIFY_FAILED
} MsgResult;

/* Stop streaming: close the file and send CopyDone (CheckCopyStreamStop). */
static bool
begin_stop(Receiver *r, WalsimError *err)
{
	char		msg[WALSIM_ERROR_MAX];

	if (!close_segment(r, err))
		return false;
	if (PQputCopyEnd(r->conn, NULL) <= 0 || PQflush(r->conn) != 0)
		return walsim_error_set(err, "could not send copy-end packet: %s",
								rcv_conn_message(r->conn, msg, sizeof(msg)));
	r->still_sending = false;
	return true;
}

/* ProcessXLogDataMsg() with verification. */
static MsgResult
process_xlogdata(Receiver *r, const ReplXLogData *x, WalsimError *err)
{
	const uint8_t *data = x->data;
	size_t		left = x->len;

	/* after our CopyDone the server may still send data; it is not wanted */
	if (!r->still_sending)
		return MSG_OK;

	/*
	 * Stricter than pg_receivewal, which only checks the offset within the
	 * open segment: any gap or overlap would put bytes at the wrong LSN.
	 */
	if (x->data_start != r->blockpos)
	{
		char		got[LSN_TEXT_MAX],
					want[LSN_TEXT_MAX];

		lsn_format(x->data_start, got);
		lsn_format(r->blockpos, want);
		walsim_error_set(err, "got WAL data at %s, expected %s (non-contiguous XLogData)", got, want);
		return MSG_ERROR;
	}

	while (left > 0)
	{
		uint32_t	off = wal_segment_offset(r->blockpos, r->segsize);
		size_t		n = left;
		bool		verified;

		if ((uint64_t) off + n > r->segsize)
			n = r->segsize - off;
		if (r->seg.fd < 0)
		{
			uint64_t	segno = wal_segno_of(r->blockpos, r->segsize);

			/* only happens at a segment start: the stream starts there */
			if (!segment_open(&r->seg, r->dirfd, r->tli, segno, r->segsize,
							  r->opt->do_sync, r->file_mode, err))
				return MSG_ERROR;
		}
		if (!segment_write(&r->seg, off, data, n, err))
			return MSG_ERROR;
		verified = verifier_feed(&r->verifier, data, n);
		r->blockpos += n;
		data += n;
		left -= n;
		if (!verified)
		{
			WalsimError scrub_err;

			report_verify_failure(r, err);
			if (!scrub_unverified(r, &scrub_err))
				receiver_log("could not remove unverified data: %s", scrub_err.message);
			return MSG_VERIFY_FAILED;
		}
		if (!promote_pending(r, err))
			return MSG_ERROR;
		if (wal_segment_offset(r->blockpos, r->segsize) == 0)
		{
			if (!close_segment(r, err))
				return MSG_ERROR;
			if (receiver_should_stop(r, r->blockpos))
			{
				if (!begin_stop(r, err))
					return MSG_ERROR;
				return MSG_OK;	/* ignore the rest of this message */
			}
		}
	}
	return MSG_OK;
}

/* ProcessKeepaliveMsg(): answer at once when asked. */
static bool
process_keepalive(Receiver *r, const ReplKeepalive *k, WalsimError *err)
{
	if (!k->reply_requested || !r->still_sending)
		return true;
	if (r->report_flush && r->flushed < r->blockpos && r->seg.fd >= 0)
	{
		/*
		 * The server asks whether we have its WAL (at shutdown it waits for
		 * our flush position): make it true before saying so.
		 */
		if (r->opt->do_sync && !segment_sync(&r->seg, err))
			return false;
		r->flushed = r->blockpos;
	}
	return send_feedback(r, pg_timestamp_now(), err);
}

/* ---------------------------------------------------------- copy stream */

/*
 * CopyStreamReceive(): the next CopyData payload (r > 0), 0 when none came
 * within timeout_ms (-1: forever) or a stop was requested, -1 on error,
 * -2 at the end of the copy.
 */
static int
copy_receive(Receiver *r, int timeout_ms, char **buf, WalsimError *err)
{
	int			n;
	char		msg[WALSIM_ERROR_MAX];

	*buf = NULL;
	n = PQgetCopyData(r->conn, buf, 1);
	if (n == 0)
	{
		fd_set		fds;
		struct timeval tv;
		int			sock = PQsocket(r->conn);
		int			maxfd = sock > r->stop_fd ? sock : r->stop_fd;
		int			rc;

		if (timeout_ms == 0)
			return 0;
		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		if (r->stop_fd >= 0)
			FD_SET(r->stop_fd, &fds);
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		rc = select(maxfd + 1, &fds, NULL, NULL, timeout_ms < 0 ? NULL : &tv);
		if (rc < 0 && errno == EINTR)
			return 0;
		if (rc < 0)
		{
			walsim_error_set(err, "select() failed: %s", strerror(errno));
			return -1;
		}
		if (rc == 0 || !FD_ISSET(sock, &fds))
			return 0;
		if (PQconsumeInput(r->conn) == 0)
		{
			walsim_error_set(err, "could not receive data from WAL stream: %s",
							 rcv_conn_message(r->conn, msg, sizeof(msg)));
			return -1;
		}
		n = PQgetCopyData(r->conn, buf, 1);
		if (n == 0)
			return 0;
	}
	if (n == -1)
		return -2;
	if (n == -2)
	{
		walsim_error_set(err, "could not read COPY data: %s",
						 rcv_conn_message(r->conn, msg, sizeof(msg)));
		return -1;
	}
	return n;
}

/* Milliseconds until the next status update is due (-1: none is). */
static int
sleep_time_ms(const Receiver *r, PgTimestamp now)
{
	int64_t		left;

	if (r->opt->status_interval_ms <= 0 || !r->still_sending)
		return r->still_sending ? -1 : 1000;
	left = r->opt->status_interval_ms - pg_timestamp_diff_ms(r->last_status, now);
	if (left <= 0)
		return 1;
	return (int) left;
}

/* HandleEndOfCopyStream(): returns the result that ended the copy. */
static PGresult *
end_of_copy(Receiver *r, WalsimError *err)
{
	PGresult   *res = PQgetResult(r->conn);
	char		msg[WALSIM_ERROR_MAX];

	if (r->still_sending)
	{
		if (!close_segment(r, err))
		{
			PQclear(res);
			return NULL;
		}
		if (PQresultStatus(res) == PGRES_COPY_IN)
		{
			if (PQputCopyEnd(r->conn, NULL) <= 0 || PQflush(r->conn) != 0)
			{
				walsim_error_set(err, "could not send copy-end packet: %s",
								 rcv_conn_message(r->conn, msg, sizeof(msg)));
				PQclear(res);
				return NULL;
			}
			PQclear(res);
			res = PQgetResult(r->conn);
		}
		r->still_sending = false;
	}
	return res;
}

/*
 * HandleCopyStream(): returns the PGresult that ended the copy (the caller
 * interprets it) or NULL with *result saying why not.
 */
static PGresult *
copy_stream(Receiver *r, StreamResult *result, WalsimError *err)
{
	*result = STREAM_RETRY;
	r->still_sending = true;
	r->last_status = 0;
	for (;;)
	{
		PgTimestamp now;
		char	   *buf;
		int			n;

		if (r->still_sending && receiver_should_stop(r, r->blockpos) && !begin_stop(r, err))
			return NULL;

		now = pg_timestamp_now();
		if (r->opt->synchronous && r->flushed < r->blockpos && r->seg.fd >= 0)
		{
			/* --synchronous: fsync whatever was written, then say so at once */
			if (!segment_sync(&r->seg, err))
				return NULL;
			r->flushed = r->blockpos;
			if (r->still_sending && !send_feedback(r, now, err))
				return NULL;
		}
		if (r->still_sending && r->opt->status_interval_ms > 0 &&
			(r->last_status == 0 ||
			 pg_timestamp_diff_ms(r->last_status, now) >= r->opt->status_interval_ms) &&
			!send_feedback(r, now, err))
			return NULL;

		n = copy_receive(r, sleep_time_ms(r, now), &buf, err);
		while (n != 0)
		{
			ReplMessage m;
			bool		ok = true;
			MsgResult	mr = MSG_OK;

			if (n == -1)
				return NULL;
			if (n == -2)
				return end_of_copy(r, err);
			if (!repl_decode((const uint8_t *) buf, (size_t) n, REPL_FROM_SERVER, &m, err))
			{
				walsim_error_prefix(err, "invalid streaming message: ");
				PQfreemem(buf);
				return NULL;
			}
			if (m.type == 'k')
				ok = process_keepalive(r, &m.u.keepalive, err);
			else
			{
				mr = process_xlogdata(r, &m.u.xlog, err);
				ok = mr == MSG_OK;
				if (ok && r->still_sending && receiver_should_stop(r, r->blockpos))
					ok = begin_stop(r, err);
			}
			PQfreemem(buf);
			if (mr == MSG_VERIFY_FAILED)
			{
				*result = STREAM_VERIFY_FAILED;
				return NULL;
			}
			if (!ok)
				return NULL;
			n = copy_receive(r, 0, &buf, err);
		}
	}
}

/* ReadEndOfStreamingResult(): next_tli and its start from the result set. */
static bool
read_end_of_streaming(PGresult *res, uint32_t *next_tli, uint64_t *startpos,
					  WalsimError *err)
{
	if (PQnfields(res) < 2 || PQntuples(res) != 1)
		return walsim_error_set(err, "unexpected result set after end-of-timeline: got %d rows and %d fields, expected %d rows and %d fields",
								PQntuples(res), PQnfields(res), 1, 2);
	if (!parse_u32("next_tli", PQgetvalue(res, 0, 0), 1, UINT32_MAX, next_tli, NULL))
		return walsim_error_set(err, "could not parse next timeline's ID \"%s\"", PQgetvalue(res, 0, 0));
	if (!lsn_parse(PQgetvalue(res, 0, 1), startpos, err))
	{
		walsim_error_prefix(err, "could not parse next timeline's starting point: ");
		return false;
	}
	return true;
}

static bool
fetch_history(Receiver *r, uint32_t tli, WalsimError *err)
{
	char	   *content;
	size_t		len;
	bool		ok;
	char		name[WAL_FILE_NAME_MAX];

	if (tli == 1 || history_exists(r->dirfd, tli))
		return true;
	if (!rcv_timeline_history(r->conn, tli, &content, &len, err))
		return false;
	ok = history_write(r->dirfd, tli, content, len, r->opt->do_sync, r->file_mode, err);
	free(content);
	wal_history_name(name, tli);
	if (ok && r->opt->verbose)
		receiver_log("saved timeline history file %s", name);
	return ok;
}

static void
reset_stream_state(Receiver *r, uint64_t startpos, uint32_t tli)
{
	r->tli = tli;
	r->blockpos = startpos;
	r->flushed = startpos;
	r->reported_flush = 0;
	r->reported_write = 0;
	r->have_pending = false;
	r->seg.fd = -1;
}

static void
timeline_switch_event(Receiver *r, uint32_t from, uint32_t to, uint64_t switchpoint)
{
	EventLine	ev;
	char		hist[WAL_FILE_NAME_MAX];

	if (!events_begin(&r->events, &ev, "timeline_switch"))
		return;
	wal_history_name(hist, to);
	json_u64(&ev.j, "from", from);
	json_u64(&ev.j, "to", to);
	json_lsn(&ev.j, "switchpoint", switchpoint);
	json_str(&ev.j, "history", hist);
	events_end(&r->events, &ev);
}

/* Close files of a stream that ended abnormally (keeps .partial names). */
static void
abandon_stream(Receiver *r)
{
	WalsimError ignored;

	if (r->seg.fd >= 0)
		segment_close(&r->seg, r->opt->do_sync, &ignored);
	verifier_end(&r->verifier);
}

StreamResult
stream_timelines(Receiver *r, uint64_t startpos, uint32_t tli, WalsimError *err)
{
	SystemIdentity id;
	char		command[160];
	char		start_text[LSN_TEXT_MAX];

	if (!rcv_identify_system(r->conn, &id, err))
		return STREAM_RETRY;
	if (strcmp(id.sysid, r->identity.sysid) != 0)
	{
		walsim_error_set(err, "system identifier does not match between base backup and streaming connection (expected %s, server has %s)",
						 r->identity.sysid, id.sysid);
		return STREAM_FATAL;
	}
	if (tli > id.tli)
	{
		walsim_error_set(err, "starting timeline %" PRIu32 " is not present in the server (its timeline is %" PRIu32 ")",
						 tli, id.tli);
		return STREAM_RETRY;
	}
	r->report_flush = r->opt->slot != NULL || r->opt->synchronous;

	for (;;)
	{
		PGresult   *res;
		StreamResult why;
		uint32_t	next_tli = 0;
		uint64_t	next_start = 0;
		uint64_t	stoppos;

		if (!fetch_history(r, tli, err))
			return STREAM_RETRY;
		if (receiver_should_stop(r, startpos))
			return STREAM_DONE;

		lsn_format(startpos, start_text);
		if (r->opt->slot)
			snprintf(command, sizeof(command), "START_REPLICATION SLOT \"%s\" %s TIMELINE %" PRIu32,
					 r->opt->slot, start_text, tli);
		else
			snprintf(command, sizeof(command), "START_REPLICATION %s TIMELINE %" PRIu32,
					 start_text, tli);
		res = PQexec(r->conn, command);
		if (PQresultStatus(res) != PGRES_COPY_BOTH)
		{
			char		msg[WALSIM_ERROR_MAX];

			walsim_error_set(err, "could not send replication command \"%s\": %s",
							 command, rcv_conn_message(r->conn, msg, sizeof(msg)));
			PQclear(res);
			return STREAM_RETRY;
		}
		PQclear(res);
		if (r->opt->verbose)
			receiver_log("started streaming at %s (timeline %" PRIu32 ")", start_text, tli);

		reset_stream_state(r, startpos, tli);
		if (!verifier_begin(&r->verifier, r->opt->verify, startpos, r->segsize,
							r->identity.sysid_value, r->server_major, err))
			return STREAM_FATAL;

		res = copy_stream(r, &why, err);
		stoppos = r->blockpos;
		if (res == NULL)
		{
			abandon_stream(r);
			return why;
		}
		verifier_end(&r->verifier);

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			char		a[LSN_TEXT_MAX],
						b[LSN_TEXT_MAX];
			bool		ok = read_end_of_streaming(res, &next_tli, &next_start, err);

			PQclear(res);
			if (!ok)
				return STREAM_RETRY;
			if (next_tli <= tli)
			{
				walsim_error_set(err, "server reported unexpected next timeline %" PRIu32 ", following timeline %" PRIu32,
								 next_tli, tli);
				return STREAM_RETRY;
			}
			if (next_start > stoppos)
			{
				lsn_format(stoppos, a);
				lsn_format(next_start, b);
				walsim_error_set(err, "server stopped streaming timeline %" PRIu32 " at %s, but reported next timeline %" PRIu32 " to begin at %s",
								 tli, a, next_tli, b);
				return STREAM_RETRY;
			}
			res = PQgetResult(r->conn);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
			{
				char		msg[WALSIM_ERROR_MAX];

				walsim_error_set(err, "unexpected termination of replication stream: %s",
								 rcv_conn_message(r->conn, msg, sizeof(msg)));
				PQclear(res);
				return STREAM_RETRY;
			}
			PQclear(res);
			while ((res = PQgetResult(r->conn)) != NULL)
				PQclear(res);

			lsn_format(next_start, b);
			if (r->opt->verbose)
				receiver_log("switched to timeline %" PRIu32 " at %s", next_tli, b);
			if (!fetch_history(r, next_tli, err))
				return STREAM_RETRY;
			timeline_switch_event(r, tli, next_tli, next_start);
			tli = next_tli;
			/* always restart at a segment start, as pg_receivewal and the walreceiver do */
			startpos = next_start - wal_segment_offset(next_start, r->segsize);
			continue;
		}
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
		{
			PQclear(res);
			while ((res = PQgetResult(r->conn)) != NULL)
				PQclear(res);
			if (receiver_should_stop(r, stoppos))
				return STREAM_DONE;
			walsim_error_set(err, "replication stream was terminated before stop point");
			return STREAM_RETRY;
		}
		{
			char		msg[WALSIM_ERROR_MAX];

			walsim_error_set(err, "unexpected termination of replication stream: %s",
							 rcv_conn_message(r->conn, msg, sizeof(msg)));
			PQclear(res);
			return STREAM_RETRY;
		}
	}
}
