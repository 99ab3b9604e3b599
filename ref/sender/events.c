/*
 * events.c — the JSON event log (see events.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "events.h"

#define EVENT_LINE_MAX 2048

bool
events_open(Events *ev, const char *path, WalsimError *err)
{
	ev->fd = -1;
	if (path == NULL)
		return true;
	ev->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (ev->fd < 0)
		return walsim_error_set(err, "could not open event file \"%s\": %s", path, strerror(errno));
	return true;
}

void
events_close(Events *ev)
{
	if (ev->fd >= 0)
		close(ev->fd);
	ev->fd = -1;
}

/* Append s as a JSON string body (without quotes), escaping as needed. */
static size_t
put_escaped(char *buf, size_t pos, size_t cap, const char *s)
{
	for (; *s && pos + 7 < cap; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			buf[pos++] = '\\';
			buf[pos++] = (char) c;
		}
		else if (c < 0x20)
			pos += (size_t) snprintf(buf + pos, cap - pos, "\\u%04x", c);
		else
			buf[pos++] = (char) c;
	}
	return pos;
}

void
events_emit(const Events *ev, const char *event,...)
{
	char		line[EVENT_LINE_MAX];
	size_t		pos;
	struct timeval tv;
	struct tm	tm;
	va_list		ap;
	const char *key;

	if (ev == NULL || ev->fd < 0)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	pos = (size_t) snprintf(line, sizeof(line),
							"{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"pid\":%d,\"event\":\"",
							tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
							tm.tm_min, tm.tm_sec, (long) tv.tv_usec, (int) getpid());
	pos = put_escaped(line, pos, sizeof(line), event);
	line[pos++] = '"';
	va_start(ap, event);
	while ((key = va_arg(ap, const char *)) != NULL)
	{
		const char *value = va_arg(ap, const char *);
		bool		number = key[0] == '#';

		if (pos + 16 >= sizeof(line))
			break;
		line[pos++] = ',';
		line[pos++] = '"';
		pos = put_escaped(line, pos, sizeof(line), number ? key + 1 : key);
		line[pos++] = '"';
		line[pos++] = ':';
		if (value == NULL)
			pos += (size_t) snprintf(line + pos, sizeof(line) - pos, "null");
		else if (number)
			pos = put_escaped(line, pos, sizeof(line), value);
		else
		{
			line[pos++] = '"';
			pos = put_escaped(line, pos, sizeof(line), value);
			line[pos++] = '"';
		}
	}
	va_end(ap);
	if (pos + 3 > sizeof(line))
		pos = sizeof(line) - 3;
	line[pos++] = '}';
	line[pos++] = '\n';
	/* one write per line: O_APPEND keeps lines from several processes whole */
	if (write(ev->fd, line, pos) < 0)
	{
		/* the event log is diagnostics; losing a line must not stop serving */
	}
}
