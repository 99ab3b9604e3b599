/*
 * json.c — the JSON text builder of walsim-netd (see json.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"
#include "json.h"

void
json_init(JsonBuf *j, char *buf, size_t cap)
{
	j->p = buf;
	j->len = 0;
	j->cap = cap;
	j->first = true;
	if (cap > 0)
		buf[0] = '\0';
}

void
json_raw(JsonBuf *j, const char *s)
{
	size_t		n = strlen(s);

	if (j->cap == 0)
		return;
	if (j->len + n >= j->cap)
		n = j->cap - 1 - j->len;
	memcpy(j->p + j->len, s, n);
	j->len += n;
	j->p[j->len] = '\0';
}

static void
json_char(JsonBuf *j, char c)
{
	char		s[2] = {c, 0};

	json_raw(j, s);
}

void
json_escape(JsonBuf *j, const char *s)
{
	json_char(j, '"');
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			json_char(j, '\\');
			json_char(j, (char) c);
		}
		else if (c < 0x20)
		{
			char		esc[8];

			snprintf(esc, sizeof(esc), "\\u%04x", c);
			json_raw(j, esc);
		}
		else
			json_char(j, (char) c);
	}
	json_char(j, '"');
}

static void
json_key(JsonBuf *j, const char *key)
{
	if (!j->first)
		json_char(j, ',');
	j->first = false;
	json_escape(j, key);
	json_char(j, ':');
}

void
json_str(JsonBuf *j, const char *key, const char *value)
{
	json_key(j, key);
	json_escape(j, value);
}

void
json_u64(JsonBuf *j, const char *key, uint64_t v)
{
	char		num[32];

	json_key(j, key);
	snprintf(num, sizeof(num), "%" PRIu64, v);
	json_raw(j, num);
}

void
json_i64(JsonBuf *j, const char *key, int64_t v)
{
	char		num[32];

	json_key(j, key);
	snprintf(num, sizeof(num), "%" PRId64, v);
	json_raw(j, num);
}

void
json_bool(JsonBuf *j, const char *key, bool v)
{
	json_key(j, key);
	json_raw(j, v ? "true" : "false");
}

void
json_lsn(JsonBuf *j, const char *key, uint64_t lsn)
{
	char		text[LSN_TEXT_MAX];

	lsn_format(lsn, text);
	json_str(j, key, text);
}

void
json_member_raw(JsonBuf *j, const char *key, const char *raw)
{
	json_key(j, key);
	json_raw(j, raw);
}
