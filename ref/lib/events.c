/*
 * events.c — the JSON Lines event log (walsim/events.h, docs/events.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "walsim/events.h"

bool
events_open(EventLog *log, const char *path, WalsimError *err)
{
	log->fd = -1;
	if (path == NULL)
		return true;
	log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log->fd < 0)
		return walsim_error_set(err, "could not open event log \"%s\": %s", path, strerror(errno));
	return true;
}

void
events_close(EventLog *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
}

bool
events_begin(const EventLog *log, EventLine *line, const char *event)
{
	struct timespec now;
	char		time_text[32];

	if (log == NULL || log->fd < 0)
		return false;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(time_text, sizeof(time_text), "%lld.%06ld",
			 (long long) now.tv_sec, now.tv_nsec / 1000);
	json_init(&line->j, line->buf, sizeof(line->buf) - 2);	/* room for "}\n" */
	line->j.max_string = EVENT_STRING_MAX;
	json_object_begin(&line->j, NULL);
	json_member_raw(&line->j, "time", time_text);
	json_i64(&line->j, "pid", (int64_t) getpid());
	json_str(&line->j, "event", event);
	line->head_len = line->j.len;
	return true;
}

void
events_end(const EventLog *log, EventLine *line)
{
	JsonBuf    *j = &line->j;

	if (log == NULL || log->fd < 0)
		return;
	if (j->overflow)
	{
		/* keep what identifies the event; a cut field would not be JSON */
		j->overflow = false;
		j->len = line->head_len;
		json_bool(j, "truncated", true);
	}
	/* the two bytes kept free in events_begin */
	j->p[j->len++] = '}';
	j->p[j->len++] = '\n';
	/* one write per line: O_APPEND keeps lines of several processes whole */
	while (write(log->fd, j->p, j->len) < 0 && errno == EINTR)
		;
	/* any other failure loses a diagnostic line; serving goes on */
}
