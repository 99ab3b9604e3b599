/*
 * decision.c — the keyed SplitMix64 decision function (see walsim/decision.h
 * for the algorithm, which other languages must reproduce exactly).
 */
#include <string.h>

#include "walsim/decision.h"

#define DECISION_GOLDEN		UINT64_C(0x9E3779B97F4A7C15)
#define DECISION_FINAL_KEY	UINT64_C(0xD1B54A32D192ED03)
#define DECISION_STRING_TAG	(UINT64_C(1) << 63)

uint64_t
decision_mix(uint64_t x)
{
	uint64_t	z = x + DECISION_GOLDEN;

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void
decision_start(Decision *d, uint64_t seed, const char *rule)
{
	d->state = decision_mix(seed);
	decision_add_str(d, rule);
}

void
decision_add_u64(Decision *d, uint64_t v)
{
	d->state = decision_mix(d->state ^ v);
}

void
decision_add_bytes(Decision *d, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t		done = 0;

	while (done < len)
	{
		uint64_t	chunk = 0;
		size_t		n = len - done < 8 ? len - done : 8;

		/* little-endian regardless of host order */
		for (size_t i = 0; i < n; i++)
			chunk |= (uint64_t) p[done + i] << (8 * i);
		decision_add_u64(d, chunk);
		done += n;
	}
	decision_add_u64(d, (uint64_t) len | DECISION_STRING_TAG);
}

void
decision_add_str(Decision *d, const char *s)
{
	decision_add_bytes(d, s, strlen(s));
}

uint64_t
decision_value(const Decision *d)
{
	return decision_mix(d->state ^ DECISION_FINAL_KEY);
}

uint64_t
decision_u64(uint64_t seed, const char *rule, const uint64_t *coords, size_t ncoords)
{
	Decision	d;

	decision_start(&d, seed, rule);
	for (size_t i = 0; i < ncoords; i++)
		decision_add_u64(&d, coords[i]);
	return decision_value(&d);
}

bool
decision_chance(uint64_t value, double p)
{
	if (p <= 0.0)
		return false;
	if (p >= 1.0)
		return true;
	/* 53 high bits give a uniform double in [0, 1) exactly */
	return (double) (value >> 11) < p * 9007199254740992.0;
}

uint64_t
decision_uniform(uint64_t value, uint64_t lo, uint64_t hi)
{
	unsigned __int128 span;

	if (hi <= lo)
		return lo;
	span = (unsigned __int128) (hi - lo) + 1;
	return lo + (uint64_t) (((unsigned __int128) value * span) >> 64);
}
