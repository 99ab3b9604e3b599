/*
 * crc32c.c — CRC-32C (Castagnoli) for WAL records (see walsim/crc32c.h).
 *
 * Two implementations with identical results: the SSE4.2 `crc32`
 * instruction, used when the CPU reports SSE4.2 at run time, and a
 * slicing-by-8 table filled when the library is loaded.
 */
#include <string.h>

#include "walsim/crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

/*
 * Slicing-by-8 tables, a pure function of the polynomial.  They are filled
 * by a constructor when the library is loaded, before any thread can exist,
 * so readers never race with the fill.
 */
static uint32_t crc32c_table[8][256];

__attribute__((constructor))
static void
crc32c_fill_tables(void)
{
	for (uint32_t i = 0; i < 256; i++)
	{
		uint32_t	c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int s = 1; s < 8; s++)
			crc32c_table[s][i] = (crc32c_table[s - 1][i] >> 8) ^
				crc32c_table[0][crc32c_table[s - 1][i] & 0xFF];
}

uint32_t
crc32c_update_table(uint32_t crc, const void *data, size_t len)
{
	const uint32_t (*t)[256] = crc32c_table;
	const uint8_t *p = data;

	/* eight bytes at a time; the words are read little-endian by hand */
	while (len >= 8)
	{
		uint32_t	lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
								(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
		uint32_t	hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 |
			(uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;

		crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^
			t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
			t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^
			t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) || defined(__i386__)

#include <nmmintrin.h>

bool
crc32c_have_sse42(void)
{
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t
crc32c_update_sse42(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

#if defined(__x86_64__)
	while (len >= 8)
	{
		uint64_t	word;

		memcpy(&word, p, 8);	/* unaligned-safe load */
		crc = (uint32_t) _mm_crc32_u64(crc, word);
		p += 8;
		len -= 8;
	}
#endif
	while (len >= 4)
	{
		uint32_t	word;

		memcpy(&word, p, 4);
		crc = _mm_crc32_u32(crc, word);
		p += 4;
		len -= 4;
	}
	while (len-- > 0)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}

#else							/* not x86 */

bool
crc32c_have_sse42(void)
{
	return false;
}

uint32_t
crc32c_update_sse42(uint32_t crc, const void *data, size_t len)
{
	return crc32c_update_table(crc, data, len);
}

#endif

uint32_t
crc32c_update(uint32_t crc, const void *data, size_t len)
{
	/*
	 * __builtin_cpu_supports reads a flag libgcc fills in a constructor, so
	 * asking every time costs a load and keeps the library free of state.
	 */
	if (crc32c_have_sse42())
		return crc32c_update_sse42(crc, data, len);
	return crc32c_update_table(crc, data, len);
}

uint32_t
crc32c(const void *data, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, data, len));
}
