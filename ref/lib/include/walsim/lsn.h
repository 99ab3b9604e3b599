/*
 * lsn.h — WAL locations (LSNs) as PostgreSQL writes them.
 *
 * An LSN is a 64-bit byte position in the WAL stream.  PostgreSQL prints it
 * as "%X/%X": the high and the low 32 bits in upper-case hex without
 * padding ("0/3025A70", "16/B374D848").  lsn_parse() accepts exactly what
 * PostgreSQL's pg_lsn input accepts: 1 to 8 hex digits (either case), a
 * slash, 1 to 8 hex digits, and nothing else — no sign, no spaces, no "0x".
 */
#ifndef WALSIM_LSN_H
#define WALSIM_LSN_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

/* "FFFFFFFF/FFFFFFFF" plus the terminating NUL */
#define LSN_TEXT_MAX 18

#define LSN_INVALID  UINT64_C(0)

/*
 * Parse "%X/%X" text into *lsn.  On failure returns false, leaves *lsn
 * unchanged and says why ("LSN \"0/ZZ\": invalid hex digit 'Z' at offset 2").
 */
bool		lsn_parse(const char *text, uint64_t *lsn, WalsimError *err);

/*
 * Format lsn as PostgreSQL does into buf (at least LSN_TEXT_MAX bytes);
 * returns buf so that it can stand in an argument list.
 */
char	   *lsn_format(uint64_t lsn, char *buf);

/* High and low 32-bit halves (what PostgreSQL prints as %X/%X). */
static inline uint32_t
lsn_hi(uint64_t lsn)
{
	return (uint32_t) (lsn >> 32);
}

static inline uint32_t
lsn_lo(uint64_t lsn)
{
	return (uint32_t) lsn;
}

/*
 * lsn + delta; false (with a message) when the sum would pass
 * FFFFFFFF/FFFFFFFF instead of wrapping around.
 */
bool		lsn_add(uint64_t lsn, uint64_t delta, uint64_t *result,
					WalsimError *err);

/* Bytes from a to b; false when b < a (WAL does not run backwards). */
bool		lsn_diff(uint64_t a, uint64_t b, uint64_t *result, WalsimError *err);

/* lsn rounded down / up to a multiple of align (a power of two). */
static inline uint64_t
lsn_align_down(uint64_t lsn, uint64_t align)
{
	return lsn & ~(align - 1);
}

static inline uint64_t
lsn_align_up(uint64_t lsn, uint64_t align)
{
	return (lsn + align - 1) & ~(align - 1);
}

#endif							/* WALSIM_LSN_H */
