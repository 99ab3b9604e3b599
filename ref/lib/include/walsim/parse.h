/*
 * parse.h — the one set of parsers for numbers, durations and sizes that
 * walsim's programs read from command lines, rule words and scripts.
 *
 * Every parser is strict: the whole string must be the value (no leading or
 * trailing blanks, no sign on unsigned values, no "0x" unless said), and
 * overflow is an error, never a wrap.  On failure *out is left unchanged and
 * the message names the input and what was expected.  `what` names the
 * input: an option ("--poll-interval") gives
 *     --poll-interval "abc": expected an integer from 1 to 10000
 * and a rule key ending in '=' ("rate=") gives the word as it was written
 *     rate=10X: unknown unit "X" (B, kB, MB, GB, k, M, G)
 *
 * Names avoid PostgreSQL's exported symbols (its parse_int, parse_bool):
 * libwalsim is linked into the disk layer that is preloaded into postgres
 * processes, where a clash would redirect the server's own calls.
 */
#ifndef WALSIM_PARSE_H
#define WALSIM_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

/* A whole decimal number in [min, max]. */
bool		parse_u64(const char *what, const char *text, uint64_t min, uint64_t max,
					  uint64_t *out, WalsimError *err);
bool		parse_u32(const char *what, const char *text, uint32_t min, uint32_t max,
					  uint32_t *out, WalsimError *err);

/* A whole decimal number with an optional '-' in [min, max]. */
bool		parse_i32(const char *what, const char *text, int32_t min, int32_t max,
					  int32_t *out, WalsimError *err);

/* Decimal, or hexadecimal after "0x"/"0X" (how seeds are written). */
bool		parse_u64_hex_ok(const char *what, const char *text, uint64_t *out,
							 WalsimError *err);

/*
 * A decimal number with an optional fraction and exponent ("0.25", "1e-3",
 * ".5") in [min, max]; no sign, no hexadecimal, no inf or nan.
 */
bool		parse_double(const char *what, const char *text, double min, double max,
						 double *out, WalsimError *err);

/*
 * PostgreSQL's boolean words (parse_bool in src/backend/utils/adt/bool.c):
 * any case, unique prefixes of true/false/yes/no, on/off, and 1/0.
 */
bool		parse_pg_bool(const char *text, bool *out);

/* ------------------------------------------------------------ durations */

typedef enum TimeUnit
{
	TIME_US,
	TIME_MS,
	TIME_S,
	TIME_MIN,
	TIME_H,
	TIME_D
} TimeUnit;

/*
 * How one input writes a duration.  `units` lists the accepted suffixes,
 * comma-separated, from us, ms, s, min, h and d ("" accepts none); a number
 * without a suffix counts in `bare`; the result is in `result` units and at
 * most `max` of them.  A number may have a decimal fraction ("2.5s",
 * "0.25ms") as long as the result is a whole number of `result` units.
 */
typedef struct DurationSyntax
{
	const char *units;
	TimeUnit	bare;
	TimeUnit	result;
	uint64_t	max;
} DurationSyntax;

bool		parse_duration(const char *what, const char *text, const DurationSyntax *syntax,
						   uint64_t *out, WalsimError *err);

/* ------------------------------------------------------------ sizes */

/*
 * How one input writes a byte count.  `units` lists the accepted suffixes,
 * comma-separated, from PostgreSQL's B, kB, MB, GB, TB and the short k/K,
 * m/M, g/G (all powers of 1024); `bare` allows a number without a suffix
 * (bytes); the result is at most `max` bytes.
 */
typedef struct SizeSyntax
{
	const char *units;
	bool		bare;
	uint64_t	max;
} SizeSyntax;

bool		parse_size(const char *what, const char *text, const SizeSyntax *syntax,
					   uint64_t *out, WalsimError *err);

#endif							/* WALSIM_PARSE_H */
