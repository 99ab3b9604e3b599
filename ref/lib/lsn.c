/*
 * lsn.c — parse, format and do arithmetic on WAL locations (walsim/lsn.h).
 *
 * The accepted syntax is that of PostgreSQL's pg_lsn_in_internal(): each half
 * is 1 to 8 hex digits, separated by one '/', with nothing before or after.
 * sscanf("%X/%X") would also take signs, spaces and "0x", which PostgreSQL's
 * own type input rejects, so the text is checked character by character.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"

#define LSN_HALF_MAX_DIGITS 8

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Parse one half starting at text[*pos], stopping at the first non-hex
 * character; which is "high" or "low" for the message.
 */
static bool
parse_half(const char *text, size_t *pos, const char *which, uint32_t *value,
		   WalsimError *err)
{
	size_t		start = *pos;
	uint64_t	v = 0;
	int			digit;

	while ((digit = hex_value(text[*pos])) >= 0)
	{
		if (*pos - start == LSN_HALF_MAX_DIGITS)
			return walsim_error_set(err,
									"LSN \"%s\": %s half has more than %d hex digits",
									text, which, LSN_HALF_MAX_DIGITS);
		v = (v << 4) | (uint64_t) digit;
		(*pos)++;
	}
	if (*pos == start)
	{
		if (text[*pos] == '\0')
			return walsim_error_set(err, "LSN \"%s\": %s half is empty",
									text, which);
		return walsim_error_set(err,
								"LSN \"%s\": %s half is empty: unexpected character '%c' at offset %zu",
								text, which, text[*pos], *pos);
	}
	*value = (uint32_t) v;
	return true;
}

bool
lsn_parse(const char *text, uint64_t *lsn, WalsimError *err)
{
	size_t		pos = 0;
	uint32_t	hi;
	uint32_t	lo;

	if (text == NULL)
		return walsim_error_set(err, "LSN: no text");
	if (!parse_half(text, &pos, "high", &hi, err))
		return false;
	if (text[pos] != '/')
	{
		if (text[pos] == '\0')
			return walsim_error_set(err, "LSN \"%s\": missing '/'", text);
		return walsim_error_set(err,
								"LSN \"%s\": expected '/' at offset %zu, found '%c'",
								text, pos, text[pos]);
	}
	pos++;
	if (!parse_half(text, &pos, "low", &lo, err))
		return false;
	if (text[pos] != '\0')
		return walsim_error_set(err,
								"LSN \"%s\": unexpected character '%c' at offset %zu",
								text, text[pos], pos);
	*lsn = ((uint64_t) hi << 32) | lo;
	return true;
}

char *
lsn_format(uint64_t lsn, char *buf)
{
	snprintf(buf, LSN_TEXT_MAX, "%" PRIX32 "/%" PRIX32, lsn_hi(lsn), lsn_lo(lsn));
	return buf;
}

bool
lsn_add(uint64_t lsn, uint64_t delta, uint64_t *result, WalsimError *err)
{
	char		text[LSN_TEXT_MAX];

	if (delta > UINT64_MAX - lsn)
	{
		lsn_format(lsn, text);
		return walsim_error_set(err,
								"LSN %s + %" PRIu64 " bytes passes FFFFFFFF/FFFFFFFF",
								text, delta);
	}
	*result = lsn + delta;
	return true;
}

bool
lsn_diff(uint64_t a, uint64_t b, uint64_t *result, WalsimError *err)
{
	char		ta[LSN_TEXT_MAX];
	char		tb[LSN_TEXT_MAX];

	if (b < a)
	{
		lsn_format(a, ta);
		lsn_format(b, tb);
		return walsim_error_set(err, "LSN %s is before LSN %s", tb, ta);
	}
	*result = b - a;
	return true;
}
