/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of PostgreSQL WAL records.
 *
 * Same algorithm and conventions as PostgreSQL's pg_crc32c: reflected
 * polynomial 0x82F63B78, start value 0xFFFFFFFF, final xor 0xFFFFFFFF.
 * A checksum over several pieces is
 *
 *     uint32_t crc = CRC32C_INIT;
 *     crc = crc32c_update(crc, a, alen);
 *     crc = crc32c_update(crc, b, blen);
 *     crc = crc32c_final(crc);
 *
 * crc32c_update() uses the SSE4.2 `crc32` instruction when the CPU has it
 * (checked at run time) and a slicing table otherwise; both give the same
 * result, and the two implementations are exported so tests can compare them.
 */
#ifndef WALSIM_CRC32C_H
#define WALSIM_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT		0xFFFFFFFFu

/* Continue a running CRC over len bytes (fastest implementation available). */
uint32_t	crc32c_update(uint32_t crc, const void *data, size_t len);

/* Finish a running CRC (xor 0xFFFFFFFF). */
static inline uint32_t
crc32c_final(uint32_t crc)
{
	return crc ^ 0xFFFFFFFFu;
}

/* The CRC-32C of one buffer: final(update(INIT, data, len)). */
uint32_t	crc32c(const void *data, size_t len);

/* The table implementation, on every CPU. */
uint32_t	crc32c_update_table(uint32_t crc, const void *data, size_t len);

/* True when this CPU has SSE4.2 (so crc32c_update_sse42 may be called). */
bool		crc32c_have_sse42(void);

/*
 * The SSE4.2 implementation.  Only call it when crc32c_have_sse42() is true;
 * on non-x86 builds it falls back to the table.
 */
uint32_t	crc32c_update_sse42(uint32_t crc, const void *data, size_t len);

#endif							/* WALSIM_CRC32C_H */
