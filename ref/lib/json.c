/*
 * json.c — the JSON writer (see walsim/json.h).
 *
 * walsim-netd writes a trace line from its event loop for every decision,
 * so appending is memcpy of runs of plain characters and integer formatting
 * by hand; nothing here allocates.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "walsim/json.h"
#include "walsim/lsn.h"

static const char hex_digits[] = "0123456789abcdef";

void
json_init(JsonBuf *j, char *buf, size_t cap)
{
	memset(j, 0, sizeof(*j));
	j->p = buf;
	j->cap = cap;
	j->first = true;
	if (cap > 0)
		buf[0] = '\0';
}

void
json_init_stream(JsonBuf *j, char *buf, size_t cap, FILE *sink)
{
	json_init(j, buf, cap);
	j->sink = sink;
}

bool
json_flush(JsonBuf *j)
{
	if (j->sink == NULL || j->len == 0)
		return !j->sink_failed;
	if (fwrite(j->p, 1, j->len, j->sink) != j->len)
		j->sink_failed = true;
	j->len = 0;
	j->p[0] = '\0';
	return !j->sink_failed;
}

void
json_rawn(JsonBuf *j, const char *s, size_t n)
{
	if (j->cap == 0)
		return;
	while (n > 0)
	{
		size_t		room = j->cap - 1 - j->len;
		size_t		take = n < room ? n : room;

		memcpy(j->p + j->len, s, take);
		j->len += take;
		s += take;
		n -= take;
		if (n == 0)
			break;
		if (j->sink == NULL || j->cap < 2)
		{
			j->overflow = true;
			break;
		}
		j->p[j->len] = '\0';
		json_flush(j);
	}
	j->p[j->len] = '\0';
}

void
json_raw(JsonBuf *j, const char *s)
{
	json_rawn(j, s, strlen(s));
}

static void
put_char(JsonBuf *j, char c)
{
	if (j->cap > 0 && j->len + 1 < j->cap)
	{
		j->p[j->len++] = c;
		j->p[j->len] = '\0';
	}
	else
		json_rawn(j, &c, 1);
}

/* \u00XX for one byte */
static void
put_unicode_escape(JsonBuf *j, unsigned char c)
{
	char		esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};

	json_rawn(j, esc, sizeof(esc));
}

/*
 * The body of a JSON string (no quotes) for n bytes of s.  With latin1,
 * bytes 0x7F and above are escaped too (raw data); otherwise they pass
 * through (UTF-8 text).  Runs of plain bytes are copied at once.
 */
static void
put_escaped(JsonBuf *j, const char *s, size_t n, bool latin1)
{
	size_t		run = 0;

	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c != '"' && c != '\\' && !(latin1 && c >= 0x7F))
			continue;
		json_rawn(j, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\')
		{
			char		esc[2] = {'\\', (char) c};

			json_rawn(j, esc, 2);
		}
		else
			put_unicode_escape(j, c);
	}
	json_rawn(j, s + run, n - run);
}

/* Length of s cut to at most max bytes, not inside a UTF-8 sequence. */
static size_t
cut_utf8(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

void
json_escape(JsonBuf *j, const char *s)
{
	size_t		len = strlen(s);
	size_t		keep = j->max_string > 0 ? cut_utf8(s, len, j->max_string) : len;

	put_char(j, '"');
	put_escaped(j, s, keep, false);
	if (keep < len)
		json_rawn(j, "...", 3);
	put_char(j, '"');
}

void
json_key(JsonBuf *j, const char *key)
{
	if (!j->first)
		put_char(j, ',');
	j->first = false;
	if (key == NULL)
		return;
	json_escape(j, key);
	put_char(j, ':');
}

void
json_str(JsonBuf *j, const char *key, const char *value)
{
	json_key(j, key);
	if (value == NULL)
		json_rawn(j, "null", 4);
	else
		json_escape(j, value);
}

void
json_bytes(JsonBuf *j, const char *key, const uint8_t *data, size_t n)
{
	json_key(j, key);
	put_char(j, '"');
	put_escaped(j, (const char *) data, n, true);
	put_char(j, '"');
}

void
json_hex(JsonBuf *j, const char *key, const uint8_t *data, size_t n)
{
	json_key(j, key);
	put_char(j, '"');
	for (size_t i = 0; i < n; i++)
	{
		char		pair[2] = {hex_digits[data[i] >> 4], hex_digits[data[i] & 15]};

		json_rawn(j, pair, 2);
	}
	put_char(j, '"');
}

/* Decimal digits of v into the end of buf; returns where they start. */
static char *
format_u64(uint64_t v, char *end)
{
	do
	{
		*--end = (char) ('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void
json_u64(JsonBuf *j, const char *key, uint64_t v)
{
	char		num[24];
	char	   *start = format_u64(v, num + sizeof(num));

	json_key(j, key);
	json_rawn(j, start, (size_t) (num + sizeof(num) - start));
}

void
json_i64(JsonBuf *j, const char *key, int64_t v)
{
	char		num[24];
	/* the magnitude of INT64_MIN does not fit an int64_t: negate unsigned */
	uint64_t	mag = v < 0 ? -(uint64_t) v : (uint64_t) v;
	char	   *start = format_u64(mag, num + sizeof(num));

	if (v < 0)
		*--start = '-';
	json_key(j, key);
	json_rawn(j, start, (size_t) (num + sizeof(num) - start));
}

void
json_bool(JsonBuf *j, const char *key, bool v)
{
	json_key(j, key);
	if (v)
		json_rawn(j, "true", 4);
	else
		json_rawn(j, "false", 5);
}

void
json_null(JsonBuf *j, const char *key)
{
	json_key(j, key);
	json_rawn(j, "null", 4);
}

void
json_lsn(JsonBuf *j, const char *key, uint64_t lsn)
{
	char		text[LSN_TEXT_MAX];

	lsn_format(lsn, text);
	json_str(j, key, text);
}

static void
put_double(JsonBuf *j, const char *key, double v, bool fixed, int digits)
{
	char		num[64];

	json_key(j, key);
	if (!isfinite(v))
	{
		json_rawn(j, "null", 4);
		return;
	}
	snprintf(num, sizeof(num), fixed ? "%.*f" : "%.*g", digits, v);
	json_raw(j, num);
}

void
json_double(JsonBuf *j, const char *key, double v, int digits)
{
	put_double(j, key, v, false, digits);
}

void
json_fixed(JsonBuf *j, const char *key, double v, int decimals)
{
	put_double(j, key, v, true, decimals);
}

void
json_member_raw(JsonBuf *j, const char *key, const char *raw)
{
	json_key(j, key);
	json_raw(j, raw);
}

void
json_object_begin(JsonBuf *j, const char *key)
{
	json_key(j, key);
	put_char(j, '{');
	j->first = true;
}

void
json_object_end(JsonBuf *j)
{
	put_char(j, '}');
	/* the container just closed is a member of its parent */
	j->first = false;
}

void
json_array_begin(JsonBuf *j, const char *key)
{
	json_key(j, key);
	put_char(j, '[');
	j->first = true;
}

void
json_array_end(JsonBuf *j)
{
	put_char(j, ']');
	j->first = false;
}
