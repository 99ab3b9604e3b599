/*
 * events.c — JSON lines event log of walsim-receiver (events.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "walsim/lsn.h"
#include "events.h"

bool
events_open(EventLog *log, const char *path, WalsimError *err)
{
	log->f = NULL;
	if (path == NULL)
		return true;
	log->f = fopen(path, "a");
	if (log->f == NULL)
		return walsim_error_set(err, "could not open event log \"%s\": %s", path, strerror(errno));
	return true;
}

void
events_close(EventLog *log)
{
	if (log->f != NULL)
		fclose(log->f);
	log->f = NULL;
}

void
events_escape(const char *s, char *out, size_t outlen)
{
	size_t		o = 0;

	for (; *s != '\0' && o + 7 < outlen; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			out[o++] = '\\';
			out[o++] = (char) c;
		}
		else if (c == '\n')
		{
			out[o++] = '\\';
			out[o++] = 'n';
		}
		else if (c < 0x20)
			o += (size_t) snprintf(out + o, outlen - o, "\\u%04x", c);
		else
			out[o++] = (char) c;
	}
	out[o] = '\0';
}

void
events_emit(EventLog *log, const char *event, const char *fmt,...)
{
	struct timespec now;
	va_list		ap;
	const char *p = fmt;

	if (log == NULL || log->f == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	fprintf(log->f, "{\"time\": %lld.%06ld, \"event\": \"%s\"",
			(long long) now.tv_sec, now.tv_nsec / 1000, event);
	va_start(ap, fmt);
	while (*p != '\0')
	{
		char		key[64];
		size_t		k = 0;
		char		type;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		while (*p != ':' && *p != '\0' && k + 1 < sizeof(key))
			key[k++] = *p++;
		key[k] = '\0';
		if (*p != ':')
			break;
		p++;
		type = *p++;
		fprintf(log->f, ", \"%s\": ", key);
		switch (type)
		{
			case 's':
				{
					const char *s = va_arg(ap, const char *);
					char		esc[1024];

					if (s == NULL)
						fputs("null", log->f);
					else
					{
						events_escape(s, esc, sizeof(esc));
						fprintf(log->f, "\"%s\"", esc);
					}
					break;
				}
			case 'u':
				fprintf(log->f, "%" PRIu64, va_arg(ap, uint64_t));
				break;
			case 'l':
				{
					char		text[LSN_TEXT_MAX];

					lsn_format(va_arg(ap, uint64_t), text);
					fprintf(log->f, "\"%s\"", text);
					break;
				}
			case 'b':
				fputs(va_arg(ap, int) ? "true" : "false", log->f);
				break;
			case 'i':
				fprintf(log->f, "%d", va_arg(ap, int));
				break;
			default:
				fputs("null", log->f);
				break;
		}
	}
	va_end(ap);
	fputs("}\n", log->f);
	fflush(log->f);
}
