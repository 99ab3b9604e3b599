/*
 * fuzz_parse.c — libFuzzer target: ref/lib's number, duration and size
 * parsers (walsim/parse.h) on any text, against what the C library makes of
 * the same text: an accepted integer is exactly what strtoull reads from
 * the whole string, an accepted duration or size is within its maximum, and
 * a rejection always says why.
 */
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/parse.h"
#include "fuzz_support.h"

static const DurationSyntax durations[] = {
	{"ms,s,min", TIME_MS, TIME_MS, 24 * 3600 * 1000},
	{"us,ms,s", TIME_S, TIME_US, UINT64_C(1000000000000000)},
	{"", TIME_S, TIME_S, 3600},
	{"us,ms,s,min,h,d", TIME_D, TIME_US, UINT64_MAX},
};

static const SizeSyntax sizes[] = {
	{"B,kB,MB,GB,k,K,m,M,g,G", true, UINT64_MAX},
	{"kB,MB,GB", false, UINT64_MAX},
	{"TB", true, 12345},
};

static void
check_rejection(bool ok, const WalsimError *err)
{
	if (!ok && err->message[0] == '\0')
		__builtin_trap();		/* a refusal must say why */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = fuzz_cstring(data, size);
	WalsimError err;
	uint64_t	u;
	int32_t		i;
	double		d;
	bool		b;
	bool		ok;

	if (text == NULL)
		return 0;

	memset(&err, 0, sizeof(err));
	ok = parse_u64("n", text, 0, UINT64_MAX, &u, &err);
	check_rejection(ok, &err);
	if (ok)
	{
		char	   *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(text, &end, 10);
		if (errno != 0 || *end != '\0' || v != u || text[0] < '0' || text[0] > '9')
			__builtin_trap();
	}
	memset(&err, 0, sizeof(err));
	ok = parse_i32("n=", text, -1000, 1000, &i, &err);
	check_rejection(ok, &err);
	if (ok && (i < -1000 || i > 1000 || strtol(text, NULL, 10) != i))
		__builtin_trap();
	memset(&err, 0, sizeof(err));
	ok = parse_u64_hex_ok("--seed", text, &u, &err);
	check_rejection(ok, &err);
	memset(&err, 0, sizeof(err));
	ok = parse_double("prob=", text, 0, 1, &d, &err);
	check_rejection(ok, &err);
	if (ok && !(d >= 0 && d <= 1))
		__builtin_trap();
	(void) parse_pg_bool(text, &b);

	for (size_t k = 0; k < sizeof(durations) / sizeof(durations[0]); k++)
	{
		memset(&err, 0, sizeof(err));
		ok = parse_duration("d", text, &durations[k], &u, &err);
		check_rejection(ok, &err);
		if (ok && u > durations[k].max)
			__builtin_trap();
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
	{
		memset(&err, 0, sizeof(err));
		ok = parse_size("s", text, &sizes[k], &u, &err);
		check_rejection(ok, &err);
		if (ok && u > sizes[k].max)
			__builtin_trap();
	}
	free(text);
	return 0;
}
