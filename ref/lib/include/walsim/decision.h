/*
 * decision.h — walsim's deterministic decision function.
 *
 * Every random choice a fault simulator makes is a pure function of the run's
 * seed, the rule that asks and the logical coordinates of the event (link,
 * direction, connection number, message index, byte offset, LSN, call count).
 * A keyed hash is used instead of a shared random stream, so a decision does
 * not change when unrelated events interleave differently.
 *
 * Algorithm (reproduced bit for bit by tools/walsim/decision.py; see
 * docs/determinism.md):
 *   mix(x)    = SplitMix64 finaliser of x + 0x9E3779B97F4A7C15:
 *               z = x + 0x9E3779B97F4A7C15
 *               z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *               z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *               return z ^ (z >> 31)                       (all mod 2^64)
 *   start     : state = mix(seed)
 *   add u64 v : state = mix(state ^ v)
 *   add string s (bytes b[0..n)) :
 *               for each 8-byte chunk, little-endian, the last zero-padded:
 *                   add u64 chunk
 *               add u64 (n | 1 << 63)      (length, tagged as a string)
 *   value     : mix(state ^ 0xD1B54A32D192ED03)
 *   decision(seed, rule, coords...) = start(seed), add string rule,
 *               add u64 for each coordinate (strings as above), value.
 *   probability p  : true iff (value >> 11) < p * 2^53
 *   uniform [a, b] : a + ((value * (b - a + 1)) >> 64)    (128-bit product)
 */
#ifndef WALSIM_DECISION_H
#define WALSIM_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Decision
{
	uint64_t	state;
} Decision;

uint64_t	decision_mix(uint64_t x);

void		decision_start(Decision *d, uint64_t seed, const char *rule);
void		decision_add_u64(Decision *d, uint64_t v);
void		decision_add_str(Decision *d, const char *s);
void		decision_add_bytes(Decision *d, const void *data, size_t len);
uint64_t	decision_value(const Decision *d);

/* decision(seed, rule, n integer coordinates) in one call */
uint64_t	decision_u64(uint64_t seed, const char *rule,
						 const uint64_t *coords, size_t ncoords);

/* true with probability p (0 <= p <= 1) for this decision value */
bool		decision_chance(uint64_t value, double p);

/* a value in [lo, hi] (inclusive) for this decision value */
uint64_t	decision_uniform(uint64_t value, uint64_t lo, uint64_t hi);

#endif							/* WALSIM_DECISION_H */
