/*
 * parse.c — strict parsers of numbers, durations and sizes (walsim/parse.h).
 *
 * Digits are accumulated by hand rather than with strtoul and friends:
 * those skip blanks, take signs (strtoul("-1") is ULONG_MAX) and prefixes,
 * which is exactly what a strict parser must refuse.  Durations are exact
 * decimal arithmetic, so "0.1s" is 100 ms, not 99.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "walsim/parse.h"

/* 128-bit arithmetic keeps duration conversions exact without overflow */
__extension__ typedef unsigned __int128 u128;

/* How much of the input an error message quotes. */
#define QUOTE_MAX 100

/* The input as a message names it: `what "text"`, or `key=text`. */
static void
subject(char *buf, size_t len, const char *what, const char *text)
{
	size_t		wlen = strlen(what);

	if (wlen > 0 && what[wlen - 1] == '=')
		snprintf(buf, len, "%s%.*s", what, QUOTE_MAX, text);
	else
		snprintf(buf, len, "%s \"%.*s\"", what, QUOTE_MAX, text);
}

/*
 * Decimal digits at *pos into *v (at least one); false when there are none.
 * *overflow is set when the number does not fit 64 bits.
 */
static bool
take_digits(const char *text, size_t *pos, uint64_t *v, bool *overflow)
{
	size_t		start = *pos;

	*v = 0;
	*overflow = false;
	while (text[*pos] >= '0' && text[*pos] <= '9')
	{
		unsigned	d = (unsigned) (text[*pos] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			*v = *v * 10 + d;
		(*pos)++;
	}
	return *pos > start;
}

bool
parse_u64(const char *what, const char *text, uint64_t min, uint64_t max,
		  uint64_t *out, WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	size_t		pos = 0;
	uint64_t	v;
	bool		overflow;

	if (take_digits(text, &pos, &v, &overflow) && text[pos] == '\0' && !overflow &&
		v >= min && v <= max)
	{
		*out = v;
		return true;
	}
	subject(subj, sizeof(subj), what, text);
	if (min == 0 && max == UINT64_MAX)
	{
		if (overflow && text[pos] == '\0')
			return walsim_error_set(err, "%s: out of range (at most %" PRIu64 ")", subj, max);
		return walsim_error_set(err, "%s: not a non-negative integer", subj);
	}
	return walsim_error_set(err, "%s: expected an integer from %" PRIu64 " to %" PRIu64,
							subj, min, max);
}

bool
parse_u32(const char *what, const char *text, uint32_t min, uint32_t max,
		  uint32_t *out, WalsimError *err)
{
	uint64_t	v;

	if (!parse_u64(what, text, min, max, &v, err))
		return false;
	*out = (uint32_t) v;
	return true;
}

bool
parse_i32(const char *what, const char *text, int32_t min, int32_t max, int32_t *out,
		  WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	bool		negative = text[0] == '-';
	size_t		pos = negative ? 1 : 0;
	uint64_t	mag;
	bool		overflow;

	/* an int32's magnitude is at most 2^31: past that, out of range */
	if (take_digits(text, &pos, &mag, &overflow) && text[pos] == '\0' && !overflow &&
		mag <= UINT64_C(1) << 31)
	{
		long long	v = negative ? -(long long) mag : (long long) mag;

		if (v >= min && v <= max)
		{
			*out = (int32_t) v;
			return true;
		}
	}
	subject(subj, sizeof(subj), what, text);
	return walsim_error_set(err, "%s: expected an integer from %" PRId32 " to %" PRId32,
							subj, min, max);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
parse_u64_hex_ok(const char *what, const char *text, uint64_t *out, WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	uint64_t	v = 0;
	size_t		pos = 2;

	if (text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
		return parse_u64(what, text, 0, UINT64_MAX, out, err);
	subject(subj, sizeof(subj), what, text);
	if (text[pos] == '\0')
		return walsim_error_set(err, "%s: no hexadecimal digits after \"0x\"", subj);
	for (; text[pos] != '\0'; pos++)
	{
		int			d = hex_value(text[pos]);

		if (d < 0)
			return walsim_error_set(err, "%s: not a non-negative integer", subj);
		if (v > (UINT64_MAX >> 4))
			return walsim_error_set(err, "%s: out of range (at most 0xFFFFFFFFFFFFFFFF)", subj);
		v = (v << 4) | (uint64_t) d;
	}
	*out = v;
	return true;
}

bool
parse_double(const char *what, const char *text, double min, double max,
			 double *out, WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	char	   *end;
	double		v;

	/* strtod's own syntax is wider: blanks, signs, hex, inf, nan */
	if ((isdigit((unsigned char) text[0]) || text[0] == '.') &&
		strspn(text, "0123456789.eE+-") == strlen(text))
	{
		errno = 0;
		v = strtod(text, &end);
		if (errno == 0 && end != text && *end == '\0' && isfinite(v) && v >= min && v <= max)
		{
			*out = v;
			return true;
		}
	}
	subject(subj, sizeof(subj), what, text);
	return walsim_error_set(err, "%s: expected a number from %g to %g", subj, min, max);
}

bool
parse_pg_bool(const char *text, bool *out)
{
	size_t		len = strlen(text);
	/* 'o' alone is not unique: "on" and "of(f)" need two letters */
	size_t		olen = len > 2 ? len : 2;
	int			v = -1;

	switch (text[0])
	{
		case 't':
		case 'T':
			if (strncasecmp(text, "true", len) == 0)
				v = 1;
			break;
		case 'f':
		case 'F':
			if (strncasecmp(text, "false", len) == 0)
				v = 0;
			break;
		case 'y':
		case 'Y':
			if (strncasecmp(text, "yes", len) == 0)
				v = 1;
			break;
		case 'n':
		case 'N':
			if (strncasecmp(text, "no", len) == 0)
				v = 0;
			break;
		case 'o':
		case 'O':
			if (strncasecmp(text, "on", olen) == 0)
				v = 1;
			else if (strncasecmp(text, "off", olen) == 0)
				v = 0;
			break;
		case '1':
		case '0':
			if (len == 1)
				v = text[0] == '1';
			break;
	}
	if (v < 0)
		return false;
	*out = v == 1;
	return true;
}

/* ------------------------------------------------------------ units */

typedef struct UnitName
{
	const char *name;
	uint64_t	factor;			/* microseconds or bytes */
	const char *long_name;		/* for messages (durations) */
} UnitName;

static const UnitName time_units[] = {
	[TIME_US] = {"us", 1, "microseconds"},
	[TIME_MS] = {"ms", 1000, "milliseconds"},
	[TIME_S] = {"s", 1000 * 1000, "seconds"},
	[TIME_MIN] = {"min", UINT64_C(60) * 1000 * 1000, "minutes"},
	[TIME_H] = {"h", UINT64_C(3600) * 1000 * 1000, "hours"},
	[TIME_D] = {"d", UINT64_C(86400) * 1000 * 1000, "days"},
};

#define KB UINT64_C(1024)
static const UnitName size_units[] = {
	{"B", 1, NULL},
	{"kB", KB, NULL}, {"k", KB, NULL}, {"K", KB, NULL},
	{"MB", KB * KB, NULL}, {"M", KB * KB, NULL}, {"m", KB * KB, NULL},
	{"GB", KB * KB * KB, NULL}, {"G", KB * KB * KB, NULL}, {"g", KB * KB * KB, NULL},
	{"TB", KB * KB * KB * KB, NULL},
};

/*
 * The factor of suffix if the comma-separated list `accepted` names it and
 * the table knows it; 0 otherwise.
 */
static uint64_t
unit_factor(const char *suffix, const char *accepted, const UnitName *table, size_t n)
{
	size_t		slen = strlen(suffix);

	for (const char *p = accepted; *p != '\0';)
	{
		size_t		len = strcspn(p, ",");

		if (len == slen && strncmp(p, suffix, len) == 0)
			for (size_t i = 0; i < n; i++)
				if (strcmp(table[i].name, suffix) == 0)
					return table[i].factor;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* "ms,s,min" as "ms, s, min" for messages. */
static void
unit_list(const char *accepted, char *buf, size_t len)
{
	size_t		o = 0;

	for (const char *p = accepted; *p != '\0' && o + 3 < len; p++)
	{
		buf[o++] = *p;
		if (*p == ',')
			buf[o++] = ' ';
	}
	buf[o] = '\0';
}

/*
 * Digits after a decimal point at *pos: their value and 10^count.  Digits
 * past 18 places must be zeros (none of them can add a whole microsecond);
 * false otherwise.
 */
static bool
take_fraction(const char *text, size_t *pos, uint64_t *frac, uint64_t *scale)
{
	bool		exact = true;

	*frac = 0;
	*scale = 1;
	for (; text[*pos] >= '0' && text[*pos] <= '9'; (*pos)++)
	{
		if (*scale >= UINT64_C(1000000000000000000))
		{
			if (text[*pos] != '0')
				exact = false;
			continue;
		}
		*frac = *frac * 10 + (uint64_t) (text[*pos] - '0');
		*scale *= 10;
	}
	return exact;
}

bool
parse_duration(const char *what, const char *text, const DurationSyntax *syntax,
			   uint64_t *out, WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	char		units[64];
	const UnitName *bare = &time_units[syntax->bare];
	const UnitName *result = &time_units[syntax->result];
	size_t		pos = 0;
	size_t		nwhole,
				nfrac = 0;
	bool		point = false;
	uint64_t	whole = 0,
				frac = 0,
				scale = 1;
	bool		overflow = false,
				exact = true;
	uint64_t	factor;
	u128		frac_us,
				us;

	subject(subj, sizeof(subj), what, text);
	unit_list(syntax->units, units, sizeof(units));
	take_digits(text, &pos, &whole, &overflow);
	nwhole = pos;
	if (text[pos] == '.')
	{
		size_t		dot = ++pos;

		point = true;
		exact = take_fraction(text, &pos, &frac, &scale);
		nfrac = pos - dot;
	}
	/* "2", "2.5" or ".5" (not "." or "2."); a suffix only where units are accepted */
	if ((point ? nfrac == 0 : nwhole == 0) || (text[pos] != '\0' && units[0] == '\0'))
		return walsim_error_set(err, "%s: expected a non-negative number of %s%s%s%s", subj,
								bare->long_name,
								units[0] ? " or a number with a unit (" : "", units,
								units[0] ? ")" : "");
	if (text[pos] == '\0')
		factor = bare->factor;
	else if ((factor = unit_factor(text + pos, syntax->units, time_units,
								   sizeof(time_units) / sizeof(time_units[0]))) == 0)
		return walsim_error_set(err, "%s: unknown unit \"%.*s\" (%s)", subj, QUOTE_MAX,
								text + pos, units);
	if (overflow)
		return walsim_error_set(err, "%s: at most %" PRIu64 " %s", subj, syntax->max,
								result->long_name);

	/*
	 * Exactly: whole * factor + frac * factor / scale microseconds, which
	 * must be a whole number of microseconds and then of result units.
	 */
	frac_us = (u128) frac * factor;
	if (!exact || frac_us % scale != 0)
		return walsim_error_set(err, "%s: not a whole number of %s", subj, result->long_name);
	us = (u128) whole * factor + frac_us / scale;
	if (us % result->factor != 0)
		return walsim_error_set(err, "%s: not a whole number of %s", subj, result->long_name);
	if (us / result->factor > syntax->max)
		return walsim_error_set(err, "%s: at most %" PRIu64 " %s", subj, syntax->max,
								result->long_name);
	*out = (uint64_t) (us / result->factor);
	return true;
}

bool
parse_size(const char *what, const char *text, const SizeSyntax *syntax,
		   uint64_t *out, WalsimError *err)
{
	char		subj[WALSIM_ERROR_MAX];
	char		units[64];
	size_t		pos = 0;
	uint64_t	v;
	uint64_t	factor = 1;
	bool		overflow;

	subject(subj, sizeof(subj), what, text);
	unit_list(syntax->units, units, sizeof(units));
	if (!take_digits(text, &pos, &v, &overflow))
		return walsim_error_set(err, syntax->bare ?
								"%s: expected a number of bytes with an optional unit (%s)" :
								"%s: expected a number followed by a unit (%s)", subj, units);
	if (text[pos] != '\0' || !syntax->bare)
	{
		factor = unit_factor(text + pos, syntax->units, size_units,
							 sizeof(size_units) / sizeof(size_units[0]));
		if (factor == 0)
			return walsim_error_set(err, "%s: unknown unit \"%.*s\" (%s)", subj, QUOTE_MAX,
									text + pos, units);
	}
	if (overflow || v > syntax->max / factor)
		return walsim_error_set(err, "%s: number too large (at most %" PRIu64 " bytes)",
								subj, syntax->max);
	*out = v * factor;
	return true;
}
